"""Adversarial training: one alternating generator/discriminator update, and unpaired real batches.

Used for the methods whose trainer kind is ``adversarial`` (``adversarial``, ``uair``): the
reconstruction network f (the generator G) and a discriminator D have their own losses and
optimisers (SSIBench: Adam, lr 1e-3, for both) and are updated in turn on every batch, as
DeepInverse's ``AdversarialTrainer`` does (spec physics-masks-models-data §7.7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ssibench.data.measurements import MeasurementSet
from ssibench.losses.base import Loss
from ssibench.physics import Physics

__all__ = [
    "AdversarialParts",
    "AdversarialResources",
    "UnpairedBatches",
    "adversarial_step",
    "frozen",
]


class AdversarialResources(NamedTuple):
    """What the trainer hands an adversarial method besides its loss stream.

    Attributes:
        train_set: the training split (source of unpaired "real" measurements).
        discriminator_generator: initialises the discriminator's weights.
        unpaired_generator: draws the unpaired batches (checkpointed with the run).
    """

    train_set: MeasurementSet
    discriminator_generator: torch.Generator
    unpaired_generator: torch.Generator


class AdversarialParts(NamedTuple):
    """An adversarial method: discriminator D, generator (network) losses, discriminator losses."""

    discriminator: nn.Module
    generator_losses: list[Loss]
    discriminator_losses: list[Loss]


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
            [
                loss(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=epoch)
                for loss in generator_losses
            ]
        )
        _backward_and_step(generator_terms.sum(), optimizer_g, scaler_g)

    x_fake = x_net.detach()
    optimizer_d.zero_grad(set_to_none=True)
    discriminator_terms = torch.stack(
        [
            loss(x_net=x_fake, y=y, physics=physics, model=model, x=x, epoch=epoch)
            for loss in discriminator_losses
        ]
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


class UnpairedBatches:
    """Random batches (ỹ, A_ỹ) of a training split: the "real" data of the multi-operator D loss.

    Each call draws ``batch_size`` distinct rows uniformly (a random permutation of the n rows
    from ``generator``, first B kept) and returns their measurements and operator. Stateless apart
    from the generator, so checkpointing the generator state resumes the stream. Difference from
    the reference: it iterates a shuffled DataLoader epoch by epoch (each row once per epoch, and a
    smaller last batch that then fails its shape check); here every batch is an independent draw
    of exactly B rows.

    Example:
        >>> data = MeasurementSet(torch.zeros(5, 2, 8, 8), torch.randn(5, 2, 8, 8),
        ...                       torch.ones(1, 1, 8, 8), None, 0.0, "single-coil", "demo")
        >>> y, physics = UnpairedBatches(data, torch.Generator().manual_seed(0))(3)
        >>> y.shape
        torch.Size([3, 2, 8, 8])
    """

    def __init__(self, measurements: MeasurementSet, generator: torch.Generator) -> None:
        if len(measurements) == 0:
            raise ValueError("UnpairedBatches needs a non-empty training split")
        self.measurements = measurements
        self.generator = generator

    def __call__(self, batch_size: int) -> tuple[Tensor, Physics]:
        """``batch_size`` distinct random rows: (y ``(B, ...)``, their operator)."""
        n = len(self.measurements)
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}] (the split size); got {batch_size}")
        order = torch.randperm(n, generator=self.generator, device=self.generator.device)
        rows = order[:batch_size].to(self.measurements.y.device)
        return self.measurements.y[rows], self.measurements.physics(rows)
