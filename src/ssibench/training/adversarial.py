"""Adversarial training: one alternating generator/discriminator update.

Used for the methods flagged ``adversarial`` (``adversarial``, ``uair``): the reconstruction
network f (the generator G) and a discriminator D have their own losses and optimisers (SSIBench:
Adam, lr 1e-3, for both) and are updated in turn on every batch, as DeepInverse's
``AdversarialTrainer`` does. The discriminator and both loss lists are built by
:mod:`ssibench.methods.adversarial`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, call_loss
from ssibench.physics import Physics

__all__ = ["adversarial_step", "adversarial_step_function", "frozen"]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of the parameters of ``module`` in the block; restore after."""
    flags = [(parameter, parameter.requires_grad) for parameter in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def adversarial_step(
    model: nn.Module,
    discriminator: nn.Module,
    generator_losses: Sequence[Loss],
    discriminator_losses: Sequence[Loss],
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    physics: Physics,
    epoch: int,
    scaler_g: torch.amp.GradScaler | None = None,
    scaler_d: torch.amp.GradScaler | None = None,
) -> tuple[Tensor, Tensor]:
    """One alternating update: a generator (network) step, then a discriminator step.

    1. x̂ = f(y, A); L_G = Σ generator losses at (x̂, y, A, f, x, epoch); backward; G optimiser step.
       D's parameters are frozen meanwhile, so no gradient of D is computed (the reference computes
       them and discards them at the D step).
    2. L_D = Σ discriminator losses at the same (pre-update) x̂, detached; backward; D
       optimiser step. The network is not run again and no graph is retained: the D losses only
       see the values of x̂, so f receives no gradient from them.

    This is DeepInverse's ``AdversarialTrainer`` step with ``step_ratio_D = 1`` (D scores the x̂
    computed before the G update), without its ``retain_graph=True`` and wasted D gradients.
    Every loss is called through :func:`~ssibench.losses.base.call_loss` (either signature; a
    per-sample ``(B,)`` value is averaged).
    Losses that draw a new operator share it between G and D through their sampler (one draw per
    batch tensor ``y``). With fp16 mixed precision each optimiser has its own gradient scaler
    (backward on s·L, step on the unscaled gradients, skipped when not finite); without scalers,
    or with disabled ones, the steps are plain.

    Args:
        model: the reconstruction network f, called ``model(y, physics)``; in training mode.
        discriminator: D, the module the adversarial losses score with.
        generator_losses: losses minimised by f (e.g. ``UAIRGeneratorLoss``).
        discriminator_losses: losses minimised by D (e.g. ``UAIRDiscriminatorLoss``).
        optimizer_g: optimiser of f's parameters.
        optimizer_d: optimiser of D's parameters.
        x: ground truth ``(B, 2, H, W)`` (only supervised losses read it).
        y: measurements ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``.
        physics: the batch operator A.
        epoch: current epoch (0-based).
        scaler_g: gradient scaler of f's optimiser (None: plain backward and step).
        scaler_d: gradient scaler of D's optimiser (None: plain backward and step).

    Returns:
        (generator terms ``(len(generator_losses),)``, discriminator terms
        ``(len(discriminator_losses),)``), detached, for logging.
    """
    optimizer_g.zero_grad(set_to_none=True)
    with frozen(discriminator):
        x_net = model(y, physics)
        generator_terms = torch.stack(
            [call_loss(loss, x_net, y, physics, model, x, epoch) for loss in generator_losses]
        )
        _backward_and_step(generator_terms.sum(), optimizer_g, scaler_g)

    x_fake = x_net.detach()
    optimizer_d.zero_grad(set_to_none=True)
    discriminator_terms = torch.stack(
        [call_loss(loss, x_fake, y, physics, model, x, epoch) for loss in discriminator_losses]
    )
    _backward_and_step(discriminator_terms.sum(), optimizer_d, scaler_d)
    return generator_terms.detach(), discriminator_terms.detach()


def _backward_and_step(
    total: Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> None:
    """Backward on ``total`` and one optimiser step, through ``scaler`` when given."""
    if scaler is None:
        total.backward()
        optimizer.step()
        return
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()


def adversarial_step_function(
    model: nn.Module,
    discriminator: nn.Module,
    generator_losses: Sequence[Loss],
    discriminator_losses: Sequence[Loss],
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
    scaler_g: torch.amp.GradScaler | None = None,
    scaler_d: torch.amp.GradScaler | None = None,
) -> Callable[[Tensor, Tensor, Physics, int], Tensor]:
    """The step function of an adversarial run: (x, y, physics, epoch) → the G and D terms.

    :func:`adversarial_step` with its parts bound; the terms of both updates are concatenated,
    generator terms first, in the order of ``[*generator_losses, *discriminator_losses]``.
    """

    def step(x: Tensor, y: Tensor, physics: Physics, epoch: int) -> Tensor:
        return torch.cat(
            adversarial_step(
                model,
                discriminator,
                generator_losses,
                discriminator_losses,
                optimizer_g,
                optimizer_d,
                x,
                y,
                physics,
                epoch,
                scaler_g,
                scaler_d,
            )
        )

    return step
