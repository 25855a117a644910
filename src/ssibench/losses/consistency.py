"""Supervised and measurement-consistency losses."""

from __future__ import annotations

from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.losses.base import Loss, mse
from ssibench.physics import Physics

__all__ = ["AdjointMCLoss", "MCLoss", "SupLoss"]


class SupLoss(Loss):
    """Supervised loss L = mean((x̂ − x)²) against the ground truth x ``(B, 2, H, W)``.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 2, 4, 4)
        >>> float(SupLoss()(x_net=x + 1, y=x, physics=None, model=None, x=x))
        1.0
    """

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
        """mean((x̂ − x)²); raises if the data set has no ground truth."""
        if x is None:
            raise ConfigError("the supervised loss needs ground truth x, but none was given")
        return mse(x_net, x)


class MCLoss(Loss):
    """Measurement consistency L = mean((A x̂ − y)²) over all k-space entries (sampled or not).

    Unsampled entries of both A x̂ and y are 0, so only sampled k-space constrains x̂: in single-coil
    MRI this loss alone cannot fill in missing k-space and trains towards the zero-filled image.
    """

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
        """mean((A x̂ − y)²); A x̂ and y are ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``."""
        return mse(physics.A(x_net), y)


class AdjointMCLoss(Loss):
    """Image-domain measurement consistency L = mean((AᴴA x̂ − Aᴴy)²) over ``(B, 2, H, W)``.

    SSIBench uses this variant for every MC term in the multicoil scenario: the residual is
    coil-combined with conj(Sₙ) before the squared norm. In single-coil MRI it equals
    :class:`MCLoss` (F unitary, M idempotent).
    """

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
        """mean((AᴴA x̂ − Aᴴy)²)."""
        return mse(physics.A_adjoint(physics.A(x_net)), physics.A_adjoint(y))
