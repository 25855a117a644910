import pytest
import torch
from torch import nn

from ssibench.losses.equivariant import EILoss, MOEILoss, MOILoss, new_operator
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.transforms import CPABDiffeomorphism, RandomNoise, Rotate, Shift

H, W = 8, 8


class ZeroFilled(nn.Module):
    """f(y, A) = Aᴴ y: a fixed, parameter-free 'network'."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


class Scaled(nn.Module):
    """f(y, A) = s · Aᴴ y with a trainable s."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, y, physics):
        return self.scale * physics.A_adjoint(y)


def _physics(batch=2, seed=0, sigma=0.0, acceleration=2):
    g = torch.Generator().manual_seed(seed)
    mask = GaussianMaskGenerator(acceleration=acceleration).sample(batch, H, W, g).double()
    return SingleCoilMRI(mask, sigma)


def _image(batch=2, seed=1):
    return torch.randn(
        batch, 2, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )


def _call(loss, x_net, y, physics, model):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=None, epoch=0)


def test_ei_vanishes_for_a_shift_equivariant_model_with_undersampled_masks():
    # f = Aᴴ commutes with circular shifts (F⁻¹ M F is shift invariant), and x̂ = Aᴴy lies in the
    # range of the projection AᴴA, so f(A T x̂) = T AᴴA x̂ = T x̂: EI is 0 even though M ≠ 1.
    physics, x = _physics(), _image()
    y = physics.A(x)
    x_net = physics.A_adjoint(y)
    loss = EILoss(Shift(shift_max=0.5), torch.Generator().manual_seed(0))
    assert _call(loss, x_net, y, physics, ZeroFilled()).item() < 1e-25
    # rotations do not commute with Cartesian undersampling
    rotated = EILoss(Rotate(limits=15), torch.Generator().manual_seed(0))
    assert _call(rotated, x_net, y, physics, ZeroFilled()).item() > 1e-3


def test_ei_vanishes_for_any_transform_when_the_model_inverts_a_full_mask():
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    x = _image()
    for transform in (Rotate(), Shift(), CPABDiffeomorphism()):
        loss = EILoss(transform, torch.Generator().manual_seed(0))
        assert _call(loss, x, full.A(x), full, ZeroFilled()).item() < 1e-25


def test_ei_with_random_noise_and_no_physics_noise_is_the_ddssl_term():
    # DDSSL: T x̂ = x̂ + σ ε on non-zero pixels, y' = A T x̂ (no physics noise)
    physics, x = _physics(sigma=0.3), _image()
    loss = EILoss(RandomNoise(sigma=0.1), torch.Generator().manual_seed(5), apply_noise=False)
    params = RandomNoise(sigma=0.1).sample_params(x, torch.Generator().manual_seed(5))
    noisy = x + 0.1 * params["noise"]
    expected = ((physics.A_adjoint(physics.A(noisy)) - noisy) ** 2).mean()
    got = _call(loss, x, physics.A(x), physics, ZeroFilled())
    assert got.item() == pytest.approx(expected.item())


def test_ei_no_grad_keeps_gradients_out_of_the_target_branch():
    physics, x = _physics(), _image()
    y = physics.A(x)
    for no_grad, reaches_input in ((False, True), (True, False)):
        model = Scaled()
        x_net = model(y, physics)
        loss = EILoss(Rotate(), torch.Generator().manual_seed(0), no_grad=no_grad)
        x_net.retain_grad()
        _call(loss, x_net, y, physics, model).backward()
        assert model.scale.grad.abs() > 0
        assert (x_net.grad is not None and x_net.grad.abs().sum() > 0) == reaches_input


def test_ei_weight_scales_and_seed_reproduces():
    physics, x = _physics(sigma=0.1), _image()
    y = physics.measure(x, torch.Generator().manual_seed(9))
    one = _call(EILoss(Rotate(), torch.Generator().manual_seed(3)), x, y, physics, ZeroFilled())
    again = _call(EILoss(Rotate(), torch.Generator().manual_seed(3)), x, y, physics, ZeroFilled())
    double = _call(
        EILoss(Rotate(), torch.Generator().manual_seed(3), weight=2.0), x, y, physics, ZeroFilled()
    )
    assert one.item() == again.item()
    assert double.item() == pytest.approx(2 * one.item())


def test_moei_hand_value_with_replayed_masks_and_a_90_degree_rotation():
    physics, x = _physics(batch=4), _image(batch=4)
    mask_generator = GaussianMaskGenerator(acceleration=2)
    transform = Rotate(multiples=90, positive=True, limits=91)  # 0° or 90°
    loss = MOEILoss(transform, mask_generator, torch.Generator().manual_seed(6))
    replay = torch.Generator().manual_seed(6)  # draw order: masks, then the transform
    new_masks = mask_generator.sample(4, H, W, replay).double()
    angles = transform.sample_params(x, replay)["angles"]
    assert (angles == 90).any()
    rotated = torch.stack(
        [torch.rot90(x[b], k=int(angles[b]) // 90, dims=(-2, -1)) for b in range(4)]
    )
    # f = Aᴴ: f(A_g T x̂) − T x̂ = −F⁻¹((1 − M_g) F T x̂), whose mean square is unitary-invariant
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    expected = (((1 - new_masks) * full.A(rotated)) ** 2).mean()
    got = _call(loss, x, physics.A(x), physics, ZeroFilled())
    assert got.item() == pytest.approx(expected.item())
    assert not torch.equal(new_masks, physics.mask)


def test_moei_with_cpab_keeps_coil_maps_and_is_reproducible():
    maps = birdcage_maps(3, H, W).to(torch.complex128)
    physics = MultiCoilMRI(torch.ones(2, 1, H, W, dtype=torch.float64), maps, sigma=0.05)
    x = _image()
    y = physics.A(x)

    def run():
        loss = MOEILoss(
            CPABDiffeomorphism(),
            GaussianMaskGenerator(acceleration=2),
            torch.Generator().manual_seed(1),
        )
        return _call(loss, x, y, physics, ZeroFilled())

    first = run()
    assert first.item() == run().item()
    assert first.item() > 0
    new = new_operator(physics, GaussianMaskGenerator(acceleration=2), 2, torch.Generator())
    assert new.coil_maps is physics.coil_maps
    assert new.mask.shape == (2, 1, H, W)
    assert new.sigma == physics.sigma


def test_moi_still_matches_its_hand_value():
    physics, x = _physics(), _image()
    mask_generator = GaussianMaskGenerator(acceleration=2)
    loss = MOILoss(mask_generator, torch.Generator().manual_seed(6))
    new_masks = mask_generator.sample(2, H, W, torch.Generator().manual_seed(6)).double()
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    expected = (((1 - new_masks) * full.A(x)) ** 2).mean()
    assert _call(loss, x, physics.A(x), physics, ZeroFilled()).item() == pytest.approx(
        expected.item()
    )


def test_equivariant_losses_leave_the_global_rng_alone():
    physics, x = _physics(sigma=0.1), _image()
    y = physics.A(x)
    state = torch.get_rng_state()
    for loss in (
        EILoss(CPABDiffeomorphism(), torch.Generator().manual_seed(0)),
        MOEILoss(CPABDiffeomorphism(), GaussianMaskGenerator(2), torch.Generator().manual_seed(0)),
        MOILoss(GaussianMaskGenerator(2), torch.Generator().manual_seed(0)),
    ):
        _call(loss, x, y, physics, ZeroFilled())
    assert torch.equal(torch.get_rng_state(), state)
