"""Single-coil Cartesian MRI with additive Gaussian noise: A x = M ⊙ F x.

Shapes: x, y ``(B, 2, H, W)`` float (real/imaginary in dim 1); mask ``(B, 1, H, W)`` or a shared
``(1, 1, H, W)`` of 0/1, whole columns (phase-encode lines) for Cartesian sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssibench.physics.base import MaskedFourier, check_mask

__all__ = ["SingleCoilMRI"]


@dataclass(frozen=True, eq=False)
class SingleCoilMRI(MaskedFourier):
    """Single-coil Cartesian MRI: A x = M ⊙ F x, with noisy measurement y = M ⊙ (F x + σ ε).

    Shapes: x, y ``(B, 2, H, W)`` float; mask ``(B, 1, H, W)`` or shared ``(1, 1, H, W)``.
    ``sigma`` is the standard deviation of each real and imaginary k-space component (the complex
    noise variance is 2σ²); noise is drawn on the full grid then masked, so unsampled k-space stays
    0. A, Aᴴ, A† and the closed-form ``prox_l2`` come from
    :class:`~ssibench.physics.base.MaskedFourier`.

    Example:
        >>> import torch
        >>> mask = torch.ones(1, 1, 8, 8)
        >>> physics = SingleCoilMRI(mask)
        >>> physics.A(torch.randn(3, 2, 8, 8)).shape
        torch.Size([3, 2, 8, 8])
    """

    def __post_init__(self) -> None:
        check_mask(self.mask)
