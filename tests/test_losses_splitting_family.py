"""Weighted / Robust SSDU, splitting consistency, multi-operator consistency and their masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssibench.losses.moc import MOConsistencyLoss
from ssibench.losses.splitting import SplittingLoss, SplittingModel
from ssibench.losses.splitting_consistency import SplittingConsistencyLoss
from ssibench.losses.weighted_splitting import (
    RobustSplittingLoss,
    WeightedSplittingLoss,
    kspace_weights,
)
from ssibench.masks import (
    BernoulliSplittingMaskGenerator,
    GaussianMaskGenerator,
    MultiplicativeSplittingMaskGenerator,
    RandomMaskGenerator,
    inclusion_probabilities,
)
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

H, W = 8, 16
#: Acquisition: 4 centre columns (6…9) + 4 of the other 12 uniformly, so P = 1/3 off the centre.
ACQUISITION = RandomMaskGenerator(acceleration=2, center_fraction=0.25)
#: Split: 8 of 16 columns uniformly, so P̃ = 1/2; then w² = (1 − P̃P) / (P(1 − P̃)) = 5 off the centre.
SPLIT = RandomMaskGenerator(acceleration=2, center_fraction=0.0)
CENTRE = slice(6, 10)


class ZeroFilled(nn.Module):
    """f(y, A) = Aᴴ y: a fixed, parameter-free 'network'."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


class Squared(nn.Module):
    """f(y, A) = z + z²/2 with z = Aᴴ y: fixed, and it fills unacquired k-space."""

    def forward(self, y, physics):
        z = physics.A_adjoint(y)
        return z + 0.5 * z**2


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _physics(batch=3, seed=0, sigma=0.0, multicoil=False):
    mask = ACQUISITION.sample(batch, H, W, _gen(seed)).double()
    if multicoil:
        return MultiCoilMRI(mask, birdcage_maps(2, H, W).to(torch.complex128), sigma)
    return SingleCoilMRI(mask, sigma)


def _image(batch=3, seed=1):
    return torch.randn(batch, 2, H, W, dtype=torch.float64, generator=_gen(seed))


def _call(loss, x_net, y, physics, model):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=None, epoch=0)


def _kspace_mask(mask, y):
    return mask.unsqueeze(2) if y.ndim == 5 else mask


# ----------------------------------------------------------------------------- masks


def test_multiplicative_split_is_the_column_mask_times_omega():
    omega = _physics(batch=3).mask
    splitter = MultiplicativeSplittingMaskGenerator(SPLIT)
    m1 = splitter.sample(omega, _gen(5))
    expected = SPLIT.sample(3, H, W, _gen(5)).double() * omega
    assert m1.dtype == torch.float64
    assert torch.equal(m1, expected)
    assert torch.count_nonzero(m1 * (1 - omega)) == 0
    assert torch.equal(m1, m1[:, :, :1].expand_as(m1))  # whole lines


def test_multiplicative_split_of_a_shared_mask_draws_one_split_per_sample():
    omega = torch.ones(1, 1, H, W)
    m1 = MultiplicativeSplittingMaskGenerator(GaussianMaskGenerator(2, 0.0)).sample(
        omega, _gen(0), batch_size=6
    )
    assert m1.shape == (6, 1, H, W)
    assert m1[:, 0, 0].sum(dim=1).eq(W // 2).all()
    assert len({tuple(row.tolist()) for row in m1[:, 0, 0]}) > 1


def test_multiplicative_split_needs_a_mask_generator():
    with pytest.raises(TypeError, match="MaskGenerator"):
        MultiplicativeSplittingMaskGenerator(BernoulliSplittingMaskGenerator(0.5))


# ------------------------------------------------------------------------- weights


def test_weights_equal_their_closed_form_for_uniform_sampling():
    weights = kspace_weights(ACQUISITION, SPLIT, W)
    expected = torch.full((W,), 5.0, dtype=torch.float64).sqrt()
    expected[CENTRE] = 1.0
    assert torch.allclose(weights, expected, rtol=0, atol=1e-12)


def test_weights_follow_the_closed_form_for_gaussian_densities():
    acquisition, split = GaussianMaskGenerator(4), GaussianMaskGenerator(2, 0.0)
    p = inclusion_probabilities(acquisition, 32)
    p_split = inclusion_probabilities(split, 32)
    expected_squared = (1 - p_split * p) / (p * (1 - p_split))
    weights = kspace_weights(acquisition, split, 32)
    assert torch.allclose(weights**2, expected_squared, rtol=1e-12)
    assert torch.equal(weights[p == 1], torch.ones_like(weights[p == 1]))


# -------------------------------------------------------------------- weighted SSDU


@pytest.mark.parametrize("multicoil", [False, True])
def test_weighted_ssdu_equals_its_hand_formula_for_fixed_model_and_replayed_masks(multicoil):
    physics, x = _physics(multicoil=multicoil), _image()
    y = physics.A(x)
    loss = WeightedSplittingLoss(_gen(3), ACQUISITION, SPLIT)
    model = loss.adapt_model(ZeroFilled()).train()
    x_net = model(y, physics, update_parameters=True)
    m1 = SPLIT.sample(3, H, W, _gen(3)).double() * physics.mask
    m2 = physics.mask - m1
    x_hand = physics.with_mask(m1).A_adjoint(y)
    assert torch.equal(model.last_input_masks, m1)
    assert torch.allclose(x_net, x_hand)
    weight_squared = torch.full((W,), 5.0, dtype=torch.float64)
    weight_squared[CENTRE] = 1.0
    residual = _kspace_mask(m2, y) * (physics.A(x_hand) - y)
    expected = (weight_squared * residual**2).sum() / y.numel()  # no m/m₂ normalisation
    assert _call(loss, x_net, y, physics, model).item() == pytest.approx(expected.item(), rel=1e-12)


def test_weighted_ssdu_evaluates_on_the_full_input_without_drawing():
    physics, x = _physics(), _image()
    y = physics.A(x)
    generator = _gen(0)
    model = WeightedSplittingLoss(generator, ACQUISITION, SPLIT).adapt_model(ZeroFilled()).eval()
    state = generator.get_state()
    assert torch.equal(model(y, physics), physics.A_adjoint(y))
    assert torch.equal(generator.get_state(), state)


def test_weighted_ssdu_needs_its_adapted_model_and_refuses_another_split():
    physics, x = _physics(), _image()
    loss = WeightedSplittingLoss(_gen(0), ACQUISITION, SPLIT)
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(loss, x, physics.A(x), physics, ZeroFilled())
    wrapped = loss.adapt_model(ZeroFilled())
    assert loss.adapt_model(wrapped) is wrapped
    bernoulli = SplittingLoss(_gen(0), eval_split_input=False).adapt_model(ZeroFilled())
    with pytest.raises(ValueError, match="already wrapped"):
        loss.adapt_model(bernoulli)


# ---------------------------------------------------------------------- Robust SSDU


def test_robust_ssdu_equals_its_hand_formula_with_replayed_mask_and_noise():
    sigma, alpha = 0.2, 0.5
    physics, x = _physics(sigma=sigma), _image()
    y = physics.measure(x, _gen(9))
    loss = RobustSplittingLoss(_gen(7), ACQUISITION, SPLIT, sigma=sigma, alpha=alpha)
    model = loss.adapt_model(ZeroFilled()).train()
    x_net = model(y, physics, update_parameters=True)
    replay = _gen(7)
    m1 = SPLIT.sample(3, H, W, replay).double() * physics.mask
    noise = torch.randn(y.shape, generator=replay, dtype=torch.float64)
    noisier = m1 * (y + alpha * sigma * noise)
    x_hand = physics.with_mask(m1).A_adjoint(noisier)
    assert torch.allclose(x_net, x_hand)
    weight_squared = torch.full((W,), 5.0, dtype=torch.float64)
    weight_squared[CENTRE] = 1.0
    residual = physics.A(x_hand) - y
    weighted = (weight_squared * ((physics.mask - m1) * residual) ** 2).mean()
    noisier2noise = ((1 + 1 / alpha**2) ** 2 * (m1 * residual) ** 2).mean()  # factor 5, squared
    got = _call(loss, x_net, y, physics, model)
    assert got.item() == pytest.approx((weighted + noisier2noise).item(), rel=1e-12)


def test_robust_ssdu_copies_the_noise_level_and_evaluates_without_extra_noise():
    scenario = {"sigma": 0.1}
    first = RobustSplittingLoss(_gen(0), ACQUISITION, SPLIT, sigma=scenario["sigma"])
    second = RobustSplittingLoss(_gen(0), ACQUISITION, SPLIT, sigma=scenario["sigma"])
    assert first.noise_sigma == second.noise_sigma == pytest.approx(0.075)  # α σ, not α² σ
    assert scenario == {"sigma": 0.1}
    physics, x = _physics(sigma=0.1), _image()
    y = physics.measure(x, _gen(2))
    model = first.adapt_model(ZeroFilled()).train()
    _call(first, model(y, physics, update_parameters=True), y, physics, model)
    assert physics.sigma == 0.1
    assert torch.equal(model.eval()(y, physics), physics.A_adjoint(y))


def test_robust_ssdu_rejects_a_non_positive_alpha():
    with pytest.raises(ValueError, match="alpha"):
        RobustSplittingLoss(_gen(0), ACQUISITION, SPLIT, sigma=0.1, alpha=0.0)


# ------------------------------------------------------------ splitting consistency


@pytest.mark.parametrize("multicoil", [False, True])
def test_splitting_consistency_equals_its_hand_formula_with_replayed_splits(multicoil):
    physics, x = _physics(multicoil=multicoil), _image()
    y = physics.A(x)
    loss = SplittingConsistencyLoss(_gen(2), split_ratio=0.6)
    model = loss.adapt_model(Squared()).train()
    x_net = model(y, physics, update_parameters=True)
    recorded = model.last_input_masks
    got = _call(loss, x_net, y, physics, model)
    replay, splitter = _gen(2), BernoulliSplittingMaskGenerator(0.6)
    first, second = (splitter.sample(physics.mask, replay, batch_size=3) for _ in range(2))
    x1, x2 = (Squared()(y, physics.with_mask(m)) for m in (first, second))
    unacquired = physics.with_mask(1 - physics.mask)
    difference = ((unacquired.A(x1) - unacquired.A(x2)) ** 2).mean()
    expected = difference + ((physics.A(x1) - y) ** 2).mean() + ((physics.A(x2) - y) ** 2).mean()
    assert difference.item() > 1e-6  # the model fills unacquired k-space differently per split
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert model.last_input_masks is recorded


def test_splitting_consistency_needs_a_splitting_model_and_evaluates_on_full_input():
    physics, x = _physics(), _image()
    y = physics.A(x)
    loss = SplittingConsistencyLoss(_gen(0))
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(loss, x, y, physics, ZeroFilled())
    model = loss.adapt_model(ZeroFilled()).eval()
    assert torch.equal(model(y, physics), physics.A_adjoint(y))


# ------------------------------------------------------- multi-operator consistency


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_moc_equals_its_hand_formula_with_replayed_masks_and_noise(sigma):
    physics, x = _physics(sigma=sigma), _image()
    y = physics.measure(x, _gen(4))
    acquisition = GaussianMaskGenerator(acceleration=2)
    loss = MOConsistencyLoss(acquisition, _gen(6))
    got = _call(loss, x, y, physics, ZeroFilled())
    replay = _gen(6)
    new_masks = acquisition.sample(3, H, W, replay).double()
    y_new = physics.with_mask(new_masks).A(x)
    if sigma > 0:
        y_new = y_new + new_masks * sigma * torch.randn(y.shape, generator=replay, dtype=y.dtype)
    x2 = physics.with_mask(new_masks).A_adjoint(y_new)
    expected = ((physics.A(x2) - y) ** 2).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert len({tuple(m[0, 0].tolist()) for m in new_masks}) > 1  # one new mask per sample


def test_moc_ssdu_splits_the_second_reconstruction_inside_the_new_mask():
    physics, x = _physics(), _image()
    y = physics.A(x)
    acquisition = GaussianMaskGenerator(acceleration=2)
    losses = [
        MOConsistencyLoss(acquisition, _gen(6)),
        SplittingLoss(_gen(8), split_ratio=0.6, eval_n_samples=1, eval_split_input=False),
    ]
    model = ZeroFilled()
    for loss in losses:
        model = loss.adapt_model(model)
    assert isinstance(model, SplittingModel)
    model.train()
    x_net = model(y, physics, update_parameters=True)
    recorded = model.last_input_masks
    got = _call(losses[0], x_net, y, physics, model)
    splitter, split_replay = BernoulliSplittingMaskGenerator(0.6), _gen(8)
    splitter.sample(physics.mask, split_replay, batch_size=3)  # the trainer's split
    new_physics = physics.with_mask(acquisition.sample(3, H, W, _gen(6)).double())
    m1 = splitter.sample(new_physics.mask, split_replay, batch_size=3)
    assert torch.count_nonzero(m1 * (1 - new_physics.mask)) == 0
    x2 = new_physics.with_mask(m1).A_adjoint(new_physics.A(x_net))
    expected = ((physics.A(x2) - y) ** 2).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert model.last_input_masks is recorded


# ------------------------------------------------------------------------ all losses


def _family(name, seed, device="cpu"):
    generator = torch.Generator(device).manual_seed(seed)
    if name == "weighted":
        return WeightedSplittingLoss(generator, ACQUISITION, SPLIT)
    if name == "robust":
        return RobustSplittingLoss(generator, ACQUISITION, SPLIT, sigma=0.1)
    if name == "consistency":
        return SplittingConsistencyLoss(generator)
    return MOConsistencyLoss(ACQUISITION, generator)


class Scaled(nn.Module):
    """f(y, A) = z + z², z = s Aᴴ y: one trainable scalar that also reaches held-out k-space."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, y, physics):
        z = self.scale * physics.A_adjoint(y)
        return z + z**2


def _value(loss, network, physics, y):
    model = loss.adapt_model(network).train()
    if isinstance(model, SplittingModel):
        x_net = model(y, physics, update_parameters=True)
    else:
        x_net = model(y, physics)
    return _call(loss, x_net, y, physics, model)


@pytest.mark.parametrize("name", ["weighted", "robust", "consistency", "moc"])
def test_losses_are_reproducible_differentiable_and_leave_the_global_rng_alone(name):
    physics, x = _physics(sigma=0.1), _image()
    y = physics.measure(x, _gen(3))
    state = torch.get_rng_state()
    network = Scaled()
    value = _value(_family(name, 5), network, physics, y)
    again = _value(_family(name, 5), Scaled(), physics, y)
    other = _value(_family(name, 6), Scaled(), physics, y)
    assert torch.equal(torch.get_rng_state(), state)
    assert value.ndim == 0
    assert value.item() == again.item()
    assert value.item() != other.item()
    value.backward()
    assert network.scale.grad is not None
    assert network.scale.grad.abs() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["weighted", "robust", "consistency", "moc"])
def test_losses_run_with_a_cuda_generator_and_cuda_data(name):
    device = torch.device("cuda")
    physics, x = _physics(sigma=0.1), _image()
    physics = physics.to(device)
    y = physics.measure(x.to(device), torch.Generator(device).manual_seed(3))
    value = _value(_family(name, 0, device), Scaled().to(device), physics, y)
    assert value.device.type == "cuda"
    assert torch.isfinite(value)
