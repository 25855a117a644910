"""Time-resolved MRI operators (ssibench.physics.time) and their model wrappers."""

import pytest
import torch

from ssibench.fft import fft2c, to_complex
from ssibench.models import MoDL, UNet, build_modl
from ssibench.models.time import (
    TimeAgnostic,
    TimeAgnosticReconstructor,
    TimeAveraging,
    build_dynamic_modl,
)
from ssibench.physics import (
    DynamicMRI,
    SequentialMRI,
    SingleCoilMRI,
    fold_time,
    select_frames,
    time_average,
    unfold_time,
)

B, T, H, W = 2, 3, 8, 6
OPERATORS = (DynamicMRI, SequentialMRI)


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _random_mask(batch=B, frames=T, seed=0, p=0.5):
    return (torch.rand(batch, 1, frames, H, W, generator=_g(seed), dtype=torch.float64) < p).to(
        torch.float64
    )


def _disjoint_mask(batch=B, frames=T, seed=0):
    """Column masks: every column in exactly one frame, frames chosen at random."""
    owner = torch.randint(frames, (batch, W), generator=_g(seed))
    columns = torch.nn.functional.one_hot(owner, frames).to(torch.float64)  # (B, W, T)
    return columns.permute(0, 2, 1)[:, None, :, None, :].expand(batch, 1, frames, H, W)


def _x_shape(cls, batch=B, frames=T):
    return (batch, 2, frames, H, W) if cls is DynamicMRI else (batch, 2, H, W)


def _randn(shape, seed):
    return torch.randn(shape, generator=_g(seed), dtype=torch.float64)


@pytest.mark.parametrize("cls", OPERATORS)
@pytest.mark.parametrize("shared", [False, True])
def test_adjointness_on_random_inputs(cls, shared):
    mask = _random_mask(batch=1 if shared else B)
    physics = cls(mask)
    x = _randn(_x_shape(cls), 1)
    y = _randn((B, 2, T, H, W), 2)
    lhs = (physics.A(x) * y).sum()
    rhs = (x * physics.A_adjoint(y)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", OPERATORS)
@pytest.mark.parametrize("gamma", [0.3, torch.tensor(2.5, dtype=torch.float64)])
def test_prox_solves_its_normal_equations(cls, gamma):
    physics = cls(_random_mask())
    z = _randn(_x_shape(cls), 3)
    y = _randn((B, 2, T, H, W), 4)
    u = physics.prox_l2(z, y, gamma)
    lhs = gamma * physics.A_adjoint(physics.A(u)) + u
    torch.testing.assert_close(lhs, gamma * physics.A_adjoint(y) + z, rtol=1e-10, atol=1e-10)


def test_prox_passes_a_gradient_to_the_step_size():
    physics = SequentialMRI(_random_mask().float())
    gamma = torch.tensor(1.0, requires_grad=True)
    physics.prox_l2(torch.randn(B, 2, H, W), torch.randn(B, 2, T, H, W), gamma).sum().backward()
    assert gamma.grad is not None
    assert torch.isfinite(gamma.grad)


def test_sequential_dagger_is_the_least_squares_solution_and_the_reference_average():
    mask = _random_mask(p=0.6)  # frames overlap: some points sampled several times
    physics = SequentialMRI(mask)
    y = physics.A(_randn((B, 2, H, W), 5)) + mask * _randn((B, 2, T, H, W), 6)
    x = physics.A_dagger(y)
    torch.testing.assert_close(physics.A_adjoint(physics.A(x)), physics.A_adjoint(y))
    # The reference's "adjoint": k-space averaged over the frames that sampled each point.
    k = to_complex(y)  # (B, T, H, W)
    m = mask[:, 0]
    count = m.sum(dim=1)
    expected = torch.where(count > 0, (m * k).sum(dim=1) / count.clamp_min(1), 0)
    torch.testing.assert_close(fft2c(to_complex(x)), expected)
    assert not torch.allclose(x, physics.A_adjoint(y))  # the true adjoint sums instead


def test_sequential_with_disjoint_frames_is_the_union_acquisition():
    mask = _disjoint_mask()
    physics = SequentialMRI(mask, sigma=0.1)
    static = physics.to_static()
    assert torch.equal(static.mask, torch.ones(B, 1, H, W, dtype=torch.float64))
    y = physics.measure(_randn((B, 2, H, W), 7), _g(8))
    y_bar = time_average(y, mask)
    torch.testing.assert_close(physics.A_dagger(y), physics.A_adjoint(y))
    torch.testing.assert_close(static.A_adjoint(y_bar), physics.A_adjoint(y))
    z = _randn((B, 2, H, W), 9)
    torch.testing.assert_close(static.prox_l2(z, y_bar, 0.7), physics.prox_l2(z, y, 0.7))


def test_dynamic_on_a_still_video_equals_sequential():
    mask = _random_mask()
    x = _randn((B, 2, H, W), 10)
    video = x.unsqueeze(2).expand(B, 2, T, H, W)
    torch.testing.assert_close(DynamicMRI(mask).A(video), SequentialMRI(mask).A(x))
    # Summing the dynamic adjoint over time gives the sequential adjoint.
    y = _randn((B, 2, T, H, W), 11)
    torch.testing.assert_close(
        DynamicMRI(mask).A_adjoint(y).sum(dim=2), SequentialMRI(mask).A_adjoint(y)
    )


@pytest.mark.parametrize("cls", OPERATORS)
def test_to_static_takes_the_union_of_the_frame_masks(cls):
    mask = _random_mask()
    static = cls(mask, sigma=0.2).to_static()
    assert isinstance(static, SingleCoilMRI)
    assert static.sigma == 0.2
    assert torch.equal(static.mask, mask.amax(dim=2))


def test_fold_frames_runs_every_frame_with_its_own_mask_even_when_shared():
    mask = _random_mask(batch=1)
    physics = DynamicMRI(mask)
    x = _randn((B, 2, T, H, W), 12)
    folded = physics.fold_frames(B)
    assert folded.mask.shape == (B * T, 1, H, W)
    torch.testing.assert_close(unfold_time(folded.A(fold_time(x)), B), physics.A(x))
    for t in range(T):
        frame = SingleCoilMRI(mask[:, :, t]).A(x[:, :, t])
        torch.testing.assert_close(physics.A(x)[:, :, t], frame)


@pytest.mark.parametrize("cls", OPERATORS)
def test_measure_adds_masked_reproducible_noise(cls):
    sigma = 0.5
    mask = _random_mask(batch=4).float()
    physics = cls(mask, sigma=sigma)
    x = torch.zeros(_x_shape(cls, batch=4))
    state = torch.get_rng_state()
    y = physics.measure(x, _g(13))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(y, physics.measure(x, _g(13)))
    assert torch.all(y[(mask == 0).expand_as(y)] == 0)
    sampled = y[(mask == 1).expand_as(y)]
    assert sampled.std().item() == pytest.approx(sigma, rel=0.15)


def test_measure_without_noise_draws_nothing():
    generator = _g(14)
    before = generator.get_state()
    physics = DynamicMRI(_random_mask())
    x = _randn((B, 2, T, H, W), 15)
    assert torch.equal(physics.measure(x, generator), physics.A(x))
    assert torch.equal(generator.get_state(), before)


@pytest.mark.parametrize("cls", OPERATORS)
def test_a_two_dimensional_mask_is_refused_with_both_shapes(cls):
    with pytest.raises(ValueError, match=r"\(B, 1, T, H, W\); got \(2, 1, 8, 6\)"):
        cls(torch.ones(2, 1, H, W))


@pytest.mark.parametrize("cls", OPERATORS)
def test_with_mask_keeps_sigma_and_accepts_a_frame_subset(cls):
    physics = cls(_random_mask(), sigma=0.3)
    subset = physics.with_mask(physics.mask[:, :, :2])
    assert subset.n_frames == 2
    assert subset.sigma == 0.3
    assert physics.n_frames == T  # the original is unchanged


def test_select_frames_matches_a_loop_and_reads_shared_data():
    data = _randn((B, 2, 5, H, W), 16)
    frames = torch.tensor([[4, 0], [1, 3]])
    picked = select_frames(data, frames)
    for b in range(B):
        for j in range(2):
            assert torch.equal(picked[b, :, j], data[b, :, frames[b, j]])
    shared = select_frames(data[:1], frames)
    assert torch.equal(shared[1, :, 0], data[0, :, 1])


def test_time_average_counts_the_mask_not_the_values():
    y = torch.zeros(1, 2, 3, 1, 2)
    mask = torch.zeros(1, 1, 3, 1, 2)
    mask[0, 0, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])  # point 0: two samples, 2 and 0
    y[0, 0, 0, 0, 0] = 2.0
    y[0, 0, 2, 0, 0] = 7.0  # outside the mask: ignored
    # point 1: never sampled → 0
    average = time_average(y, mask)
    assert average[0, 0, 0].tolist() == [1.0, 0.0]


def test_time_agnostic_runs_the_network_frame_by_frame():
    net = UNet(scales=2, width=4, generator=_g(17))
    wrapped = TimeAgnostic(net)
    video = torch.randn(B, 2, T, H, 8, generator=_g(18))
    out = wrapped(video)
    assert out.shape == video.shape
    for t in range(T):
        torch.testing.assert_close(out[:, :, t], net(video[:, :, t]))
    image = video[:, :, 0]
    assert torch.equal(wrapped(image), net(image))


def test_dynamic_modl_reconstructs_videos_and_static_images():
    model = build_dynamic_modl(num_iter=2, scales=2, width=4, generator=_g(19))
    mask = _random_mask(frames=4).float()
    y_video = DynamicMRI(mask).A(torch.randn(B, 2, 4, H, W, generator=_g(20)))
    video = model(y_video, DynamicMRI(mask))
    assert video.shape == (B, 2, 4, H, W)
    # Frame by frame with the static MoDL (same weights) gives the same video.
    static_modl = MoDL(model.denoiser.network, num_iter=2)
    static_modl.step_sizes = model.step_sizes
    by_frame = TimeAgnosticReconstructor(static_modl)(y_video, DynamicMRI(mask))
    torch.testing.assert_close(video, by_frame, rtol=1e-5, atol=1e-5)
    y_static = SequentialMRI(mask).A(torch.randn(B, 2, H, W, generator=_g(21)))
    assert model(y_static, SequentialMRI(mask)).shape == (B, 2, H, W)


def test_time_averaging_equals_the_sequential_operator_for_disjoint_frames():
    mask = _disjoint_mask().float()
    physics = SequentialMRI(mask)
    modl = build_modl(num_iter=2, scales=2, width=4, generator=_g(22))
    y = physics.A(torch.randn(B, 2, H, W, generator=_g(23)))
    torch.testing.assert_close(TimeAveraging(modl)(y, physics), modl(y, physics))


def test_dynamic_modl_has_the_static_modl_weights_for_the_same_generator():
    dynamic = build_dynamic_modl(num_iter=2, scales=2, width=4, generator=_g(24))
    static = build_modl(num_iter=2, scales=2, width=4, generator=_g(24))
    for (name, a), (_, b) in zip(
        dynamic.denoiser.network.state_dict().items(),
        static.denoiser.state_dict().items(),
        strict=True,
    ):
        assert torch.equal(a, b), name
