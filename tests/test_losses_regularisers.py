import pytest
import torch
from torch import nn

from ssibench.losses.regularisers import FNEJacobianSpectralNorm, JacobianSpectralNorm, TVLoss


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tv(x):
    return TVLoss()(x_net=x, y=x, physics=None, model=None, x=None, epoch=0)


def test_tv_hand_value_on_a_4x4_image():
    x = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    x[0, 0] = torch.arange(16.0).view(4, 4)  # vertical steps of 4, horizontal steps of 1
    # per sample: Σ(Δ_h)²/(C(H−1)W) = 12·16/24 = 8, Σ(Δ_w)²/(CH(W−1)) = 12·1/24 = 0.5
    assert _tv(x).item() == pytest.approx(2 * (8 + 0.5))
    assert TVLoss(weight=0.5)(x_net=x, y=x, physics=None, model=None).item() == pytest.approx(8.5)


def test_tv_is_the_batch_mean_and_zero_on_constant_images():
    a = torch.randn(1, 2, 4, 4, dtype=torch.float64, generator=_gen(0))
    b = torch.full((1, 2, 4, 4), 3.0, dtype=torch.float64)
    assert _tv(b).item() == 0.0
    assert _tv(torch.cat((a, b))).item() == pytest.approx(_tv(a).item() / 2)


def test_tv_rejects_non_images():
    with pytest.raises(ValueError, match="B, C, H, W"):
        _tv(torch.zeros(2, 4, 4))


def _matrix_with_singular_values(values, seed=0):
    n = len(values)
    u, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=_gen(seed)))
    v, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=_gen(seed + 1)))
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


def _linear_map(x, matrices):
    """Per-sample y_b = M_b vec(x_b), x: (B, 2, 2, 2)."""
    return torch.einsum("bij,bj->bi", matrices, x.flatten(1)).view_as(x)


def test_jsn_of_a_linear_map_is_its_largest_singular_value():
    spectra = [[3.0, 1.5, 1, 0.5, 0.4, 0.3, 0.2, 0.1], [2.0, 0.9, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1]]
    matrices = torch.stack([_matrix_with_singular_values(s, seed=i) for i, s in enumerate(spectra)])
    x = torch.randn(2, 2, 2, 2, dtype=torch.float64, generator=_gen(5), requires_grad=True)
    y = _linear_map(x, matrices)
    jsn = JacobianSpectralNorm(_gen(1), max_iter=200, tol=1e-12, reduction="none")
    norms = jsn(y, x)
    assert torch.allclose(norms, torch.linalg.matrix_norm(matrices, ord=2), rtol=1e-8)
    assert JacobianSpectralNorm(_gen(1), max_iter=200, tol=1e-12)(y, x).item() == pytest.approx(3)
    mean = JacobianSpectralNorm(_gen(1), max_iter=200, tol=1e-12, reduction="mean")(y, x)
    assert mean.item() == pytest.approx(2.5)


def test_jsn_stops_early_once_converged_without_verbose():
    matrix = _matrix_with_singular_values([4.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])[None]
    x = torch.randn(1, 2, 2, 2, dtype=torch.float64, generator=_gen(5), requires_grad=True)
    jsn = JacobianSpectralNorm(_gen(1), max_iter=500, tol=1e-6)
    assert jsn(_linear_map(x, matrix), x).item() == pytest.approx(4.0, rel=1e-5)
    assert 2 <= jsn.last_iterations < 500  # the reference ran all 500 unless verbose (B8)


def test_jsn_is_differentiable_unless_in_eval_mode():
    a = nn.Parameter(torch.tensor(-2.0, dtype=torch.float64))
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=_gen(0), requires_grad=True)
    value = JacobianSpectralNorm(_gen(1))(a * x, x)
    assert value.item() == pytest.approx(2.0)
    value.backward()
    assert a.grad.item() == pytest.approx(-1.0)  # d|a|/da
    frozen = JacobianSpectralNorm(_gen(1), eval_mode=True)(a * x, x)
    assert not frozen.requires_grad


def test_jsn_needs_an_input_that_requires_grad():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        JacobianSpectralNorm(_gen(0))(2 * x, x)


def test_fne_norm_of_a_scaled_denoiser_and_interpolation():
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, generator=_gen(0))
    other = torch.randn(2, 2, 4, 4, dtype=torch.float64, generator=_gen(1))
    fne = FNEJacobianSpectralNorm(_gen(2), max_iter=50)
    assert fne(x, lambda v: 0.9 * v).item() == pytest.approx(0.8)  # ‖2c − 1‖
    seen = []

    def denoiser(v):
        seen.append(v.detach())
        return 0.25 * v

    fresh = FNEJacobianSpectralNorm(_gen(2), max_iter=50)
    assert fresh(x, denoiser, interpolate_with=other).item() == pytest.approx(0.5)
    eta = torch.rand((2, 1, 1, 1), generator=_gen(2)).double()  # η is drawn first
    assert torch.allclose(seen[-1], eta * x + (1 - eta) * other)
    assert not x.requires_grad  # the caller's tensor is untouched
    assert not other.requires_grad


def test_jsn_is_reproducible_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    x = torch.randn(2, 8, dtype=torch.float64, generator=_gen(0), requires_grad=True)

    def run(seed):
        jsn = JacobianSpectralNorm(_gen(seed), max_iter=3, tol=0.0, reduction="none")
        return jsn(torch.tanh(x) * x, x).detach()

    assert torch.equal(run(4), run(4))
    assert not torch.equal(run(4), run(5))
    assert torch.equal(torch.get_rng_state(), state)
