"""Adversarial losses on the batch's own operator: supervised and unsupervised (AmbientGAN).

Every adversarial loss (these and those of :mod:`ssibench.losses.adversarial_multi_operator`) is a
least-squares GAN (LSGAN) term built on

    q(p, real) = mean((p − c)²),   c = 1 for "real", 0 for "fake",

with p the discriminator's scores ``(B,)`` (mean over the batch); :func:`lsgan` computes it and
:func:`to_space` maps measurements to the space D compares them in. A *generator* loss (minimised
by the reconstruction network f) pushes D's scores of its outputs towards 1; a *discriminator*
loss (minimised by D) pushes real scores to 1 and fake scores to 0. Each loss holds the
discriminator D it scores with (a submodule, given at construction) and keeps the loss contract
``loss(x_net=, y=, physics=, model=, x=, epoch=)``; discriminator losses detach x_net themselves,
so they never send gradients into f. :func:`ssibench.training.adversarial.adversarial_step`
alternates the two updates. Sources: DeepInverse ``deepinv/loss/adversarial`` and its pull
request #409 (commit 83569a502).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.losses.base import Loss
from ssibench.physics import Physics

__all__ = [
    "SPACES",
    "Space",
    "SupAdversarialDiscriminatorLoss",
    "SupAdversarialGeneratorLoss",
    "UnsupAdversarialDiscriminatorLoss",
    "UnsupAdversarialGeneratorLoss",
    "check_space",
    "lsgan",
    "to_space",
]

#: Where D compares measurements: raw k-space, Aᴴy (zero-filled image) or A†y (least squares).
#: The reference calls this ``metric`` with values None, "A_adjoint", "A_dagger".
Space = Literal["kspace", "A_adjoint", "A_dagger"]
SPACES: tuple[str, ...] = ("kspace", "A_adjoint", "A_dagger")


def lsgan(scores: Tensor, real: bool) -> Tensor:
    """LSGAN term q(p, real) = mean((p − c)²), c = 1 if ``real`` else 0; ``scores`` any shape."""
    return (scores - (1.0 if real else 0.0)).pow(2).mean()


def to_space(y: Tensor, physics: Physics, space: Space) -> Tensor:
    """Map measurements ``y`` to the space D works in: y, Aᴴy or A†y (``(B, 2, H, W)`` images)."""
    if space == "kspace":
        return y
    if space == "A_adjoint":
        return physics.A_adjoint(y)
    return physics.A_dagger(y)


def check_space(space: str) -> None:
    """Refuse a ``space`` not in :data:`SPACES`.

    Raises:
        ConfigError: naming the valid spaces.
    """
    if space not in SPACES:
        raise ConfigError(f"adversarial space must be one of {', '.join(SPACES)}; got {space!r}")


class SupAdversarialGeneratorLoss(Loss):
    """Supervised adversarial generator loss L_G = w · q(D(x̂), real).

    x̂ ``(B, 2, H, W)``; 0-dim mean. Kupyn et al., "DeblurGAN: blind motion deblurring using
    conditional adversarial networks", CVPR 2018, arXiv:1711.07064 (DeepInverse default w = 0.01).
    """

    def __init__(self, discriminator: nn.Module, weight: float = 0.01) -> None:
        super().__init__()
        self.discriminator = discriminator
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
        """Return w · mean((D(x̂) − 1)²)."""
        return self.weight * lsgan(self.discriminator(x_net), real=True)


class SupAdversarialDiscriminatorLoss(Loss):
    """Supervised adversarial discriminator loss L_D = ½ w · [q(D(x), real) + q(D(x̂), fake)].

    x (ground truth) and x̂ (detached) ``(B, 2, H, W)``; 0-dim. DeblurGAN (Kupyn et al., CVPR 2018,
    arXiv:1711.07064), DeepInverse default w = 1.
    """

    def __init__(self, discriminator: nn.Module, weight: float = 1.0) -> None:
        super().__init__()
        self.discriminator = discriminator
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
        """Return ½ w · [mean((D(x) − 1)²) + mean(D(x̂)²)]; raises without ground truth."""
        if x is None:
            raise ConfigError("the supervised adversarial loss needs ground truth x; none given")
        real = lsgan(self.discriminator(x), real=True)
        fake = lsgan(self.discriminator(x_net.detach()), real=False)
        return 0.5 * self.weight * (real + fake)


class UnsupAdversarialGeneratorLoss(Loss):
    """Unsupervised (AmbientGAN-style) generator loss L_G = w · q(D(S(A x̂)), real).

    S maps measurements to the compared space (``space``: k-space, Aᴴ or A† of the *same* operator).
    Bora, Price, Dimakis, "AmbientGAN: generative models from lossy measurements", ICLR 2018.
    Difference: ŷ = A x̂ is computed here (the reference trainer passes it in as ``y_hat``).
    """

    def __init__(
        self, discriminator: nn.Module, weight: float = 1.0, space: Space = "kspace"
    ) -> None:
        super().__init__()
        check_space(space)
        self.discriminator = discriminator
        self.weight = weight
        self.space = space

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
        """Return w · mean((D(S(A x̂)) − 1)²)."""
        fake = to_space(physics.A(x_net), physics, self.space)
        return self.weight * lsgan(self.discriminator(fake), real=True)


class UnsupAdversarialDiscriminatorLoss(Loss):
    """Unsupervised discriminator loss L_D = w · [q(D(S(y)), real) + q(D(S(A x̂)), fake)].

    x̂ detached. AmbientGAN (Bora, Price, Dimakis, ICLR 2018); no ½ factor, as the reference.
    """

    def __init__(
        self, discriminator: nn.Module, weight: float = 1.0, space: Space = "kspace"
    ) -> None:
        super().__init__()
        check_space(space)
        self.discriminator = discriminator
        self.weight = weight
        self.space = space

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
        """Return w · [mean((D(S(y)) − 1)²) + mean(D(S(A x̂))²)]."""
        real = to_space(y, physics, self.space)
        fake = to_space(physics.A(x_net.detach()), physics, self.space)
        return self.weight * (
            lsgan(self.discriminator(real), real=True) + lsgan(self.discriminator(fake), real=False)
        )
