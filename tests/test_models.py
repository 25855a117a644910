from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.models import MODELS, STEP_ORDERS, MoDL, UNet, build_model, build_modl
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


class Scale(nn.Module):
    """Denoiser x ↦ c x, for hand-computed MoDL iterations."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return self.factor * x


# --------------------------------------------------------------------------------------- UNet


@pytest.mark.parametrize(
    ("scales", "expected"),
    [(2, 444_226), (3, 2_067_138), (4, 8_556_994), (5, 34_512_834)],
)
def test_unet_parameter_count_matches_reference(scales: int, expected: int) -> None:
    with torch.device("meta"):
        unet = UNet(in_channels=2, out_channels=2, scales=scales, width=64, batch_norm=False)
    assert n_params(unet) == expected


def test_modl_parameter_count_is_unet_plus_step_sizes() -> None:
    with torch.device("meta"):
        model = build_modl(num_iter=3)
    assert n_params(model) == 8_556_994 + 3


def test_unet_channels_double_per_scale() -> None:
    with torch.device("meta"):
        unet = UNet(scales=4, width=8)
    widths = [block[0].out_channels for block in unet.encoders]
    assert widths == [8, 16, 32, 64]


@pytest.mark.parametrize("shape", [(2, 2, 19, 23), (1, 2, 16, 16), (3, 2, 9, 8)])
@pytest.mark.parametrize("scales", [2, 4])
def test_unet_output_shape_equals_input_shape(
    shape: tuple[int, ...], scales: int, generator: torch.Generator
) -> None:
    unet = UNet(scales=scales, width=4, generator=generator)
    x = torch.randn(shape, generator=generator)
    assert unet(x).shape == x.shape


def test_unet_odd_size_is_replicate_padded_then_cropped(generator: torch.Generator) -> None:
    unet = UNet(scales=3, width=4, generator=generator)
    x = torch.randn(2, 2, 13, 10, generator=generator)
    padded = F.pad(x, (0, 2, 0, 3), mode="replicate")  # up to 16 × 12, multiples of 2²
    torch.testing.assert_close(unet(x), unet(padded)[..., :13, :10])


def test_unet_with_zero_weights_is_identity(generator: torch.Generator) -> None:
    unet = UNet(scales=3, width=4, generator=generator)
    with torch.no_grad():
        for p in unet.parameters():
            p.zero_()
    x = torch.randn(2, 2, 12, 11, generator=generator)
    torch.testing.assert_close(unet(x), x, rtol=0, atol=0)


def test_unet_without_residual_and_zero_weights_outputs_zero(generator: torch.Generator) -> None:
    unet = UNet(scales=2, width=4, residual=False, generator=generator)
    with torch.no_grad():
        for p in unet.parameters():
            p.zero_()
    assert torch.count_nonzero(unet(torch.randn(1, 2, 8, 8, generator=generator))) == 0


def test_unet_batch_norm_adds_layers_and_runs(generator: torch.Generator) -> None:
    unet = UNet(scales=2, width=4, batch_norm=True, generator=generator)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in unet.modules())
    assert n_bn == 2 + 2 + 1 + 2  # two encoder blocks, one up-conv, one decoder block
    assert unet(torch.randn(2, 2, 8, 8, generator=generator)).shape == (2, 2, 8, 8)


def test_unet_generator_init_is_deterministic_and_leaves_global_rng() -> None:
    state = torch.get_rng_state()
    first = UNet(scales=3, width=4, generator=torch.Generator().manual_seed(7))
    second = UNet(scales=3, width=4, generator=torch.Generator().manual_seed(7))
    other = UNet(scales=3, width=4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), state)
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_unet_generator_init_follows_pytorch_default_bounds(generator: torch.Generator) -> None:
    unet = UNet(scales=2, width=8, generator=generator)
    for layer in unet.modules():
        if isinstance(layer, nn.Conv2d):
            bound = layer.weight[0].numel() ** -0.5
            assert layer.weight.abs().max() <= bound
            assert layer.bias.abs().max() <= bound
            # U(−b, b) has standard deviation b/√3: a loose check that the range is used.
            assert layer.weight.std() > 0.4 * bound


@pytest.mark.parametrize(
    "kwargs", [{"scales": 0}, {"width": 0}, {"in_channels": 2, "out_channels": 1}]
)
def test_unet_rejects_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="UNet"):
        UNet(**kwargs)


# --------------------------------------------------------------------------------------- MoDL


def _random_partial_mask(generator: torch.Generator, size: int = 8) -> Tensor:
    columns = (torch.rand(size, generator=generator) < 0.5).float()
    columns[size // 2] = 1.0
    return columns.expand(1, 1, size, size).clone()


@pytest.mark.parametrize("step_order", STEP_ORDERS)
def test_modl_identity_denoiser_full_mask_recovers_x(
    step_order: str, generator: torch.Generator
) -> None:
    physics = SingleCoilMRI(torch.ones(1, 1, 8, 8))
    x = torch.randn(2, 2, 8, 8, generator=generator)
    model = MoDL(nn.Identity(), num_iter=3, step_order=step_order)
    torch.testing.assert_close(model(physics.A(x), physics), x)


@pytest.mark.parametrize("step_order", STEP_ORDERS)
def test_modl_identity_denoiser_gives_the_prox_fixed_point(
    step_order: str, generator: torch.Generator
) -> None:
    # With D = I and x₀ = Aᴴy, F x₀ = M y on sampled points and 0 elsewhere, so the closed-form
    # prox (γ M y + F x₀)/(γ M + 1) keeps x₀: the output is the zero-filled image for any γ.
    physics = SingleCoilMRI(_random_partial_mask(generator))
    y = physics.A(torch.randn(2, 2, 8, 8, generator=generator))
    model = MoDL(nn.Identity(), num_iter=2, step_order=step_order)
    with torch.no_grad():
        model.step_sizes.copy_(torch.tensor([0.3, 5.0]))
    torch.testing.assert_close(model(y, physics), physics.A_adjoint(y))


@pytest.mark.parametrize(
    ("step_order", "num_iter", "gamma", "factor"),
    [
        # D = ½·, full mask so F x₀ = y. dc-first: z = (γy + y)/(γ+1) = y, x₁ = ½x₀.
        ("dc-first", 1, 1.0, 0.5),
        # denoiser-first: z = ½x₀, x₁ = F⁻¹[(y + ½y)/2] = ¾x₀.
        ("denoiser-first", 1, 1.0, 0.75),
        # second iteration: dc-first z = (y + ½y)/2 = ¾x₀, x₂ = ⅜x₀.
        ("dc-first", 2, 1.0, 0.375),
        # denoiser-first: z = ⅜x₀, x₂ = (y + ⅜y)/2 = 11/16 x₀.
        ("denoiser-first", 2, 1.0, 0.6875),
        # γ = 3: x₁ = (3y + ½y)/4 = ⅞x₀.
        ("denoiser-first", 1, 3.0, 0.875),
    ],
)
def test_modl_step_order_hand_computed(
    step_order: str, num_iter: int, gamma: float, factor: float, generator: torch.Generator
) -> None:
    physics = SingleCoilMRI(torch.ones(1, 1, 8, 8))
    y = physics.A(torch.randn(2, 2, 8, 8, generator=generator))
    model = MoDL(Scale(0.5), num_iter=num_iter, step_order=step_order)
    with torch.no_grad():
        model.step_sizes.fill_(gamma)
    torch.testing.assert_close(model(y, physics), factor * physics.A_adjoint(y))


def test_modl_default_order_is_dc_first() -> None:
    assert MoDL(nn.Identity()).step_order == "dc-first"
    assert MoDL(nn.Identity()).step_sizes.tolist() == [1.0, 1.0, 1.0]


def test_modl_multicoil_shape_and_gradient_to_step_sizes(generator: torch.Generator) -> None:
    physics = MultiCoilMRI(_random_partial_mask(generator), birdcage_maps(3, 8, 8))
    x = torch.randn(2, 2, 8, 8, generator=generator)
    y = physics.A(x)
    model = MoDL(UNet(scales=2, width=4, generator=generator), num_iter=2)
    out = model(y, physics)
    assert out.shape == x.shape
    (out - x).pow(2).mean().backward()
    assert model.step_sizes.grad is not None
    assert torch.isfinite(model.step_sizes.grad).all()
    assert (model.step_sizes.grad != 0).all()
    assert all(p.grad is not None for p in model.denoiser.parameters())


def test_modl_rejects_zero_iterations() -> None:
    with pytest.raises(ValueError, match="num_iter"):
        MoDL(nn.Identity(), num_iter=0)


def test_modl_rejects_unknown_step_order() -> None:
    with pytest.raises(ValueError, match="valid orders: dc-first, denoiser-first"):
        MoDL(nn.Identity(), step_order="prior-first")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ registry


def test_build_model_builds_every_registered_model() -> None:
    for name in MODELS:
        with torch.device("meta"):
            assert isinstance(build_model(name), nn.Module)


def test_build_model_passes_options() -> None:
    model = build_model("modl", num_iter=2, scales=2, width=4, step_order="denoiser-first")
    assert isinstance(model, MoDL)
    assert model.num_iter == 2
    assert model.step_order == "denoiser-first"
    assert n_params(model) == n_params(UNet(scales=2, width=4)) + 2


def test_build_model_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"'mod'.*did you mean 'modl'.*valid models: modl"):
        build_model("mod")


def test_build_model_unknown_option_lists_valid_options() -> None:
    with pytest.raises(ConfigError, match=r"num_iters.*valid options: num_iter"):
        build_model("modl", num_iters=3)
