import pytest
import torch
from torch import nn

from ssibench.losses import (
    AdjointMCLoss,
    EILoss,
    MCLoss,
    MOILoss,
    SplittingLoss,
    SplittingModel,
    SupLoss,
)
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.transforms import Rotate

H, W = 8, 8


class ZeroFilled(nn.Module):
    """f(y, A) = Aᴴ y: a fixed, parameter-free 'network'."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


class CountingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, y, physics):
        self.calls += 1
        return physics.A_adjoint(y)


def _single(batch=2, seed=0, sigma=0.0):
    g = torch.Generator().manual_seed(seed)
    return SingleCoilMRI(
        GaussianMaskGenerator(acceleration=2).sample(batch, H, W, g).double(), sigma
    )


def _image(batch=2, seed=1):
    return torch.randn(
        batch, 2, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )


def _call(loss, x_net, y, physics, model=None, x=None):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=0)


def test_sup_loss_hand_value():
    x = torch.zeros(1, 2, 2, 2)
    x_net = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 3.0]]]])
    assert _call(SupLoss(), x_net, x, None, x=x).item() == pytest.approx(10 / 8)


@pytest.mark.parametrize("loss", [MCLoss(), AdjointMCLoss()])
def test_mc_losses_vanish_at_a_perfect_reconstruction(loss):
    physics, x = _single(), _image()
    assert _call(loss, x, physics.A(x), physics).item() < 1e-20


def test_mc_hand_value_equals_masked_kspace_error():
    physics, x = _single(), _image()
    x_net = x + 0.5
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    expected = ((physics.mask * (full.A(x_net) - full.A(x))) ** 2).mean()
    assert _call(MCLoss(), x_net, physics.A(x), physics).item() == pytest.approx(expected.item())


def test_adjoint_mc_equals_mc_in_single_coil():
    physics, x = _single(), _image()
    x_net, y = _image(seed=3), physics.A(x)
    assert _call(AdjointMCLoss(), x_net, y, physics).item() == pytest.approx(
        _call(MCLoss(), x_net, y, physics).item()
    )


def test_adjoint_mc_is_coil_combined_in_multicoil():
    g = torch.Generator().manual_seed(0)
    mask = GaussianMaskGenerator(acceleration=2).sample(2, H, W, g).double()
    physics = MultiCoilMRI(mask, birdcage_maps(3, H, W).to(torch.complex128))
    x, x_net = _image(), _image(seed=5)
    expected = ((physics.A_adjoint(physics.A(x_net) - physics.A(x))) ** 2).mean()
    assert _call(AdjointMCLoss(), x_net, physics.A(x), physics).item() == pytest.approx(
        expected.item()
    )


@pytest.mark.parametrize("multicoil", [False, True])
def test_ssdu_equals_hand_formula_for_fixed_model_and_masks(multicoil):
    physics, x = _single(batch=3), _image(batch=3)
    if multicoil:
        physics = MultiCoilMRI(physics.mask, birdcage_maps(2, H, W).to(torch.complex128))
    y = physics.A(x)
    loss = SplittingLoss(torch.Generator().manual_seed(4), split_ratio=0.6)
    model = loss.adapt_model(ZeroFilled()).train()
    x_net = model(y, physics, update_parameters=True)
    m1 = model.last_input_masks
    m2 = physics.mask - m1
    # by hand: x̂ = A_{M1}ᴴ (M1 y); L = Σ |M2 (A x̂ − y)|² / (channels · coils · Σ M2)
    #        = m/m2 · mean(...)
    x_hand = physics.with_mask(m1).A_adjoint(y)
    assert torch.allclose(x_net, x_hand)
    m2b = m2.unsqueeze(2) if multicoil else m2
    residual = m2b * (physics.A(x_hand) - y)
    coils = y.shape[2] if multicoil else 1
    expected = (residual**2).sum() / (2 * coils * m2.sum())
    got = _call(loss, x_net, y, physics, model=model)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    assert torch.count_nonzero(m1 * (1 - physics.mask)) == 0
    assert m1.sum(dim=(1, 2, 3)).tolist() == [
        int(0.6 * k) for k in physics.mask.sum(dim=(1, 2, 3)).tolist()
    ]


def test_splitting_loss_needs_its_adapted_model():
    physics, x = _single(), _image()
    loss = SplittingLoss(torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(loss, x, physics.A(x), physics, model=ZeroFilled())


def test_adapt_model_uses_one_split_in_training_and_averages_n_at_eval():
    physics, x = _single(), _image()
    y = physics.A(x)
    inner = CountingModel()
    loss = SplittingLoss(torch.Generator().manual_seed(0), eval_n_samples=3, eval_split_input=True)
    model = loss.adapt_model(inner)
    assert loss.adapt_model(model) is model  # idempotent
    model.train()
    model(y, physics, update_parameters=True)
    assert inner.calls == 1
    model.eval()
    out = model(y, physics)
    assert inner.calls == 4
    # the eval output is the mean of three split reconstructions drawn from the same stream
    replay = SplittingModel(
        CountingModel(), loss.mask_generator, torch.Generator().manual_seed(0), 3
    )
    replay.train()
    replay(y, physics)  # consume the training split
    expected = sum(replay.split(y, physics)[1].A_adjoint(y) for _ in range(3)) / 3
    assert torch.allclose(out, expected)


def test_ssdu_evaluates_on_the_full_measurements():
    physics, x = _single(), _image()
    y = physics.A(x)
    model = SplittingLoss(torch.Generator().manual_seed(0), eval_split_input=False).adapt_model(
        ZeroFilled()
    )
    model.eval()
    assert torch.equal(model(y, physics), physics.A_adjoint(y))


def test_training_forward_without_update_keeps_the_recorded_split():
    physics, x = _single(), _image()
    y = physics.A(x)
    model = SplittingLoss(torch.Generator().manual_seed(0)).adapt_model(ZeroFilled()).train()
    model(y, physics, update_parameters=True)
    recorded = model.last_input_masks
    model(y, physics)  # an extra forward inside another loss
    assert model.last_input_masks is recorded


def test_ei_is_zero_for_an_equivariant_model_and_positive_otherwise():
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    x = _image()
    loss = EILoss(Rotate(multiples=90), torch.Generator().manual_seed(0))
    assert _call(loss, x, full.A(x), full, model=ZeroFilled()).item() < 1e-20

    class Biased(nn.Module):
        def forward(self, y, physics):
            bias = torch.zeros(1, 2, H, W, dtype=torch.float64)
            bias[..., 0, 0] = 1.0
            return physics.A_adjoint(y) + bias

    assert _call(loss, x, full.A(x), full, model=Biased()).item() > 1e-3


def test_ei_hand_value_with_a_known_rotation():
    physics, x = _single(batch=1), _image(batch=1)
    loss = EILoss(Rotate(multiples=90, positive=True, limits=91), torch.Generator().manual_seed(0))
    angle = Rotate(multiples=90, positive=True, limits=91).angles(
        1, torch.Generator().manual_seed(0)
    )
    rotated = torch.rot90(x, k=int(angle.item()) // 90, dims=(-2, -1))
    expected = ((physics.A_adjoint(physics.A(rotated)) - rotated) ** 2).mean()
    got = _call(loss, x, physics.A(x), physics, model=ZeroFilled())
    assert got.item() == pytest.approx(expected.item())


def test_moi_hand_value_with_replayed_masks():
    physics, x = _single(), _image()
    generator = GaussianMaskGenerator(acceleration=2)
    loss = MOILoss(generator, torch.Generator().manual_seed(6))
    new_masks = generator.sample(2, H, W, torch.Generator().manual_seed(6)).double()
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    # f = Aᴴ: f(A_g x) − x = −F⁻¹((1 − M_g) F x), whose mean square is unitary-invariant
    expected = (((1 - new_masks) * full.A(x)) ** 2).mean()
    got = _call(loss, x, physics.A(x), physics, model=ZeroFilled())
    assert got.item() == pytest.approx(expected.item())


def test_moi_adds_noise_only_in_noisy_physics():
    x = _image()
    quiet, noisy = _single(sigma=0.0), _single(sigma=0.5)
    generator = GaussianMaskGenerator(acceleration=2)
    a = _call(
        MOILoss(generator, torch.Generator().manual_seed(1)),
        x,
        quiet.A(x),
        quiet,
        model=ZeroFilled(),
    )
    b = _call(
        MOILoss(generator, torch.Generator().manual_seed(1)),
        x,
        noisy.A(x),
        noisy,
        model=ZeroFilled(),
    )
    assert b.item() > a.item()


def test_losses_are_differentiable_through_the_network():
    physics, x = _single(), _image()
    scale = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    class Scaled(nn.Module):
        def forward(self, y, physics):
            return scale * physics.A_adjoint(y)

    y = physics.A(x)
    for loss in (MCLoss(), EILoss(Rotate(), torch.Generator().manual_seed(0))):
        scale.grad = None
        value = _call(loss, Scaled()(y, physics), y, physics, model=Scaled())
        value.backward()
        assert scale.grad is not None
        assert scale.grad.abs() > 0
