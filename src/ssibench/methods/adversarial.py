"""Adversarial methods: their discriminator, generator losses and discriminator losses.

:data:`ADVERSARIAL_BUILDERS` holds one function per method flagged ``adversarial`` in
:data:`ssibench.methods.METHODS`; given the method's context and the trainer's
:class:`AdversarialResources` it returns the :class:`AdversarialParts` that
:func:`ssibench.training.adversarial.adversarial_step` alternates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ssibench.data.measurements import MeasurementSet
from ssibench.losses.adversarial_multi_operator import (
    AdversarialSampler,
    MultiOperatorUnsupAdversarialDiscriminatorLoss,
    MultiOperatorUnsupAdversarialGeneratorLoss,
    UAIRDiscriminatorLoss,
    UAIRGeneratorLoss,
)
from ssibench.losses.base import Loss
from ssibench.methods.builders import MethodContext, acquisition_masks, is_multicoil
from ssibench.models.discriminators import SkipConvDiscriminator
from ssibench.physics import Physics
from ssibench.rng import on_device

__all__ = [
    "ADVERSARIAL_BUILDERS",
    "AdversarialBuilder",
    "AdversarialParts",
    "AdversarialResources",
    "UnpairedBatches",
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
        order = torch.randperm(n, generator=self.generator)
        rows = on_device(order[:batch_size], self.measurements.y.device)
        return self.measurements.y[rows], self.measurements.physics(rows)


#: (context, resources) → discriminator with generator and discriminator losses.
AdversarialBuilder = Callable[[MethodContext, AdversarialResources], AdversarialParts]


def _discriminator(
    context: MethodContext, resources: AdversarialResources
) -> SkipConvDiscriminator:
    height, width = resources.train_set.x.shape[-2:]
    return SkipConvDiscriminator(
        (height, width),
        resources.discriminator_generator,
        d_dim=context.options.d_dim,
        d_blocks=context.options.d_blocks,
        use_sigmoid=False,
    )


def _multi_operator_adversarial(
    context: MethodContext, resources: AdversarialResources
) -> AdversarialParts:
    """Cole et al.: D tells measurements of other images from re-measured reconstructions."""
    discriminator = _discriminator(context, resources)
    sampler = AdversarialSampler(
        acquisition_masks(context),
        context.generator,
        UnpairedBatches(resources.train_set, resources.unpaired_generator),
    )
    weight = context.options.weight_adv
    return AdversarialParts(
        discriminator,
        [MultiOperatorUnsupAdversarialGeneratorLoss(discriminator, sampler, weight, "A_adjoint")],
        [
            MultiOperatorUnsupAdversarialDiscriminatorLoss(
                discriminator, sampler, weight, "A_adjoint"
            )
        ],
    )


def _uair(context: MethodContext, resources: AdversarialResources) -> AdversarialParts:
    """UAIR: adversarial on measurements of new operators plus measurement consistency."""
    discriminator = _discriminator(context, resources)
    sampler = AdversarialSampler(acquisition_masks(context), context.generator)
    space = "A_adjoint" if is_multicoil(context) else "kspace"
    options = context.options
    return AdversarialParts(
        discriminator,
        [
            UAIRGeneratorLoss(
                discriminator,
                sampler,
                weight_adv=options.weight_adv,
                weight_mc=options.weight_mc,
                space=space,
            )
        ],
        [UAIRDiscriminatorLoss(discriminator, sampler, weight=options.weight_d, space=space)],
    )


#: The builder of every adversarial method.
ADVERSARIAL_BUILDERS: dict[str, AdversarialBuilder] = {
    "adversarial": _multi_operator_adversarial,
    "uair": _uair,
}
