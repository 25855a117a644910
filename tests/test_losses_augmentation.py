import pytest
import torch
from torch import nn

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.losses.augmentation import (
    AugmentConsistencyLoss,
    TransformedPhysics,
    default_image_transform,
)
from ssibench.losses.splitting import SplittingLoss
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.transforms import (
    Compose,
    CPABDiffeomorphism,
    Identity,
    RandomChoice,
    RandomNoise,
    RandomPhaseError,
    Rotate,
    Shift,
)

H, W = 8, 8


class ZeroFilled(nn.Module):
    def forward(self, y, physics):
        return physics.A_adjoint(y)


class Biased(nn.Module):
    """f(y, A) = Aᴴ y + b with a fixed image b (not shift-equivariant)."""

    def __init__(self, bias):
        super().__init__()
        self.bias = bias

    def forward(self, y, physics):
        return physics.A_adjoint(y) + self.bias


class TinyMoDL(nn.Module):
    """One data-consistency step then a trainable scaling: s · prox(Aᴴ y)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.9, dtype=torch.float64))

    def forward(self, y, physics):
        return self.scale * physics.prox_l2(physics.A_adjoint(y), y, 1.0)


def _physics(batch=3, seed=0, acceleration=2):
    g = torch.Generator().manual_seed(seed)
    mask = GaussianMaskGenerator(acceleration=acceleration).sample(batch, H, W, g).double()
    return SingleCoilMRI(mask)


def _randn(*shape, seed=1):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _call(loss, x_net, y, physics, model):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=None, epoch=0)


def test_identity_augmentations_give_zero_for_the_adjoint_on_full_masks():
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    x = _randn(3, 2, H, W)
    y = full.A(x)
    loss = AugmentConsistencyLoss(Identity(), Identity(), torch.Generator().manual_seed(0))
    assert _call(loss, full.A_adjoint(y), y, full, ZeroFilled()).item() < 1e-25


def test_hand_value_with_a_known_shift():
    # x_aug = T Aᴴy, y' = A T⁻¹ x_aug = A Aᴴ y, f(y', A') = T AᴴAAᴴy + b = T Aᴴy + b
    physics = _physics()
    x, x_net, bias = _randn(3, 2, H, W), _randn(3, 2, H, W, seed=2), _randn(1, 2, H, W, seed=3)
    y = physics.A(x)
    transform = Shift(shift_max=0.5)
    loss = AugmentConsistencyLoss(Identity(), transform, torch.Generator().manual_seed(7))
    shifts = transform.sample_params(x_net, torch.Generator().manual_seed(7))["shifts"]
    assert shifts.abs().sum() > 0

    def roll(image, b):
        return torch.roll(image, tuple(shifts[b].tolist()), dims=(-2, -1))

    adjoint = physics.A_adjoint(y)
    expected = torch.stack(
        [roll(x_net[b], b) - roll(adjoint[b], b) - bias[0] for b in range(3)]
    ).pow(2)
    got = _call(loss, x_net, y, physics, Biased(bias))
    assert got.item() == pytest.approx(expected.mean().item())


def test_noise2recon_hand_value_with_replayed_noise():
    # T_e = identity, T_i = noise on the acquired k-space: L = mean((x̂ − Aᴴ(Ω ⊙ (y + σ ε)))²)
    physics = _physics()
    x, x_net = _randn(3, 2, H, W), _randn(3, 2, H, W, seed=2)
    y = physics.A(x)
    noise = RandomNoise(sigma=(0.05, 0.2))
    loss = AugmentConsistencyLoss(
        noise, Identity(), torch.Generator().manual_seed(4), no_grad=False
    )
    params = noise.sample_params(y, torch.Generator().manual_seed(4))
    sigma = params["sigma"].view(-1, 1, 1, 1)
    noisy = physics.A(physics.A_adjoint(y + sigma * params["noise"]))
    expected = ((x_net - physics.A_adjoint(noisy)) ** 2).mean()
    got = _call(loss, x_net, y, physics, ZeroFilled())
    assert got.item() == pytest.approx(expected.item())


def test_the_image_transform_choice_is_shared_by_input_operator_and_target():
    # with exact members (shift, 90° rotation) f = A'ᴴ gives T AᴴA T⁻¹ T Aᴴy = T x̂ for x̂ = Aᴴy on
    # a full mask: zero only if every application uses the same per-sample choice (bug B2)
    full = SingleCoilMRI(torch.ones(1, 1, H, W, dtype=torch.float64))
    x = _randn(16, 2, H, W)
    y = full.A(x)
    transform = RandomChoice([Shift(shift_max=0.5), Rotate(multiples=90)])
    loss = AugmentConsistencyLoss(Identity(), transform, torch.Generator().manual_seed(0))
    assert _call(loss, full.A_adjoint(y), y, full, TinyMoDL()).item() == pytest.approx(
        0.01 * (full.A_adjoint(y) ** 2).mean().item()  # (1 − 0.9)² · mean(x̂²)
    )


def test_vortex_trains_the_network_only_through_the_augmented_branch():
    physics = _physics()
    x = _randn(3, 2, H, W)
    y = physics.A(x)
    augment = Compose([RandomPhaseError(scale=0.1), RandomNoise(sigma=0.1)])
    for no_grad, reaches_target in ((True, False), (False, True)):
        model = TinyMoDL()
        x_net = model(y, physics)
        x_net.retain_grad()
        loss = AugmentConsistencyLoss(augment, None, torch.Generator().manual_seed(0), no_grad)
        value = _call(loss, x_net, y, physics, model)
        value.backward()
        assert value.item() > 0
        assert model.scale.grad.abs() > 0
        assert (x_net.grad is not None) == reaches_target


def test_augment_consistency_is_reproducible_and_leaves_the_global_rng_alone():
    physics = _physics()
    x = _randn(3, 2, H, W)
    y = physics.A(x)
    augment = Compose([RandomPhaseError(scale=0.1), RandomNoise(sigma=0.1)])
    state = torch.get_rng_state()
    values = [
        _call(
            AugmentConsistencyLoss(augment, None, torch.Generator().manual_seed(3)),
            x,
            y,
            physics,
            TinyMoDL(),
        ).item()
        for _ in range(2)
    ]
    assert torch.equal(torch.get_rng_state(), state)
    assert values[0] == values[1]


def test_default_image_transform_is_shift_or_small_rotation():
    transform = default_image_transform()
    assert isinstance(transform, RandomChoice)
    assert transform.transforms == (Shift(shift_max=0.1), Rotate(limits=15))
    loss = AugmentConsistencyLoss(None, None, torch.Generator())
    assert isinstance(loss.T_i, Identity)
    assert isinstance(loss.T_e, RandomChoice)


def test_augment_consistency_runs_through_a_splitting_wrapper():
    # noise2recon-ssdu: the model is wrapped by the splitting loss, which re-masks A' by with_mask
    physics = _physics()
    y = physics.A(_randn(3, 2, H, W))
    model = SplittingLoss(torch.Generator().manual_seed(0)).adapt_model(TinyMoDL()).train()
    loss = AugmentConsistencyLoss(
        RandomNoise(sigma=(0.05, 0.2)), Identity(), torch.Generator().manual_seed(1), no_grad=False
    )
    value = _call(loss, model(y, physics), y, physics, model)
    assert torch.isfinite(value)
    assert value.item() > 0


# --- the transformed operator ---------------------------------------------------------------------


def _inner(a, b):
    return (a * b).sum()


@pytest.mark.parametrize("multicoil", [False, True])
def test_transformed_operator_is_adjoint_for_a_shift(multicoil):
    mask = _physics().mask
    physics = (
        MultiCoilMRI(mask, birdcage_maps(3, H, W).to(torch.complex128))
        if multicoil
        else SingleCoilMRI(mask)
    )
    v = _randn(3, 2, H, W)
    params = Shift(0.5).sample_params(v, torch.Generator().manual_seed(0))
    moved = TransformedPhysics(physics, Shift(0.5), params)
    w = physics.A(_randn(3, 2, H, W, seed=4))
    assert _inner(moved.A(v), w).item() == pytest.approx(_inner(v, moved.A_adjoint(w)).item())


def _objective_gradient(moved, u, z, y, gamma):
    """∇_u [(γ/2)‖A' u − y‖² + ½‖u − z‖²] by autograd: 0 at the prox."""
    u = u.detach().requires_grad_(True)
    value = 0.5 * gamma * (moved.A(u) - y).pow(2).sum() + 0.5 * (u - z).pow(2).sum()
    (gradient,) = torch.autograd.grad(value, u)
    return gradient


@pytest.mark.parametrize(
    "transform",
    [
        Shift(shift_max=0.5),
        Rotate(limits=15),
        Rotate(multiples=90),
        Rotate(limits=15, mode="bilinear"),
        CPABDiffeomorphism(),
        RandomChoice([Shift(shift_max=0.5), Rotate(limits=15)]),
    ],
)
@pytest.mark.parametrize("multicoil", [False, True])
def test_transformed_prox_minimises_the_data_consistency_objective(transform, multicoil):
    mask = _physics().mask
    physics = (
        MultiCoilMRI(mask, birdcage_maps(3, H, W).to(torch.complex128), cg_tol=1e-10)
        if multicoil
        else SingleCoilMRI(mask)
    )
    z, y = _randn(3, 2, H, W, seed=5), physics.A(_randn(3, 2, H, W, seed=6))
    params = transform.sample_params(z, torch.Generator().manual_seed(2))
    moved = TransformedPhysics(physics, transform, params, cg_tol=1e-10)
    u = moved.prox_l2(z, y, 2.0)
    assert _objective_gradient(moved, u, z, y, 2.0).norm() < 1e-6 * z.norm()
    assert (u - z).norm() > 1e-2 * z.norm()  # the data term did move z


def test_transformed_prox_fixes_the_reference_rotation_bug():
    # B3: the reference kept the untransformed closed form F⁻¹[F(γ T Aᴴy + z)/(γ M + 1)]
    physics = _physics()
    z, y = _randn(3, 2, H, W, seed=5), physics.A(_randn(3, 2, H, W, seed=6))
    params = {"angles": torch.tensor([10.0, -13.0, 7.0], dtype=torch.float64)}
    moved = TransformedPhysics(physics, Rotate(limits=15), params)
    gamma = 2.0
    rhs = gamma * moved.A_adjoint(y) + z
    reference = to_real(ifft2c(fft2c(to_complex(rhs)) / (gamma * physics.mask[:, 0] + 1)))
    ours = moved.prox_l2(z, y, gamma)  # default tolerance 1e-4
    assert _objective_gradient(moved, ours, z, y, gamma).norm() < 1e-3 * z.norm()
    assert _objective_gradient(moved, reference, z, y, gamma).norm() > 1e-1 * z.norm()


def test_transformed_prox_is_differentiable_through_the_solve():
    physics = _physics()
    z = _randn(3, 2, H, W, seed=5).requires_grad_(True)
    y = physics.A(_randn(3, 2, H, W, seed=6))
    gamma = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    params = Rotate(limits=15).sample_params(z, torch.Generator().manual_seed(2))
    moved = TransformedPhysics(physics, Rotate(limits=15), params)
    moved.prox_l2(z, y, gamma).pow(2).sum().backward()
    assert z.grad.abs().sum() > 0
    assert gamma.grad.abs() > 0


def test_transformed_operator_keeps_mask_noise_and_transform_under_with_mask():
    physics = SingleCoilMRI(_physics().mask, sigma=0.2)
    params = Shift(0.5).sample_params(torch.zeros(3, 2, H, W), torch.Generator().manual_seed(0))
    moved = TransformedPhysics(physics, Shift(0.5), params)
    assert moved.mask is physics.mask
    assert moved.sigma == 0.2
    half = torch.ones(3, 1, H, W, dtype=torch.float64)
    half[..., ::2] = 0
    remasked = moved.with_mask(half)
    assert remasked.mask is half
    assert remasked.transform == moved.transform
    assert remasked.params is params
    v = _randn(3, 2, H, W)
    noisy = moved.measure(v, torch.Generator().manual_seed(0))
    assert torch.equal(noisy * (1 - physics.mask), torch.zeros_like(noisy))
    assert not torch.allclose(noisy, moved.A(v))
