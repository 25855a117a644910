import math

import pytest
import torch

from ssibench.fft import to_complex
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps, conjugate_gradient

H, W = 16, 12


def _masks(batch, generator):
    return GaussianMaskGenerator(acceleration=4).sample(batch, H, W, generator).double()


def _physics(kind, batch, generator, sigma=0.0):
    mask = _masks(batch, generator)
    if kind == "single":
        return SingleCoilMRI(mask, sigma)
    return MultiCoilMRI(mask, birdcage_maps(4, H, W).to(torch.complex128), sigma)


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_adjointness(kind, generator):
    physics = _physics(kind, 3, generator)
    x = torch.randn(3, 2, H, W, dtype=torch.float64, generator=generator)
    y = torch.randn(physics.A(x).shape, dtype=torch.float64, generator=generator)
    lhs = (physics.A(x) * y).sum()
    rhs = (x * physics.A_adjoint(y)).sum()
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_adjointness_in_float32(kind, generator):
    physics = _physics(kind, 2, generator)
    physics = physics.with_mask(physics.mask.float())
    if kind == "multi":
        physics = MultiCoilMRI(physics.mask, birdcage_maps(4, H, W))
    x = torch.randn(2, 2, H, W, generator=generator)
    y = torch.randn(physics.A(x).shape, generator=generator)
    lhs, rhs = (physics.A(x) * y).sum(), (x * physics.A_adjoint(y)).sum()
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_full_mask_single_coil_is_an_isometry(generator):
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    x = torch.randn(2, 2, H, W, dtype=torch.float64, generator=generator)
    assert torch.allclose(physics.A(x).norm(), x.norm())
    assert torch.allclose(physics.A_adjoint(physics.A(x)), x)


def test_full_mask_multicoil_normal_operator_is_identity(generator):
    physics = MultiCoilMRI(
        torch.ones(1, 1, H, W, dtype=torch.float64), birdcage_maps(4, H, W).to(torch.complex128)
    )
    x = torch.randn(2, 2, H, W, dtype=torch.float64, generator=generator)
    assert torch.allclose(physics.A_adjoint(physics.A(x)), x, atol=1e-6)


def test_birdcage_maps_match_reference_values_and_are_normalised():
    maps = birdcage_maps(4, 320, 320)
    assert maps.shape == (4, 320, 320)
    assert maps.dtype == torch.complex64
    assert torch.allclose((maps.abs() ** 2).sum(0), torch.ones(320, 320), atol=1e-5)
    expected_corner = torch.tensor(
        [0.100707 - 0.251769j, -0.100707 - 0.251769j, -0.584103 - 0.292052j, 0.584103 - 0.292052j]
    )
    assert torch.allclose(maps[:, 0, 0], expected_corner.to(torch.complex64), atol=1e-5)
    assert torch.allclose(maps[:, 160, 160], torch.full((4,), -0.5j), atol=1e-6)
    expected = torch.tensor(
        [0.253729 - 0.634323j, 0.101259 - 0.337530j, -0.058865 - 0.323759j, -0.245272 - 0.490543j]
    )
    assert torch.allclose(maps[:, 100, 250], expected.to(torch.complex64), atol=1e-5)


def test_single_coil_prox_solves_its_normal_equations(generator):
    physics = _physics("single", 3, generator)
    z = torch.randn(3, 2, H, W, dtype=torch.float64, generator=generator)
    y = physics.A(torch.randn(3, 2, H, W, dtype=torch.float64, generator=generator))
    gamma = 0.7
    u = physics.prox_l2(z, y, gamma)
    residual = gamma * physics.A_adjoint(physics.A(u) - y) + (u - z)
    assert residual.norm() < 1e-10 * z.norm()


def test_single_coil_prox_keeps_unsampled_kspace_of_z(generator):
    physics = _physics("single", 1, generator)
    z = torch.randn(1, 2, H, W, dtype=torch.float64, generator=generator)
    u = physics.prox_l2(z, torch.zeros(1, 2, H, W, dtype=torch.float64), torch.tensor(2.0))
    unsampled = 1 - physics.mask
    full = SingleCoilMRI(torch.ones_like(physics.mask))
    assert torch.allclose(full.A(u) * unsampled, full.A(z) * unsampled)
    assert torch.allclose(full.A(u) * physics.mask, full.A(z) * physics.mask / 3)


def test_multicoil_prox_reaches_cg_tolerance(generator):
    physics = MultiCoilMRI(
        _masks(2, generator), birdcage_maps(4, H, W).to(torch.complex128), cg_tol=1e-8
    )
    z = torch.randn(2, 2, H, W, dtype=torch.float64, generator=generator)
    y = physics.A(torch.randn(2, 2, H, W, dtype=torch.float64, generator=generator))
    u = physics.prox_l2(z, y, 1.5)
    rhs = 1.5 * physics.A_adjoint(y) + z
    residual = 1.5 * physics.A_adjoint(physics.A(u)) + u - rhs
    per_sample = residual.flatten(1).norm(dim=1) / rhs.flatten(1).norm(dim=1)
    assert (per_sample <= 1e-8).all()


def test_cg_result_of_a_sample_does_not_depend_on_the_batch(generator):
    mask = _masks(3, generator)
    maps = birdcage_maps(4, H, W).to(torch.complex128)
    physics = MultiCoilMRI(mask, maps, cg_tol=1e-3)
    z = torch.randn(3, 2, H, W, dtype=torch.float64, generator=generator)
    y = physics.A(torch.randn(3, 2, H, W, dtype=torch.float64, generator=generator))
    together = physics.prox_l2(z, y, 1.0)
    alone = MultiCoilMRI(mask[:1], maps, cg_tol=1e-3).prox_l2(z[:1], y[:1], 1.0)
    assert torch.allclose(together[:1], alone, atol=1e-12)


def test_conjugate_gradient_on_a_diagonal_system():
    diag = torch.tensor([[1.0, 2.0, 4.0, 8.0]], dtype=torch.complex128)
    rhs = torch.tensor([[1.0, 1.0, 1.0, 1.0]], dtype=torch.complex128)
    u = conjugate_gradient(lambda v: diag * v, rhs, torch.zeros_like(rhs), max_iter=10, tol=1e-12)
    assert torch.allclose(u, rhs / diag)


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_noise_is_masked_with_the_requested_std(kind):
    g = torch.Generator().manual_seed(0)
    physics = _physics(kind, 4, g, sigma=0.1)
    x = torch.zeros(4, 2, H, W, dtype=torch.float64)
    y = physics.measure(x, g)
    mask = physics.mask if kind == "single" else physics.mask.unsqueeze(2)
    mask = mask.expand_as(y)
    assert torch.count_nonzero(y[mask == 0]) == 0
    sampled = y[mask == 1]
    assert math.isclose(sampled.std().item(), 0.1, rel_tol=0.1)


def test_measure_is_deterministic_for_a_seed_and_noiseless_without_sigma(generator):
    physics = _physics("single", 2, generator, sigma=0.05)
    x = torch.randn(2, 2, H, W, dtype=torch.float64, generator=generator)
    a = physics.measure(x, torch.Generator().manual_seed(5))
    b = physics.measure(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    noiseless = SingleCoilMRI(physics.mask)
    assert torch.equal(noiseless.measure(x, None), noiseless.A(x))


def test_with_mask_shares_tensors_and_leaves_the_original_unchanged(generator):
    physics = _physics("multi", 2, generator)
    new_mask = torch.ones_like(physics.mask)
    other = physics.with_mask(new_mask)
    assert other.coil_maps is physics.coil_maps
    assert other.mask is new_mask
    assert not torch.equal(physics.mask, new_mask)


@pytest.mark.parametrize("bad", [torch.ones(2, 8, 8), torch.ones(2, 2, 8, 8)])
def test_mask_shape_is_checked(bad):
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        SingleCoilMRI(bad)


def test_zero_filled_adjoint_equals_pseudo_inverse(generator):
    physics = _physics("single", 1, generator)
    y = physics.A(torch.randn(1, 2, H, W, dtype=torch.float64, generator=generator))
    assert torch.equal(physics.A_dagger(y), physics.A_adjoint(y))
    assert to_complex(physics.A_adjoint(y)).shape == (1, H, W)
