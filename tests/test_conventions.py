"""DeepInverse conventions: loss signatures and shapes, ``physics(x)``, minimal user operators."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import Tensor, nn

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.losses import MCLoss, SupLoss
from ssibench.losses.base import call_loss, mse
from ssibench.models import MoDL, UNet
from ssibench.physics import (
    DynamicMRI,
    MultiCoilMRI,
    SequentialMRI,
    SingleCoilMRI,
    birdcage_maps,
)
from ssibench.physics.base import prox_l2
from ssibench.training.adversarial import adversarial_step
from ssibench.training.step import train_step

BATCH = 4
SIZE = 8


class PerSampleMC(nn.Module):
    """A DeepInverse-style loss: positional-or-keyword arguments, ``**kwargs``, a (B,) result."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, object] = {}

    def forward(self, x_net, y, physics, model, x=None, epoch=None, **kwargs):
        self.seen = {"x": x, "epoch": epoch, **kwargs}
        return (physics.A(x_net) - y).pow(2).flatten(1).mean(dim=1)


class ScalarMC(nn.Module):
    """The same loss with our keyword-only signature and a scalar result."""

    def forward(self, *, x_net, y, physics, model, x=None, epoch=None):
        return mse(physics.A(x_net), y)


class BareLoss(nn.Module):
    """A loss naming only the four required arguments (no ``x``, no ``epoch``, no ``**kwargs``)."""

    def forward(self, x_net, y, physics, model):
        return (physics.A(x_net) - y).abs().flatten(1).sum(dim=1)


class ShapedLoss(nn.Module):
    """Returns a fixed-shape tensor, to test the refusal of bad shapes."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x_net, y, physics, model, **kwargs):
        return x_net.sum() * torch.ones(self.shape)


class MinimalMRI:
    """A user's operator: only A, A_adjoint and with_mask (single-coil math, no prox_l2)."""

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def A(self, x: Tensor) -> Tensor:
        return to_real(self.mask[:, 0] * fft2c(to_complex(x)))

    def A_adjoint(self, y: Tensor) -> Tensor:
        return to_real(ifft2c(self.mask[:, 0] * to_complex(y)))

    def with_mask(self, mask: Tensor) -> MinimalMRI:
        return MinimalMRI(mask)


def _mask(generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
    return (torch.rand(BATCH, 1, SIZE, SIZE, generator=generator) < 0.4).to(dtype)


def _modl(dtype: torch.dtype = torch.float32, step_order: str = "dc-first") -> MoDL:
    torch.manual_seed(0)
    return MoDL(UNet(scales=2, width=4), num_iter=2, step_order=step_order).to(dtype)


def _batch(generator: torch.Generator, dtype: torch.dtype = torch.float32):
    physics = SingleCoilMRI(_mask(generator, dtype))
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator, dtype=dtype)
    return x, physics.A(x), physics


def _one_step(loss: nn.Module, generator: torch.Generator) -> tuple[Tensor, list[Tensor]]:
    model = _modl(torch.float64)
    x, y, physics = _batch(generator, torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    terms = train_step(model, [loss], optimizer, scaler, x, y, physics, epoch=3)
    return terms, [p.detach().clone() for p in model.parameters()]


def test_per_sample_loss_used_to_break_the_epoch_sum_and_now_is_averaged(
    generator: torch.Generator,
) -> None:
    x, y, physics = _batch(generator)
    model = _modl()
    raw = PerSampleMC()(model(y, physics), y, physics, model)
    assert raw.shape == (BATCH,)
    # What the trainer did before: stack the raw values, then add them to the (n_losses,) sums.
    term_sums = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape \[1, 4\]"):
        term_sums += torch.stack([raw]) * BATCH
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    terms = train_step(model, [PerSampleMC()], optimizer, scaler, x, y, physics, epoch=0)
    assert terms.shape == (1,)
    term_sums += terms * BATCH
    assert torch.allclose(terms[0], raw.mean().detach())


def test_deepinverse_signature_loss_takes_the_same_step_as_keyword_scalar_loss(
    generator: torch.Generator,
) -> None:
    state = generator.get_state()
    terms_dinv, params_dinv = _one_step(PerSampleMC(), generator)
    generator.set_state(state)
    terms_ours, params_ours = _one_step(ScalarMC(), generator)
    torch.testing.assert_close(terms_dinv, terms_ours, rtol=1e-12, atol=0)
    for a, b in zip(params_dinv, params_ours, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(params_dinv, _modl(torch.float64).parameters(), strict=True)
    )


def test_optional_keywords_reach_losses_that_take_them(generator: torch.Generator) -> None:
    x, y, physics = _batch(generator)
    loss = PerSampleMC()
    call_loss(loss, x, y, physics, None, x=x, epoch=7)
    assert loss.seen["epoch"] == 7
    assert loss.seen["x"] is x
    # A loss naming neither x nor epoch is called without them, and its (B,) sum is averaged.
    value = call_loss(BareLoss(), x, y, physics, None, x=x, epoch=7)
    expected = (physics.A(x) - y).abs().flatten(1).sum(dim=1).mean()
    assert value.ndim == 0
    assert torch.equal(value, expected)


@pytest.mark.parametrize("shape", [(BATCH, 1), (BATCH + 1,), (1, BATCH)])
def test_bad_loss_shape_is_refused_with_class_and_shape(
    generator: torch.Generator, shape: tuple[int, ...]
) -> None:
    x, y, physics = _batch(generator)
    with pytest.raises(ValueError, match=r"ShapedLoss.*" + re.escape(str(shape))) as info:
        call_loss(ShapedLoss(shape), x, y, physics, None)
    assert "scalar (0-dim)" in str(info.value)
    assert f"(B,) = ({BATCH},)" in str(info.value)


def test_non_tensor_loss_is_refused(generator: torch.Generator) -> None:
    x, y, physics = _batch(generator)
    with pytest.raises(TypeError, match="returned a float"):
        call_loss(lambda **_: 1.0, x, y, physics, None)


def test_scalar_loss_passes_through_untouched(generator: torch.Generator) -> None:
    x, y, physics = _batch(generator)
    x_net = x + 0.1
    for loss in (MCLoss(), SupLoss()):
        direct = loss(x_net=x_net, y=y, physics=physics, model=None, x=x, epoch=0)
        assert torch.equal(call_loss(loss, x_net, y, physics, None, x, 0), direct)
    fixed = torch.tensor(2.5)
    assert call_loss(lambda **_: fixed, x_net, y, physics, None) is fixed


def test_adversarial_step_accepts_per_sample_losses(generator: torch.Generator) -> None:
    x, y, physics = _batch(generator)

    class Critic(nn.Module):
        def forward(self, x_net, y, physics, model, **kwargs):
            return discriminator(x_net).flatten(1).mean(dim=1)

    torch.manual_seed(1)
    discriminator = nn.Conv2d(2, 1, 3, padding=1)
    model = _modl()
    generator_terms, discriminator_terms = adversarial_step(
        model,
        discriminator,
        [PerSampleMC()],
        [Critic()],
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.optim.SGD(discriminator.parameters(), lr=0.1),
        x,
        y,
        physics,
        epoch=0,
    )
    assert generator_terms.shape == (1,)
    assert discriminator_terms.shape == (1,)


def _operators(generator: torch.Generator) -> dict[str, tuple[object, Tensor]]:
    image = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    video = torch.randn(BATCH, 2, 3, SIZE, SIZE, generator=generator)
    time_mask = (torch.rand(BATCH, 1, 3, SIZE, SIZE, generator=generator) < 0.5).float()
    return {
        "single-coil": (SingleCoilMRI(_mask(generator), sigma=0.1), image),
        "multicoil": (MultiCoilMRI(_mask(generator), birdcage_maps(3, SIZE, SIZE), 0.1), image),
        "dynamic": (DynamicMRI(time_mask, sigma=0.1), video),
        "sequential": (SequentialMRI(time_mask, sigma=0.1), image),
    }


@pytest.mark.parametrize("kind", ["single-coil", "multicoil", "dynamic", "sequential"])
def test_calling_an_operator_is_measure_with_the_global_generator(
    generator: torch.Generator, kind: str
) -> None:
    physics, x = _operators(generator)[kind]
    torch.manual_seed(5)
    called = physics(x)
    torch.manual_seed(5)
    measured = physics.measure(x, None)
    assert torch.equal(called, measured)
    assert not torch.equal(called, physics.A(x))  # noise was added


def test_prox_fallback_matches_closed_form_and_keeps_gradient(generator: torch.Generator) -> None:
    physics = SingleCoilMRI(_mask(generator))
    z = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    y = physics.A(torch.randn(BATCH, 2, SIZE, SIZE, generator=generator))
    gamma = torch.tensor(0.7, requires_grad=True)
    fallback = prox_l2(MinimalMRI(physics.mask), z, y, gamma)
    torch.testing.assert_close(fallback, physics.prox_l2(z, y, gamma), rtol=0, atol=1e-5)
    (grad,) = torch.autograd.grad(fallback.sum(), gamma)
    assert torch.isfinite(grad)
    assert grad != 0
    # An operator's own prox_l2 is used as is.
    assert torch.equal(prox_l2(physics, z, y, gamma), physics.prox_l2(z, y, gamma))


@pytest.mark.parametrize("step_order", ["dc-first", "denoiser-first"])
def test_modl_with_a_minimal_operator_equals_modl_with_singlecoil(
    generator: torch.Generator, step_order: str
) -> None:
    _, y, physics = _batch(generator)
    model = _modl(step_order=step_order)
    with torch.no_grad():
        model.step_sizes.copy_(torch.tensor([0.5, 2.0]))
    expected = model(y, physics)
    minimal = MinimalMRI(physics.mask)
    assert not hasattr(minimal, "prox_l2")
    torch.testing.assert_close(model(y, minimal), expected, rtol=0, atol=1e-4)


def test_modl_trains_through_a_minimal_operator(generator: torch.Generator) -> None:
    x, y, physics = _batch(generator)
    model = _modl()
    twin = copy.deepcopy(model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    # The minimal operator with the (B,) loss against SingleCoilMRI with the scalar loss.
    for net, loss, operator in (
        (model, PerSampleMC(), MinimalMRI(physics.mask)),
        (twin, ScalarMC(), physics),
    ):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        train_step(net, [loss], optimizer, scaler, x, y, operator, epoch=0)
    assert not torch.equal(model.step_sizes, torch.ones(2))
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
