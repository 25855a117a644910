"""Multi-operator consistency (MOC): re-measure the reconstruction with new masks, check y."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.losses.equivariant import new_operator
from ssibench.masks import MaskGenerator
from ssibench.physics import Physics

__all__ = ["MOConsistencyLoss"]


class MOConsistencyLoss(Loss):
    """Multi-operator consistency: L = weight · mean((A f(A_g x̂ [+ n], A_g) − y)²).

    A_g is the batch operator with a new acquisition mask per sample drawn from ``mask_generator``
    (coil maps and noise level kept, built with ``with_mask``); with ``apply_noise`` the
    re-measurement adds the physics noise σ ε (ε from this loss's generator). The second
    reconstruction x₂ = f(A_g x̂ [+ n], A_g) is checked against the *acquired* data y on the
    *original* mask; the mean runs over every entry of y, ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``.
    Gradients flow through x̂ and x₂ (no detach). Returns a 0-dim tensor.

    In SSIBench's ``moc-ssdu`` ([MOConsistencyLoss, SplittingLoss]) ``model`` is the SSDU
    :class:`~ssibench.losses.splitting.SplittingModel` in training mode, so x₂ is itself computed
    from a random Bernoulli split of A_g x̂ inside A_g's mask (without replacing the recorded split).

    SSIBench ``utils/moc.py``; proposed as the cycle-consistency term of CC-SSDU: Zhang et al.,
    "Cycle-consistent self-supervised learning for improved highly-accelerated MRI reconstruction",
    IEEE ISBI 2024 (IEEE Xplore 10635895); related to MOI (Tachella, Chen, Davies, NeurIPS 2022,
    arXiv:2201.12151). Difference from the reference: one new mask per sample instead of one shared
    by the batch, and no deep copy of the physics.

    Args:
        mask_generator: generator of the acquisition masks (the scenario's).
        generator: random stream of the new masks and the re-measurement noise.
        apply_noise: re-measure with the physics noise level.
        weight: factor of the loss.

    Example:
        >>> from ssibench.masks import GaussianMaskGenerator
        >>> MOConsistencyLoss(GaussianMaskGenerator(6), torch.Generator()).weight
        1.0
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
        self.weight = float(weight)

    def next_physics(self, physics: Physics, batch_size: int) -> Physics:
        """The batch operator with ``batch_size`` new masks ``(B, 1, H, W)`` on its device."""
        return new_operator(physics, self.mask_generator, batch_size, self.generator)

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
        """Return weight · mean((A f(A_g x̂ [+ n], A_g) − y)²)."""
        new_physics = self.next_physics(physics, x_net.shape[0])
        if self.apply_noise:
            y_new = new_physics.measure(x_net, self.generator)
        else:
            y_new = new_physics.A(x_net)
        x_second = model(y_new, new_physics)
        return self.weight * mse(physics.A(x_second), y)
