"""SplittingLoss options (custom mask generator, output-split evaluation, pixelwise) and ES loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.losses import EquivariantSplittingLoss, SplittingLoss, SplittingModel
from ssibench.masks import (
    BernoulliSplittingMaskGenerator,
    GaussianMaskGenerator,
    MultiplicativeSplittingMaskGenerator,
    RandomMaskGenerator,
)
from ssibench.physics import SingleCoilMRI
from ssibench.transforms import Identity, Rotate, Transform, TransformParams

H = W = 8


class Replay:
    """A split-mask generator returning given masks in turn (and counting its calls)."""

    def __init__(self, masks):
        self.masks = list(masks)
        self.calls = 0

    def sample(self, input_mask, generator, batch_size=None):
        mask = self.masks[self.calls % len(self.masks)]
        self.calls += 1
        return mask


class ZeroFilled(nn.Module):
    """f(y, A) = Aᴴ y."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


class Weighted(nn.Module):
    """f(y, A) = w ⊙ Aᴴ y with a fixed, not rotation-invariant pixel weight w."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, y, physics):
        return self.weight * physics.A_adjoint(y)


class Fixed(Transform):
    """A transform whose 'random' draw is always the given parameters."""

    def __init__(self, transform, params):
        self.transform = transform
        self.params = params
        self.unitary = transform.unitary

    def sample_params(self, x, generator) -> TransformParams:
        return self.params

    def apply(self, x, params):
        return self.transform.apply(x, params)

    def inverse(self, x, params):
        return self.transform.inverse(x, params)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _setup(batch=2, seed=0):
    omega = RandomMaskGenerator(acceleration=2, center_fraction=0.25).sample(
        batch, H, W, _gen(seed)
    )
    physics = SingleCoilMRI(omega.double(), 0.0)
    x = torch.randn(batch, 2, H, W, generator=_gen(seed + 1), dtype=torch.float64)
    split = BernoulliSplittingMaskGenerator(0.5).sample(physics.mask, _gen(seed + 2))
    return physics, x, physics.A(x), split


def _mc(a, b):
    return (a - b).pow(2).mean()


def test_custom_mask_generator_is_used_and_its_masks_scored():
    physics, _, y, split = _setup()
    replay = Replay([split])
    loss = SplittingLoss(_gen(), mask_generator=replay)
    model = loss.adapt_model(ZeroFilled())
    x_net = model(y, physics, update_parameters=True)
    assert replay.calls == 1
    assert torch.equal(model.last_input_masks, split)
    assert torch.allclose(x_net, physics.with_mask(split).A_adjoint(y * split))
    target = physics.mask - split
    expected = _mc(target * (physics.A(x_net) - y), 0) * target.numel() / target.sum()
    value = loss(x_net=x_net, y=y, physics=physics, model=model)
    assert torch.allclose(value, expected)
    assert value > 0


def test_multiplicative_generator_splits_whole_acquired_lines():
    physics, _, y, _ = _setup(batch=3)
    splitter = MultiplicativeSplittingMaskGenerator(GaussianMaskGenerator(2, 0.0))
    model = SplittingLoss(_gen(), mask_generator=splitter).adapt_model(ZeroFilled())
    model(y, physics, update_parameters=True)
    m1 = model.last_input_masks
    assert torch.all(m1 <= physics.mask)
    assert torch.all(m1 == m1[..., :1, :])  # constant along each column: line-wise split
    assert 0 < m1.sum() < physics.mask.sum()


def test_pixelwise_false_is_refused_with_a_reason():
    with pytest.raises(ValueError, match=r"real and\s+imaginary"):
        SplittingLoss(_gen(), pixelwise=False)
    assert SplittingLoss(_gen(), pixelwise=True).pixelwise


class SplitSized(nn.Module):
    """f(y, A) = Aᴴ y + (Σ A's mask / 10) · z: output depends on which split it sees."""

    def __init__(self, z):
        super().__init__()
        self.z = z

    def forward(self, y, physics):
        return physics.A_adjoint(y) + physics.mask.sum() / 10 * self.z


def test_eval_split_output_averages_held_out_kspace_points():
    omega = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    omega[..., :3] = 1  # columns 0-2 acquired, column 3 not
    m1_a = torch.zeros_like(omega)
    m1_a[..., 0] = 1  # 4 points: held out = columns 1, 2
    m1_b = torch.zeros_like(omega)
    m1_b[..., :2] = 1  # 8 points: held out = column 2
    physics = SingleCoilMRI(omega, 0.0)
    x = torch.randn(1, 2, 4, 4, generator=_gen(3), dtype=torch.float64)
    z = torch.randn(1, 2, 4, 4, generator=_gen(4), dtype=torch.float64)
    loss = SplittingLoss(
        _gen(), eval_n_samples=2, mask_generator=Replay([m1_a, m1_b]), eval_split_output=True
    )
    model = loss.adapt_model(SplitSized(z)).eval()
    with torch.no_grad():
        out = model(physics.A(x), physics)
    # F x̂ₖ = M₁ᵏ y + cₖ F z with c_a = 0.4, c_b = 0.8; M₂ᵏ removes the M₁ᵏ y part
    fz = fft2c(to_complex(z))
    expected = torch.zeros_like(fz)
    expected[..., 1] = 0.4 * fz[..., 1]  # held out by split a only
    expected[..., 2] = (0.4 + 0.8) / 2 * fz[..., 2]  # held out by both
    assert torch.allclose(out, to_real(ifft2c(expected)))
    assert out.shape == (1, 2, 4, 4)


def test_eval_split_output_is_ignored_without_split_input():
    physics, _, y, _ = _setup()
    loss = SplittingLoss(_gen(), eval_split_input=False, eval_split_output=True)
    model = loss.adapt_model(ZeroFilled()).eval()
    assert torch.equal(model(y, physics), physics.A_adjoint(y))


def _es_value(physics, y, x_net, split):
    target = physics.mask - split
    pred = _mc(target * (physics.A(x_net) - y), 0) * target.numel() / target.sum()
    cons = _mc(split * (physics.A(x_net) - y), 0) * split.numel() / split.sum()
    return pred, cons


def test_equivariant_splitting_hand_value_with_a_known_rotation():
    physics, _, y, split = _setup()
    weight = torch.linspace(0.5, 2.0, H * W, dtype=torch.float64).view(1, 1, H, W)
    quarter = torch.full((2,), 90.0, dtype=torch.float64)
    transform = Fixed(Rotate(multiples=90, positive=True), {"angles": quarter})
    loss = EquivariantSplittingLoss(_gen(), transform, mask_generator=Replay([split]))
    model = loss.adapt_model(Weighted(weight))
    x_net = model(y, physics, update_parameters=True)
    # T = rot90 (exact on a square grid): x̂ = T⁻¹(w ⊙ T Aᴴ₁ y₁) = (T⁻¹ w) ⊙ Aᴴ₁ y₁
    zero_filled = physics.with_mask(split).A_adjoint(y * split)
    hand = torch.rot90(weight, -1, dims=(-2, -1)) * zero_filled
    assert torch.allclose(x_net, hand)
    assert not torch.allclose(x_net, weight * zero_filled)  # f alone is not equivariant
    pred, cons = _es_value(physics, y, hand, split)
    value = loss(x_net=x_net, y=y, physics=physics, model=model)
    assert torch.allclose(value, pred + cons)
    assert pred > 0
    assert cons > 0


@pytest.mark.parametrize("transform", [Identity(), None])
def test_equivariant_splitting_is_plain_splitting_without_a_group(transform):
    physics, _, y, _ = _setup()
    weight = torch.linspace(0.5, 2.0, H * W, dtype=torch.float64).view(1, 1, H, W)
    es = EquivariantSplittingLoss(_gen(7), transform, use_consistency=False)
    ssdu = SplittingLoss(_gen(7))
    es_model = es.adapt_model(Weighted(weight))
    ssdu_model = ssdu.adapt_model(Weighted(weight))
    x_es = es_model(y, physics, update_parameters=True)
    x_ssdu = ssdu_model(y, physics, update_parameters=True)
    assert torch.equal(es_model.last_input_masks, ssdu_model.last_input_masks)
    assert torch.allclose(x_es, x_ssdu)
    value_es = es(x_net=x_es, y=y, physics=physics, model=es_model)
    value_ssdu = ssdu(x_net=x_ssdu, y=y, physics=physics, model=ssdu_model)
    assert torch.allclose(value_es, value_ssdu)


def test_equivariant_splitting_is_reproducible_and_leaves_the_global_rng_alone():
    physics, _, y, _ = _setup()
    state = torch.get_rng_state()
    values = []
    for _ in range(2):
        loss = EquivariantSplittingLoss(_gen(5), Rotate(multiples=90, positive=True))
        model = loss.adapt_model(Weighted(torch.rand(1, 1, H, W, generator=_gen(9))))
        x_net = model(y, physics, update_parameters=True)
        values.append(loss(x_net=x_net, y=y, physics=physics, model=model))
    assert torch.equal(values[0], values[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_equivariant_splitting_eval_averages_splits_and_transforms():
    physics, _, y, _ = _setup()
    calls = []

    class Counting(ZeroFilled):
        def forward(self, y, physics):
            calls.append(1)
            return super().forward(y, physics)

    loss = EquivariantSplittingLoss(
        _gen(), Rotate(multiples=90, positive=True), eval_n_samples=3, eval_n_transforms=2
    )
    model = loss.adapt_model(Counting())
    assert isinstance(model, SplittingModel)
    assert loss.adapt_model(model) is model
    model.eval()
    with torch.no_grad():
        model(y, physics)
    assert len(calls) == 6
    model.train()
    model(y, physics, update_parameters=True)
    assert len(calls) == 7
