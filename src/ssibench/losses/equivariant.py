"""Equivariant imaging and multi-operator imaging losses.

Both exploit that the unknown images form a set invariant to some group (rotations) or that the
operator varies between acquisitions (masks), so the network can learn the null-space of one operator.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.masks import MaskGenerator
from ssibench.physics import Physics
from ssibench.transforms import Rotate

__all__ = ["EILoss", "MOILoss"]


class EILoss(Loss):
    """Equivariant imaging: L = mean((f(A T_g x̂ [+ n], A) − T_g x̂)²), g random per sample.

    With ``apply_noise`` the re-measurement uses the physics noise level (σ ε drawn from this loss's
    generator), as the reference does. Gradients flow through both T_g x̂ and the second network call
    (the reference default ``no_grad=False``).
    Chen, Tachella, Davies, "Equivariant imaging: learning beyond the range space", ICCV 2021,
    arXiv:2103.14756.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> EILoss(Rotate(), g).transform
        Rotate(limits=360, multiples=1, positive=False, mode='nearest')
    """

    def __init__(
        self,
        transform: Rotate,
        generator: torch.Generator,
        apply_noise: bool = True,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.generator = generator
        self.apply_noise = apply_noise
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
        """weight · mean((f(A T x̂, A) − T x̂)²)."""
        x_transformed = self.transform(x_net, self.generator)
        y_new = _remeasure(physics, x_transformed, self.generator, self.apply_noise)
        return self.weight * mse(model(y_new, physics), x_transformed)


class MOILoss(Loss):
    """Multi-operator imaging: L = mean((f(A_g x̂ [+ n], A_g) − x̂)²) with a new mask per sample.

    A_g is the batch operator with a mask freshly drawn from the acquisition mask generator (coil maps
    and noise level kept). Tachella, Chen, Davies, "Unsupervised learning from incomplete
    measurements for inverse problems", NeurIPS 2022, arXiv:2201.12151. Difference from the reference: one new mask per sample instead of one
    shared by the batch.
    """

    def __init__(
        self,
        mask_generator: MaskGenerator,
        generator: torch.Generator,
        apply_noise: bool = True,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.mask_generator = mask_generator
        self.generator = generator
        self.apply_noise = apply_noise
        self.weight = weight

    def next_physics(self, physics: Physics, batch_size: int) -> Physics:
        """The batch operator with ``batch_size`` new masks (on the physics' device)."""
        height, width = physics.mask.shape[-2:]
        masks = self.mask_generator.sample(batch_size, height, width, self.generator)
        return physics.with_mask(masks.to(physics.mask.device, physics.mask.dtype))

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
        """weight · mean((f(A_g x̂, A_g) − x̂)²)."""
        new_physics = self.next_physics(physics, x_net.shape[0])
        y_new = _remeasure(new_physics, x_net, self.generator, self.apply_noise)
        return self.weight * mse(model(y_new, new_physics), x_net)


def _remeasure(
    physics: Physics, image: Tensor, generator: torch.Generator, apply_noise: bool
) -> Tensor:
    """A image, plus the physics noise when ``apply_noise`` (drawn from ``generator``)."""
    return physics.measure(image, generator) if apply_noise else physics.A(image)
