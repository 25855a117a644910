import pytest
import torch

from ssibench.fft import fft2c, to_complex
from ssibench.transforms import (
    Compose,
    CPABDiffeomorphism,
    Identity,
    RandomChoice,
    RandomNoise,
    RandomPhaseError,
    Rotate,
    Shift,
    cpab_basis,
    cpab_flow,
    rotate,
    shift,
)
from ssibench.transforms.cpab import _cell_index, _triangle_vertices


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("size", [(8, 8), (7, 7)])
def test_rotation_by_multiples_of_90_is_exact_and_counter_clockwise(k, size):
    x = torch.randn(2, 2, *size, generator=torch.Generator().manual_seed(0))
    out = rotate(x, torch.full((2,), 90.0 * k))
    assert torch.equal(out, torch.rot90(x, k=k, dims=(-2, -1)))


def test_zero_angle_is_the_identity_and_angles_are_per_sample():
    x = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    out = rotate(x, torch.tensor([0.0, 90.0]))
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], torch.rot90(x[1], 1, dims=(-2, -1)))


def test_rotation_preserves_a_centred_disc_and_zero_fills_corners():
    size = 33
    coords = torch.arange(size) - size // 2
    disc = ((coords[:, None] ** 2 + coords[None, :] ** 2) <= 8**2).float()
    full = torch.ones(1, 1, size, size)
    rotated = rotate(disc[None, None], torch.tensor([37.0]))[0, 0]
    # a digital disc is rotation invariant up to nearest-neighbour flips on its rim
    assert (rotated != disc).sum() <= 0.1 * disc.sum()
    assert torch.equal(rotated[12:21, 12:21], disc[12:21, 12:21])
    corners = rotate(full, torch.tensor([45.0]))
    assert corners[0, 0, 0, 0] == 0
    assert corners[0, 0, size // 2, size // 2] == 1


def test_random_angles_are_integers_within_limits_and_reproducible():
    transform = Rotate()
    a = transform.angles(500, torch.Generator().manual_seed(3))
    b = transform.angles(500, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(a, a.round())
    assert a.abs().max() < 360
    assert (a < 0).any()
    assert (a > 0).any()
    group = Rotate(multiples=90).angles(200, torch.Generator().manual_seed(0))
    assert set(group.tolist()) <= {0.0, 90.0, 180.0, 270.0, -90.0, -180.0, -270.0}


def test_rotate_acts_identically_on_real_and_imaginary_channels():
    real = torch.randn(1, 1, 9, 9, generator=torch.Generator().manual_seed(1))
    x = torch.cat([real, 2 * real], dim=1)
    out = Rotate()(x, torch.Generator().manual_seed(2))
    assert torch.equal(out[:, 1], 2 * out[:, 0])


# --- the parameter API, shared by every transform ------------------------------------------------

TRANSFORMS = {
    "identity": Identity(),
    "rotate": Rotate(),
    "shift": Shift(shift_max=0.25),
    "cpab": CPABDiffeomorphism(),
    "phase_error": RandomPhaseError(scale=(0.05, 0.2)),
    "noise": RandomNoise(sigma=(0.05, 0.2)),
    "compose": Compose([RandomPhaseError(scale=0.1), RandomNoise(sigma=0.1)]),
    "choice": RandomChoice([Shift(shift_max=0.1), Rotate(limits=15)]),
}


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_same_seed_same_output_and_global_rng_untouched(name):
    transform = TRANSFORMS[name]
    x = _randn(3, 2, 8, 8)
    state = torch.get_rng_state()
    a = transform(x, torch.Generator().manual_seed(4))
    b = transform(x, torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert a.shape == x.shape


@pytest.mark.parametrize("name", TRANSFORMS)
def test_apply_with_given_params_replays_the_draw(name):
    transform = TRANSFORMS[name]
    x = _randn(4, 2, 8, 8)
    params = transform.sample_params(x, torch.Generator().manual_seed(1))
    assert all(value.shape[0] == 4 for value in params.values())
    assert torch.equal(transform.apply(x, params), transform.apply(x, params))
    assert torch.equal(transform.apply(x, params), transform(x, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_video_frames_share_one_draw(name):
    # (B, 2, T, H, W): transforming the video equals transforming each frame with the same params
    transform = TRANSFORMS[name]
    video = _randn(2, 2, 3, 8, 8)
    params = transform.sample_params(video, torch.Generator().manual_seed(2))
    out = transform.apply(video, params)
    assert out.shape == video.shape
    for frame in range(3):
        frame_params = {
            key: value[:, :, frame] if value.shape == video.shape else value
            for key, value in params.items()
        }
        expected = transform.apply(video[:, :, frame], frame_params)
        torch.testing.assert_close(out[:, :, frame], expected)


# --- rotate ---------------------------------------------------------------------------------------


def test_rotate_params_are_per_sample_and_inverse_undoes_multiples_of_90():
    transform = Rotate(multiples=90)
    x = _randn(64, 2, 8, 8)
    params = transform.sample_params(x, torch.Generator().manual_seed(0))
    assert len(set(params["angles"].tolist())) > 1
    assert torch.equal(transform.inverse(transform.apply(x, params), params), x)


def test_rotate_limits_15_gives_angles_within_14_degrees():
    angles = Rotate(limits=15).angles(2000, torch.Generator().manual_seed(0))
    assert set(angles.tolist()) == set(range(-14, 15))


# --- shift ----------------------------------------------------------------------------------------


def test_shift_equals_torch_roll_per_sample_and_is_exactly_inverted():
    transform = Shift(shift_max=0.5)
    x = _randn(5, 2, 6, 8)
    params = transform.sample_params(x, torch.Generator().manual_seed(3))
    out = transform.apply(x, params)
    for b, (rows, cols) in enumerate(params["shifts"].tolist()):
        assert torch.equal(out[b], torch.roll(x[b], (rows, cols), dims=(-2, -1)))
    assert torch.equal(transform.inverse(out, params), x)
    assert transform.unitary


def test_shift_offsets_cover_the_reference_range():
    transform = Shift(shift_max=0.25)
    shifts = transform.sample_params(torch.zeros(4000, 2, 8, 16), torch.Generator().manual_seed(0))
    rows, cols = shifts["shifts"][:, 0], shifts["shifts"][:, 1]
    assert set(rows.tolist()) == set(range(-2, 2))  # ⌊0.25·8⌋ = 2 → [−2, 1]
    assert set(cols.tolist()) == set(range(-4, 4))
    assert (
        not Shift(shift_max=0.05)
        .sample_params(torch.zeros(3, 2, 8, 8), torch.Generator())["shifts"]
        .any()
    )


def test_shift_is_a_phase_ramp_in_kspace():
    # |F(shift x)| = |F x|: a circular shift only modulates the phase of k-space
    x = _randn(2, 2, 8, 8)
    out = shift(x, torch.tensor([[3, -2], [1, 5]]))
    k_in, k_out = fft2c(to_complex(x)), fft2c(to_complex(out))
    torch.testing.assert_close(k_out.abs(), k_in.abs())


# --- CPAB -----------------------------------------------------------------------------------------


def test_cpab_basis_is_orthonormal_with_the_reference_dimension():
    basis = cpab_basis()
    assert basis.shape == (216, 8)
    torch.testing.assert_close(basis.T @ basis, torch.eye(8, dtype=torch.float64))
    assert cpab_basis(3, zero_boundary=True, volume_preservation=False).shape[1] == 34
    assert cpab_basis(3, zero_boundary=False, volume_preservation=False).shape[1] == 50


def test_cpab_velocity_is_continuous_and_tangent_to_the_border():
    # evaluate v = A_c [p; 1] at every triangle's vertices: equal across triangles, normal part 0
    n = 3
    basis = cpab_basis(n)
    velocity = (basis @ _randn(8, 1, dtype=torch.float64)).view(36, 2, 3)
    values: dict[tuple[int, int], list[torch.Tensor]] = {}
    for c, vertices in enumerate(_triangle_vertices(n)):
        for vertex in vertices:
            point = torch.tensor(
                [vertex[0] / (2 * n), vertex[1] / (2 * n), 1.0], dtype=torch.float64
            )
            values.setdefault(vertex, []).append(velocity[c] @ point)
    for vertex, vs in values.items():
        for v in vs[1:]:
            torch.testing.assert_close(v, vs[0])
        for axis in (0, 1):
            if vertex[axis] in (0, 2 * n):
                assert abs(vs[0][axis]) < 1e-12
    traces = velocity[:, 0, 0] + velocity[:, 1, 1]
    assert traces.abs().max() < 1e-12


def test_cpab_cell_lookup_finds_the_triangle_holding_each_point():
    n = 3
    triangles = torch.tensor(_triangle_vertices(n), dtype=torch.float64) / (2 * n)
    points = torch.rand(5000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    corners = triangles[_cell_index(points[:, 0], points[:, 1], n)]
    v0, v1, v2 = corners[:, 0], corners[:, 1], corners[:, 2]

    def cross(a, b):
        return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]

    area = cross(v1 - v0, v2 - v0)
    weights = (
        torch.stack(
            (
                cross(v1 - points, v2 - points),
                cross(v2 - points, v0 - points),
                cross(v0 - points, v1 - points),
            )
        )
        / area
    )
    assert weights.min() > -1e-12  # barycentric coordinates all non-negative


def test_cpab_is_the_identity_at_zero_parameters():
    transform = CPABDiffeomorphism()
    x = _randn(2, 2, 9, 12)
    params = {"theta": torch.zeros(2, 8, dtype=torch.float64)}
    torch.testing.assert_close(transform.apply(x, params), x, atol=1e-12, rtol=0)


def test_cpab_warp_then_inverse_returns_the_image():
    transform = CPABDiffeomorphism()
    size = 32
    grid = torch.linspace(0, 1, size, dtype=torch.float64)
    smooth = torch.cos(3 * grid)[:, None] * torch.sin(2 * grid + 0.5)[None, :]
    x = torch.stack((smooth, smooth.T)).expand(3, 2, size, size)
    params = transform.sample_params(x, torch.Generator().manual_seed(0))
    warped = transform.apply(x, params)
    back = transform.inverse(warped, params)
    assert (warped - x).abs().max() > 0.05  # the warp did move the image
    assert (back - x).abs().max() < 0.02 * x.abs().max()
    # the point maps compose to the identity up to the step discretisation
    theta, basis = params["theta"], cpab_basis()
    points = transform.grid(-theta, size, size, torch.float64).view(3, -1, 2)
    roundtrip = cpab_flow(points, theta, basis, 3, 50)
    identity = transform.grid(torch.zeros_like(theta), size, size, torch.float64).view(3, -1, 2)
    assert (roundtrip - identity).abs().max() < 1e-3


def test_cpab_preserves_area_and_keeps_points_in_the_image():
    # volume preservation: the Jacobian determinant of φ is 1 up to discretisation
    transform = CPABDiffeomorphism()
    theta = transform.sample_params(torch.zeros(4, 2, 2, 2), torch.Generator().manual_seed(1))[
        "theta"
    ]
    size = 65
    points = transform.grid(theta, size, size, torch.float64) * (size - 1)
    du = points[:, 1:, :-1] - points[:, :-1, :-1]
    dw = points[:, :-1, 1:] - points[:, :-1, :-1]
    det = du[..., 0] * dw[..., 1] - du[..., 1] * dw[..., 0]
    assert (det - 1).abs().median() < 0.02
    assert points.min() > -1e-3
    assert points.max() < size - 1 + 1e-3


def test_cpab_displacement_statistics_match_the_reference():
    # reference (libcpab defaults, 200 draws): median max displacement ≈ 11 % of the FOV
    # (p90 ≈ 16 %), median mean displacement ≈ 3.8 %
    transform = CPABDiffeomorphism()
    theta = transform.sample_params(torch.zeros(200, 2, 2, 2), torch.Generator().manual_seed(0))[
        "theta"
    ]
    moved = transform.grid(theta, 24, 24, torch.float32)
    still = transform.grid(torch.zeros_like(theta[:1]), 24, 24, torch.float32)
    displacement = (moved - still).norm(dim=-1).flatten(1)
    largest, mean = displacement.max(dim=1).values, displacement.mean(dim=1)
    assert 0.09 < largest.median() < 0.13
    assert 0.13 < largest.quantile(0.9) < 0.19
    assert 0.03 < mean.median() < 0.045


# --- k-space augmentations ------------------------------------------------------------------------


def test_phase_error_is_a_complex_multiplication_preserving_magnitude():
    transform = RandomPhaseError(scale=0.1)
    y = _randn(3, 2, 4, 6, 8)  # multicoil k-space
    params = transform.sample_params(y, torch.Generator().manual_seed(0))
    out = transform.apply(y, params)
    phase = params["phase"]
    assert phase.abs().max() <= torch.pi * 0.1
    per_column = torch.where(torch.arange(8) % 2 == 0, phase[:, :1], phase[:, 1:])  # (B, W)
    expected = to_complex(y) * torch.exp(-1j * per_column)[:, None, None, :]
    torch.testing.assert_close(to_complex(out), expected)
    torch.testing.assert_close(to_complex(out).abs(), to_complex(y).abs())
    torch.testing.assert_close(transform.inverse(out, params), y)
    # not the reference's bug B1 (Im ← −Im sin φ), which shrinks the imaginary channel
    assert out[:, 1].pow(2).sum() > 0.5 * y[:, 1].pow(2).sum()


def test_phase_error_scale_range_draws_a_scale_per_sample():
    transform = RandomPhaseError(scale=(0.0, 1.0))
    phase = transform.sample_params(torch.zeros(500, 2, 2, 4), torch.Generator().manual_seed(0))[
        "phase"
    ]
    assert phase.abs().max() <= torch.pi
    # |φ| = π s |U| with s ~ U(0, 1): E|φ| = π/4, not π/2 as for a fixed s = 1
    assert abs(phase.abs().mean() - torch.pi / 4) < 0.1


def test_random_noise_only_on_nonzero_entries_with_sigma_per_sample():
    transform = RandomNoise(sigma=(0.05, 0.2))
    y = _randn(400, 2, 4, 4)
    y[:, :, :, ::2] = 0.0  # unsampled columns
    y[:, 1, 0, 1] = 0.0  # a sampled point with a real value only: still noised in Im
    params = transform.sample_params(y, torch.Generator().manual_seed(0))
    out = transform.apply(y, params)
    assert torch.equal(out[:, :, :, ::2], torch.zeros_like(out[:, :, :, ::2]))
    sigma = params["sigma"].view(-1, 1, 1, 1)
    torch.testing.assert_close(out[:, :, :, 1::2], (y + sigma * params["noise"])[:, :, :, 1::2])
    assert (out[:, 1, 0, 1] != 0).all()
    assert params["sigma"].min() >= 0.05
    assert params["sigma"].max() <= 0.2
    assert params["sigma"].std() > 0.03
    with pytest.raises(NotImplementedError):
        transform.inverse(out, params)


def test_fixed_sigma_noise_has_that_standard_deviation():
    y = torch.ones(64, 2, 16, 16, dtype=torch.float64)
    out = RandomNoise(sigma=0.3)(y, torch.Generator().manual_seed(0))
    assert abs((out - y).std() - 0.3) < 0.01


def test_invalid_ranges_are_refused():
    with pytest.raises(ValueError, match="sigma"):
        RandomNoise(sigma=(0.2, 0.1))
    with pytest.raises(ValueError, match="scale"):
        RandomPhaseError(scale=-1.0)


# --- combinators ----------------------------------------------------------------------------------


def test_random_choice_keeps_its_choice_across_apply_and_inverse():
    transform = RandomChoice([Shift(shift_max=0.25), Rotate(multiples=90)])
    x = _randn(32, 2, 8, 8)
    params = transform.sample_params(x, torch.Generator().manual_seed(0))
    choice = params["choice"]
    assert 0 < choice.sum() < 32  # both members are chosen somewhere
    out = transform.apply(x, params)
    for _ in range(3):  # B2: every application with the same params makes the same choice
        assert torch.equal(transform.apply(x, params), out)
    shifted = Shift(shift_max=0.25).apply(x, {"shifts": params["0.shifts"]})
    rotated = Rotate(multiples=90).apply(x, {"angles": params["1.angles"]})
    assert torch.equal(out[choice == 0], shifted[choice == 0])
    assert torch.equal(out[choice == 1], rotated[choice == 1])
    assert torch.equal(transform.inverse(out, params), x)  # both members exact here


def test_compose_applies_in_order_and_inverts_in_reverse():
    first, second = Shift(shift_max=0.25), Rotate(multiples=90)
    transform = Compose([first, second])
    x = _randn(6, 2, 8, 8)
    params = transform.sample_params(x, torch.Generator().manual_seed(2))
    expected = second.apply(
        first.apply(x, {"shifts": params["0.shifts"]}), {"angles": params["1.angles"]}
    )
    assert torch.equal(transform.apply(x, params), expected)
    assert torch.equal(transform.inverse(expected, params), x)
    assert not transform.unitary
    assert Compose([first, Identity()]).unitary


def test_combinators_refuse_too_few_members():
    with pytest.raises(ValueError, match="Identity"):
        Compose([])
    with pytest.raises(ValueError, match="two"):
        RandomChoice([Shift()])
