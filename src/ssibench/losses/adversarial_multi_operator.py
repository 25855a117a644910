"""Adversarial losses under a new random operator: multi-operator (Cole et al.) and UAIR.

These losses compare the network's output seen through a *new* random operator A_new (the batch
operator with a freshly drawn mask per sample) with real measurements; they are LSGAN terms like
those of :mod:`ssibench.losses.adversarial` (:func:`~ssibench.losses.adversarial.lsgan`). The
generator and discriminator loss of one step must see the same A_new (and the same unpaired real
batch): they share one :class:`AdversarialSampler`, which draws once per batch (see there). The
reference gets this from two identically seeded copies of its generators. UAIR: Pajot, de
Bézenac, Gallinari, ICLR 2019. Sources: DeepInverse ``deepinv/loss/adversarial`` and its pull
request #409 (commit 83569a502).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.losses.adversarial import Space, check_space, lsgan, to_space
from ssibench.losses.base import Loss, mse
from ssibench.losses.equivariant import new_operator
from ssibench.masks import MaskGenerator
from ssibench.physics import Physics
from ssibench.rng import on_device

__all__ = [
    "AdversarialDraw",
    "AdversarialSampler",
    "MultiOperatorUnsupAdversarialDiscriminatorLoss",
    "MultiOperatorUnsupAdversarialGeneratorLoss",
    "UAIRDiscriminatorLoss",
    "UAIRGeneratorLoss",
    "UnpairedSource",
]

#: A source of unpaired real data: batch size B → (ỹ, A_ỹ), B measurements of other training images
#: with their own operator (``ssibench.methods.adversarial.UnpairedBatches`` is one).
UnpairedSource = Callable[[int], tuple[Tensor, Physics]]


def _full_mask(physics: Physics) -> Physics:
    """The operator with an all-ones mask (A_full in the reference): Aᴴ is the plain inverse FFT."""
    return physics.with_mask(torch.ones_like(physics.mask[:1]))


@dataclass(frozen=True, eq=False)
class AdversarialDraw:
    """The random quantities of one adversarial step, shared by its generator and D loss.

    Attributes:
        physics: A_new, the batch operator with a freshly drawn mask per sample ``(B, 1, H, W)``.
        y_real: ỹ, unpaired measurements of other training images (``None`` without a source).
        physics_real: their own operator A_ỹ (``None`` without a source).
    """

    physics: Physics
    y_real: Tensor | None
    physics_real: Physics | None


class AdversarialSampler:
    """Draws A_new (one new acquisition mask per sample) and, optionally, an unpaired real batch.

    One draw per batch: the first loss called with a given ``y`` tensor draws; any later call with
    the *same tensor object* (the discriminator loss of the same step, or extra discriminator
    steps) reuses that draw, so generator and discriminator see the same operator and real samples.
    A new batch tensor triggers a new draw. Masks come from ``mask_generator.sample(B, H, W,
    generator)``; the unpaired batch from ``unpaired(B)`` (which has its own generator).

    Example:
        >>> from ssibench.masks import RandomMaskGenerator
        >>> from ssibench.physics import SingleCoilMRI
        >>> sampler = AdversarialSampler(RandomMaskGenerator(4), torch.Generator().manual_seed(0))
        >>> y, A = torch.zeros(2, 2, 8, 8), SingleCoilMRI(torch.ones(1, 1, 8, 8))
        >>> sampler.draw(y, A).physics.mask.shape
        torch.Size([2, 1, 8, 8])
        >>> sampler.draw(y, A) is sampler.draw(y, A)
        True
    """

    def __init__(
        self,
        mask_generator: MaskGenerator,
        generator: torch.Generator,
        unpaired: UnpairedSource | None = None,
    ) -> None:
        self.mask_generator = mask_generator
        self.generator = generator
        self.unpaired = unpaired
        self._last: tuple[Tensor, AdversarialDraw] | None = None

    def draw(self, y: Tensor, physics: Physics) -> AdversarialDraw:
        """The draw of the batch ``y`` (a new one unless ``y`` is the tensor of the last call)."""
        if self._last is not None and self._last[0] is y:
            return self._last[1]
        batch_size = y.shape[0]
        new_physics = new_operator(physics, self.mask_generator, batch_size, self.generator)
        y_real, physics_real = None, None
        if self.unpaired is not None:
            y_real, physics_real = self.unpaired(batch_size)
            if y_real.shape != y.shape:
                raise ValueError(
                    f"unpaired source returned measurements {tuple(y_real.shape)}; the batch has "
                    f"{tuple(y.shape)}"
                )
            y_real = on_device(y_real, y.device)
        draw = AdversarialDraw(new_physics, y_real, physics_real)
        self._last = (y, draw)
        return draw


class _SampledAdversarialLoss(Loss):
    """The parts every multi-operator adversarial loss holds, built by one constructor.

    The discriminator D, the sampler it shares with its partner loss (one new operator per step)
    and the space D sees (:func:`to_space`).
    """

    def __init__(self, discriminator: nn.Module, sampler: AdversarialSampler, space: Space) -> None:
        super().__init__()
        check_space(space)
        self.discriminator = discriminator
        self.sampler = sampler
        self.space = space


class MultiOperatorUnsupAdversarialGeneratorLoss(_SampledAdversarialLoss):
    """Multi-operator adversarial generator loss L_G = w · q(D(S_full(A_new x̂)), real).

    A_new: the batch operator with a new random mask per sample (from the shared sampler);
    S_full: ``space`` mapping through the operator with an all-ones mask (for ``A_adjoint``: the
    plain inverse FFT of the re-undersampled k-space, equal to A_newᴴ A_new x̂). D learns to tell
    these from real measurements of other images (the discriminator loss). x̂ ``(B, 2, H, W)``;
    0-dim.
    Cole, Pauly, Vasanawala, Ong, "Unsupervised MRI reconstruction with generative adversarial
    networks", arXiv:2008.13065, 2020 (as DeepInverse PR #409; SSIBench: w = 1, space A_adjoint, no
    MC term). Differences: the "new mask ≠ old mask" assertion is dropped (it forces a host sync);
    operators are rebuilt with ``with_mask`` instead of deep copies.
    """

    def __init__(
        self,
        discriminator: nn.Module,
        sampler: AdversarialSampler,
        weight: float = 1.0,
        space: Space = "A_adjoint",
    ) -> None:
        super().__init__(discriminator, sampler, space)
        self.weight = weight

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """Return w · mean((D(S_full(A_new x̂)) − 1)²)."""
        new_physics = self.sampler.draw(y, physics).physics
        fake = to_space(new_physics.A(x_net), _full_mask(new_physics), self.space)
        return self.weight * lsgan(self.discriminator(fake), real=True)


class MultiOperatorUnsupAdversarialDiscriminatorLoss(_SampledAdversarialLoss):
    """Multi-operator discriminator loss L_D = w · [q(D(S_full ỹ), 1) + q(D(S_full A_new x̂), 0)].

    q(·, 1) is the "real" and q(·, 0) the "fake" LSGAN term; ỹ: measurements of an unpaired batch
    of other training images under their own operator; A_new: the same new operator as the
    generator loss of this step (shared sampler); x̂ detached. No ½ factor, as the reference.
    Cole et al., arXiv:2008.13065 (DeepInverse PR #409).
    """

    def __init__(
        self,
        discriminator: nn.Module,
        sampler: AdversarialSampler,
        weight: float = 1.0,
        space: Space = "A_adjoint",
    ) -> None:
        if sampler.unpaired is None:
            raise ConfigError(
                "the multi-operator discriminator loss needs unpaired real measurements: build its "
                "AdversarialSampler with unpaired=UnpairedBatches(train_set, generator)"
            )
        super().__init__(discriminator, sampler, space)
        self.weight = weight

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """Return w · [mean((D(S_full(ỹ)) − 1)²) + mean(D(S_full(A_new x̂))²)]."""
        draw = self.sampler.draw(y, physics)
        assert draw.y_real is not None  # an unpaired source is checked in __init__
        assert draw.physics_real is not None
        real = to_space(draw.y_real, _full_mask(draw.physics_real), self.space)
        fake = to_space(draw.physics.A(x_net.detach()), _full_mask(draw.physics), self.space)
        return self.weight * (
            lsgan(self.discriminator(real), real=True) + lsgan(self.discriminator(fake), real=False)
        )


class UAIRGeneratorLoss(_SampledAdversarialLoss):
    """UAIR generator loss L_G = w_adv · q(D(S_new ŷ), 1) + w_mc · mean((A_new f(ŷ, A_new) − ŷ)²).

    ŷ = A_new x̂ with A_new the batch operator under a new random mask per sample (shared sampler);
    f(ŷ, A_new) is an extra network call (with gradient); S_new maps through A_new (``space``;
    SSIBench: A_adjoint in multicoil, k-space in single-coil). Shapes: x̂ ``(B, 2, H, W)``; 0-dim.
    Pajot, de Bézenac, Gallinari, "Unsupervised adversarial image reconstruction", ICLR 2019
    (defaults w_adv = 0.5, w_mc = 1). Follows DeepInverse pull request #409 (83569a502) and fixes
    a bug of its main branch, which calls f without the operator and never draws a new operator.
    """

    def __init__(
        self,
        discriminator: nn.Module,
        sampler: AdversarialSampler,
        weight_adv: float = 0.5,
        weight_mc: float = 1.0,
        space: Space = "kspace",
    ) -> None:
        super().__init__(discriminator, sampler, space)
        self.weight_adv = weight_adv
        self.weight_mc = weight_mc

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """Return w_adv · mean((D(S_new(ŷ)) − 1)²) + w_mc · mean((A_new f(ŷ, A_new) − ŷ)²)."""
        new_physics = self.sampler.draw(y, physics).physics
        y_hat = new_physics.A(x_net)
        y_tilde = new_physics.A(model(y_hat, new_physics))
        fake = to_space(y_hat, new_physics, self.space)
        adversarial = lsgan(self.discriminator(fake), real=True)
        return self.weight_adv * adversarial + self.weight_mc * mse(y_tilde, y_hat)


class UAIRDiscriminatorLoss(_SampledAdversarialLoss):
    """UAIR discriminator loss L_D = w · [q(D(S(y)), real) + q(D(S_new(A_new x̂)), fake)].

    x̂ detached; y through the batch operator, ŷ = A_new x̂ through the same A_new as the generator
    loss of this step (shared sampler). Pajot et al., ICLR 2019 (DeepInverse PR #409 @83569a502;
    w = 1).
    """

    def __init__(
        self,
        discriminator: nn.Module,
        sampler: AdversarialSampler,
        weight: float = 1.0,
        space: Space = "kspace",
    ) -> None:
        super().__init__(discriminator, sampler, space)
        self.weight = weight

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """Return w · [mean((D(S(y)) − 1)²) + mean(D(S_new(A_new x̂))²)]."""
        new_physics = self.sampler.draw(y, physics).physics
        real = to_space(y, physics, self.space)
        fake = to_space(new_physics.A(x_net.detach()), new_physics, self.space)
        return self.weight * (
            lsgan(self.discriminator(real), real=True) + lsgan(self.discriminator(fake), real=False)
        )
