import math
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from ssibench.losses.noise import (
    Neighbor2NeighborLoss,
    R2RLoss,
    R2RModel,
    ScoreLoss,
    ScoreModel,
    neighbor_subsample,
)
from ssibench.losses.sure import (
    ENSURELoss,
    SureGaussianLoss,
    SurePGLoss,
    SurePoissonLoss,
)
from ssibench.masks import EquispacedMaskGenerator, GaussianMaskGenerator, inclusion_probabilities
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

H = W = 8
DRAWS = 2000
CHUNKS = 20


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _image(batch: int = 1, seed: int = 1) -> Tensor:
    return torch.randn(batch, 2, H, W, dtype=torch.float64, generator=_gen(seed))


def _partial_mask() -> Tensor:
    """A fixed (1, 1, H, W) mask with 5 of 8 columns sampled."""
    columns = torch.tensor([1, 0, 1, 1, 1, 0, 1, 0], dtype=torch.float64)
    return columns.expand(1, 1, H, W).clone()


class Linear(nn.Module):
    """f(y, A) = c · Aᴴ y, so A f(y) = c · M y (single-coil)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, y, physics):
        return self.c * physics.A_adjoint(y)


class Recording(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inputs = []

    def forward(self, y, physics):
        self.inputs.append(y)
        return physics.A_adjoint(y)


@dataclass(frozen=True)
class Denoising:
    """Identity operator with the Physics interface (measurement = image), for Poisson SURE."""

    mask: Tensor
    sigma: float = 0.0

    def A(self, x):
        return self.mask * x

    def A_adjoint(self, y):
        return self.mask * y


def _call(loss, x_net, y, physics, model):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=None, epoch=0)


def _chunked_mean_and_se(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std() / math.sqrt(len(values)))


def _noisy_batch(physics, batch=DRAWS // CHUNKS, seed=2):
    x = _image()
    g = _gen(seed)
    ys = [physics.measure(x.expand(batch, -1, -1, -1), g) for _ in range(CHUNKS)]
    return x, ys


# ----------------------------------------------------------------------------------------- SURE


@pytest.mark.parametrize("full", [True, False])
def test_sure_mean_matches_true_mse_of_a_linear_denoiser(full):
    sigma, c = 0.3, 0.7
    mask = torch.ones(1, 1, H, W, dtype=torch.float64) if full else _partial_mask()
    physics = SingleCoilMRI(mask, sigma)
    x, ys = _noisy_batch(physics)
    loss, model = SureGaussianLoss(sigma, _gen(5)), Linear(c)
    values = [_call(loss, model(y, physics), y, physics, model).item() for y in ys]
    mean, se = _chunked_mean_and_se(values)
    z = physics.A(x)
    # E mean((c M y − A x)²) = (c − 1)² mean(z²) + c² σ² mean(M)
    truth = ((c - 1) ** 2 * z.pow(2).mean() + c**2 * sigma**2 * mask.mean()).item()
    assert abs(mean - truth) < 4 * se
    if not full:  # the reference's constant −σ² (instead of −σ² mean(M)) would be far off
        assert sigma**2 * (1 - mask.mean().item()) > 10 * se


def test_sure_perturbs_only_sampled_entries():
    physics = SingleCoilMRI(_partial_mask(), 0.2)
    x = _image(batch=3)
    y = physics.measure(x, _gen(0))
    model = Recording()
    _call(SureGaussianLoss(0.2, _gen(1)), model(y, physics), y, physics, model)
    perturbation = model.inputs[-1] - y
    assert torch.count_nonzero(perturbation * (1 - physics.mask)) == 0
    assert torch.count_nonzero(perturbation * physics.mask) == 2 * 3 * physics.mask.sum()


def test_sure_works_on_multicoil_data():
    physics = MultiCoilMRI(_partial_mask(), birdcage_maps(3, H, W).to(torch.complex128), sigma=0.1)
    y = physics.measure(_image(batch=2), _gen(0))
    model = Linear(0.5)
    value = _call(SureGaussianLoss(0.1, _gen(1)), model(y, physics), y, physics, model)
    assert value.ndim == 0
    assert torch.isfinite(value)


def test_pure_mean_matches_true_mse_of_a_linear_denoiser():
    gain, c = 0.5, 0.8
    physics = Denoising(torch.ones(1, 1, H, W, dtype=torch.float64))
    z = torch.rand(1, 2, H, W, dtype=torch.float64, generator=_gen(3)) * 4 + 0.5
    g = _gen(4)
    loss, model = SurePoissonLoss(gain, _gen(5)), Linear(c)
    values = []
    for _ in range(CHUNKS):
        y = gain * torch.poisson(z.expand(DRAWS // CHUNKS, -1, -1, -1) / gain, generator=g)
        values.append(_call(loss, model(y, physics), y, physics, model).item())
    mean, se = _chunked_mean_and_se(values)
    # Var y = γ z, so E mean((c y − z)²) = (c − 1)² mean(z²) + c² γ mean(z)
    truth = ((c - 1) ** 2 * z.pow(2).mean() + c**2 * gain * z.mean()).item()
    assert abs(mean - truth) < 4 * se


@pytest.mark.parametrize("second_derivative", [False, True])
def test_pg_sure_mean_matches_true_mse_of_a_linear_denoiser(second_derivative):
    gain, sigma, c = 0.5, 0.4, 0.6
    physics = Denoising(torch.ones(1, 1, H, W, dtype=torch.float64))
    z = torch.rand(1, 2, H, W, dtype=torch.float64, generator=_gen(3)) * 4 + 0.5
    g = _gen(4)
    loss = SurePGLoss(sigma, gain, _gen(5), second_derivative=second_derivative)
    model = Linear(c)
    values = []
    for _ in range(CHUNKS):
        shape = (DRAWS // CHUNKS, 2, H, W)
        poisson = gain * torch.poisson(z.expand(shape) / gain, generator=g)
        y = poisson + sigma * torch.randn(shape, dtype=torch.float64, generator=g)
        values.append(_call(loss, model(y, physics), y, physics, model).item())
    mean, se = _chunked_mean_and_se(values)
    truth = ((c - 1) ** 2 * z.pow(2).mean() + c**2 * (gain * z.mean() + sigma**2)).item()
    assert abs(mean - truth) < 4 * se


def test_unsure_ascends_sigma2_with_momentum_and_keeps_no_graph():
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64), 0.2)
    y = physics.measure(_image(batch=2), _gen(0))
    model = Linear(0.5)  # A f linear: div = c mean(b²) per draw, replayed below
    step, beta = 1e-2, 0.9
    loss = SureGaussianLoss(0.2, _gen(7), unsure=True, step_size=step, momentum=beta)
    replay = _gen(7)
    velocity, sigma2 = 0.0, 0.04
    for _ in range(2):
        _call(loss, model(y, physics), y, physics, model)
        b = torch.randn(y.shape, dtype=y.dtype, generator=replay)
        divergence = (0.5 * b.pow(2)).mean().item()
        velocity = beta * velocity + (1 - beta) * 2 * divergence
        sigma2 += step * velocity
        assert loss.sigma2.item() == pytest.approx(sigma2, rel=1e-9)
    assert not loss.sigma2.requires_grad


# --------------------------------------------------------------------------------------- ENSURE


def test_ensure_weights_invert_the_sampling_probability():
    mask_generator = GaussianMaskGenerator(3.0)
    weights = ENSURELoss(0.1, mask_generator, _gen(0)).column_weights(16)
    masks = mask_generator.sample(40000, 1, 16, _gen(1))[:, 0, 0, :].double()
    # E_M[w ⊙ M] = 1 for every column: the weighted k-space error is unbiased over masks
    assert torch.allclose(
        (weights * masks).mean(dim=0), torch.ones(16, dtype=torch.float64), atol=0.05
    )


@pytest.mark.parametrize("weighted_divergence", [False, True])
def test_ensure_hand_value_with_a_replayed_probe(weighted_divergence):
    sigma, c, tau = 0.2, 0.6, 0.02
    mask_generator = GaussianMaskGenerator(3.0)
    physics = SingleCoilMRI(_partial_mask(), sigma)
    y = physics.measure(_image(batch=2), _gen(0))
    model = Linear(c)
    loss = ENSURELoss(
        sigma, mask_generator, _gen(3), tau=tau, weighted_divergence=weighted_divergence
    )
    got = _call(loss, model(y, physics), y, physics, model)
    w = 1 / inclusion_probabilities(mask_generator, W)
    b = torch.randn(y.shape, dtype=y.dtype, generator=_gen(3)) * physics.mask
    # A f(y + τ b) − A f(y) = c τ M b exactly for this linear model
    divergence = (b * (w if weighted_divergence else 1) * c * physics.mask * b).mean()
    expected = (
        (w * (c * physics.mask * y - y) ** 2).mean()
        + 2 * sigma**2 * divergence
        - sigma**2 * (w * physics.mask).mean()
    )
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_weighted_ensure_is_unbiased_for_the_weighted_measurement_error():
    sigma, c = 0.3, 0.7
    mask_generator = GaussianMaskGenerator(3.0)
    physics = SingleCoilMRI(_partial_mask(), sigma)
    x, ys = _noisy_batch(physics)
    loss, model = ENSURELoss(sigma, mask_generator, _gen(5), weighted_divergence=True), Linear(c)
    values = [_call(loss, model(y, physics), y, physics, model).item() for y in ys]
    mean, se = _chunked_mean_and_se(values)
    w = 1 / inclusion_probabilities(mask_generator, W)
    z = physics.A(x)
    truth = ((c - 1) ** 2 * (w * z**2).mean() + c**2 * sigma**2 * (w * physics.mask).mean()).item()
    assert abs(mean - truth) < 4 * se


def test_ensure_is_finite_when_a_column_is_never_sampled():
    mask_generator = EquispacedMaskGenerator(4.0)
    assert float(inclusion_probabilities(mask_generator, W * 4).min()) == 0.0  # B15's case
    physics = SingleCoilMRI(mask_generator.sample(2, H, W * 4, _gen(0)).double(), 0.1)
    x = torch.randn(2, 2, H, W * 4, dtype=torch.float64, generator=_gen(1))
    y = physics.measure(x, _gen(2))
    model = Linear(0.5)
    value = _call(ENSURELoss(0.1, mask_generator, _gen(3)), model(y, physics), y, physics, model)
    assert torch.isfinite(value)


# ------------------------------------------------------------------------------------------ R2R


def test_r2r_expectation_is_the_supervised_error_plus_a_constant():
    sigma, c, alpha = 0.3, 0.7, 0.5
    physics = SingleCoilMRI(_partial_mask(), sigma)
    x, ys = _noisy_batch(physics)
    loss = R2RLoss(_gen(5), alpha=alpha)
    model = loss.adapt_model(Linear(c)).train()
    values = []
    for y in ys:
        x_net = model(y, physics, update_parameters=True)
        values.append(_call(loss, x_net, y, physics, model).item())
    mean, se = _chunked_mean_and_se(values)
    z, m = physics.A(x), physics.mask.mean()
    # y₁, y₂ noises are independent: E L = E mean((c M y₁ − z)²) + σ² mean(M)/α
    supervised = (c - 1) ** 2 * z.pow(2).mean() + c**2 * sigma**2 * m / (1 - alpha)
    assert abs(mean - (supervised + sigma**2 * m / alpha).item()) < 4 * se


def test_r2r_recorrupts_sampled_entries_and_records_only_on_update():
    physics = SingleCoilMRI(_partial_mask(), 0.2)
    y = physics.measure(_image(batch=2), _gen(0))
    inner = Recording()
    loss = R2RLoss(_gen(1), alpha=0.5)
    model = loss.adapt_model(inner)
    assert loss.adapt_model(model) is model
    model.train()
    model(y, physics, update_parameters=True)
    recorded = model.last_recorrupted
    assert torch.equal(recorded, inner.inputs[-1])
    assert torch.count_nonzero((recorded - y) * (1 - physics.mask)) == 0
    assert torch.count_nonzero((recorded - y) * physics.mask) > 0
    model(y, physics)  # an extra forward inside another loss
    assert model.last_recorrupted is recorded


def test_r2r_eval_averages_independent_recorruptions():
    physics = SingleCoilMRI(_partial_mask(), 0.2)
    y = physics.measure(_image(batch=2), _gen(0))
    model = R2RLoss(_gen(4), alpha=0.5, eval_n_samples=3).adapt_model(Linear(1.0)).eval()
    out = model(y, physics)
    replay = R2RModel(Linear(1.0), _gen(4), alpha=0.5)
    expected = sum(physics.A_adjoint(replay.recorrupt(y, physics)) for _ in range(3)) / 3
    assert torch.allclose(out, expected)


def test_r2r_needs_its_adapted_model():
    physics = SingleCoilMRI(_partial_mask(), 0.2)
    y = physics.measure(_image(), _gen(0))
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(R2RLoss(_gen(0)), _image(), y, physics, Linear(1.0))


# ---------------------------------------------------------------------------- Neighbor2Neighbor


def test_neighbor_subsample_hand_values():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    x = torch.cat((x, x + 100), dim=1)  # the second channel follows the first one's choice
    first, second = neighbor_subsample(x, torch.tensor([[[0, 1], [4, 7]]]))
    assert first[0, 0].tolist() == [[0, 2], [9, 15]]
    assert second[0, 0].tolist() == [[1, 6], [8, 14]]
    assert torch.equal(first[:, 1], first[:, 0] + 100)
    assert torch.equal(second[:, 1], second[:, 0] + 100)


def test_neighbor_subsample_picks_distinct_edge_neighbours():
    b, h, w = 3, 8, 6
    x = torch.arange(b * h * w, dtype=torch.float64).view(b, 1, h, w)
    index = torch.randint(8, (b, h // 2, w // 2), generator=_gen(0))
    first, second = neighbor_subsample(x, index)
    assert first.shape == second.shape == (b, 1, h // 2, w // 2)
    row_1, col_1 = (first % (h * w)) // w, first % w
    row_2, col_2 = (second % (h * w)) // w, second % w
    assert torch.equal(row_1 // 2, row_2 // 2)
    assert torch.equal(col_1 // 2, col_2 // 2)
    assert bool(((row_1 - row_2).abs() + (col_1 - col_2).abs() == 1).all())


def test_n2n_hand_value_with_replayed_pairs():
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64), 0.3)
    y = physics.measure(_image(batch=2), _gen(0))
    model = Linear(1.0)  # on the half-size fully sampled operator: f(F u₁) = u₁
    x_net = 0.8 * physics.A_adjoint(y)
    got = _call(Neighbor2NeighborLoss(_gen(9), gamma=2.0), x_net, y, physics, model)
    index = torch.randint(8, (2, H // 2, W // 2), generator=_gen(9))
    u1, u2 = neighbor_subsample(physics.A_adjoint(y), index)
    r1, r2 = neighbor_subsample(x_net, index)
    expected = ((u1 - u2) ** 2).mean() + 2.0 * ((u1 - r1 - (u2 - r2)) ** 2).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_n2n_rejects_multicoil_and_odd_sizes():
    multicoil = MultiCoilMRI(torch.ones(1, 1, H, W), birdcage_maps(2, H, W))
    y = multicoil.A(torch.randn(1, 2, H, W))
    with pytest.raises(TypeError, match="single-coil"):
        _call(Neighbor2NeighborLoss(_gen(0)), torch.randn(1, 2, H, W), y, multicoil, Linear(1))
    odd = SingleCoilMRI(torch.ones(1, 1, 5, 6))
    with pytest.raises(ValueError, match="even"):
        _call(
            Neighbor2NeighborLoss(_gen(0)),
            torch.randn(1, 2, 5, 6),
            torch.randn(1, 2, 5, 6),
            odd,
            Linear(1),
        )


# -------------------------------------------------------------------------------- Noise2Score


class ScaledScore(nn.Module):
    """N(ỹ, A) = Aᴴ(−k ỹ): with a full mask the measurement score is s(ỹ) = −k ỹ."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, y, physics):
        return physics.A_adjoint(-self.k * y)


def test_score_model_is_the_wiener_filter_for_a_gaussian_prior():
    prior_var, sigma = 2.0, 0.5
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64), sigma)
    y = physics.measure(_image(batch=2), _gen(0))
    # for x ~ N(0, s² I) the score of y is −y/(s² + σ²); Tweedie gives Aᴴy · s²/(s² + σ²)
    model = ScoreLoss(_gen(1)).adapt_model(ScaledScore(1 / (prior_var + sigma**2))).eval()
    expected = physics.A_adjoint(y) * prior_var / (prior_var + sigma**2)
    assert torch.allclose(model(y, physics), expected)
    assert torch.equal(model(y, physics), model(y, physics))  # no noise at evaluation


def test_score_loss_hand_value_with_replayed_noise():
    physics = SingleCoilMRI(_partial_mask(), 0.2)
    y = physics.measure(_image(batch=3), _gen(0))
    loss = ScoreLoss(_gen(6), total_batches=10, delta=(0.01, 0.5))
    model = loss.adapt_model(ScaledScore(3.0)).train()
    x_net = model(y, physics, update_parameters=True)
    replay = _gen(6)
    delta = 0.5 * (1 - 1 / 10) + 0.01 / 10
    level = delta * torch.randn((3, 1, 1, 1), dtype=y.dtype, generator=replay)
    eps = torch.randn(y.shape, dtype=y.dtype, generator=replay) * physics.mask
    score = physics.mask * (-3.0 * (y + level * eps))
    expected = ((eps + level * score) ** 2).mean()
    assert _call(loss, x_net, y, physics, model).item() == pytest.approx(expected.item(), rel=1e-10)
    assert torch.allclose(x_net, physics.A_adjoint(y + 0.2**2 * score))


def test_score_annealing_advances_once_per_step_and_stops_at_delta_min():
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64), 0.1)
    y = physics.measure(_image(), _gen(0))
    model = ScoreLoss(_gen(1), total_batches=4, delta=(0.01, 0.09)).adapt_model(ScaledScore(1))
    model.train()
    seen = []
    for _ in range(6):
        model(y, physics, update_parameters=True)
        model(y, physics)  # extra forwards (other losses) do not advance the schedule
        seen.append(model.annealed_delta())
    assert seen == pytest.approx([0.07, 0.05, 0.03, 0.01, 0.01, 0.01])


def test_score_loss_needs_its_adapted_model():
    physics = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64), 0.1)
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(ScoreLoss(_gen(0)), _image(), _image(), physics, Linear(1.0))


# ------------------------------------------------------------------------------------- generic


def _run_once(name: str, seed: int) -> Tensor:
    mask = torch.ones(1, 1, H, W, dtype=torch.float64) if name == "n2n" else _partial_mask()
    physics = SingleCoilMRI(mask, 0.2)
    y = physics.measure(_image(batch=2), _gen(0))
    scale = nn.Parameter(torch.tensor(0.7, dtype=torch.float64))

    class Scaled(nn.Module):
        def forward(self, y, physics):
            return scale * physics.A_adjoint(y)

    losses = {
        "sure": SureGaussianLoss(0.2, _gen(seed)),
        "pure": SurePoissonLoss(0.5, _gen(seed)),
        "pg": SurePGLoss(0.2, 0.5, _gen(seed), second_derivative=True),
        "ensure": ENSURELoss(0.2, GaussianMaskGenerator(3.0), _gen(seed)),
        "r2r": R2RLoss(_gen(seed), alpha=0.5),
        "n2n": Neighbor2NeighborLoss(_gen(seed)),
        "score": ScoreLoss(_gen(seed)),
    }
    loss = losses[name]
    model = loss.adapt_model(Scaled()).train()
    wrapped = isinstance(model, (R2RModel, ScoreModel))
    x_net = model(y, physics, update_parameters=True) if wrapped else model(y, physics)
    value = _call(loss, x_net, y, physics, model)
    value.backward()
    assert scale.grad is not None
    assert scale.grad.abs() > 0
    return value.detach()


@pytest.mark.parametrize("name", ["sure", "pure", "pg", "ensure", "r2r", "n2n", "score"])
def test_losses_are_reproducible_differentiable_and_leave_the_global_rng_alone(name):
    state = torch.get_rng_state()
    first = _run_once(name, seed=11)
    assert torch.equal(first, _run_once(name, seed=11))
    assert not torch.equal(first, _run_once(name, seed=12))
    assert first.ndim == 0
    assert torch.equal(torch.get_rng_state(), state)
