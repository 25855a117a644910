"""Centred orthonormal 2-D FFT and the real ⇄ complex conversions at the tensor boundary.

Public tensors hold complex data as a real/imaginary pair in dim 1, e.g. images ``(B, 2, H, W)`` and
multicoil k-space ``(B, 2, N, H, W)``. Internally the math runs on complex views ``(B, H, W)`` /
``(B, N, H, W)``; :func:`to_complex` and :func:`to_real` convert at the boundary.

The transform is F = fftshift ∘ FFT_ortho ∘ ifftshift over the last two axes, so the DC coefficient
sits at index (H//2, W//2) and F is unitary: ‖F x‖ = ‖x‖, F⁻¹ = Fᴴ.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fft2c", "ifft2c", "to_complex", "to_real"]

_SPATIAL = (-2, -1)


def fft2c(x: Tensor) -> Tensor:
    """Centred orthonormal 2-D DFT over the last two axes of a complex tensor ``(..., H, W)``."""
    x = torch.fft.ifftshift(x, dim=_SPATIAL)
    x = torch.fft.fft2(x, dim=_SPATIAL, norm="ortho")
    return torch.fft.fftshift(x, dim=_SPATIAL)


def ifft2c(k: Tensor) -> Tensor:
    """Centred orthonormal inverse 2-D DFT over the last two axes of a complex ``(..., H, W)``."""
    k = torch.fft.ifftshift(k, dim=_SPATIAL)
    k = torch.fft.ifft2(k, dim=_SPATIAL, norm="ortho")
    return torch.fft.fftshift(k, dim=_SPATIAL)


def to_complex(x: Tensor) -> Tensor:
    """Real pair in dim 1 → complex: ``(B, 2, *rest)`` float → ``(B, *rest)`` complex.

    Raises:
        ValueError: if dim 1 does not have size 2.
    """
    if x.ndim < 2 or x.shape[1] != 2:
        raise ValueError(
            f"expected a real/imaginary pair in dim 1, shape (B, 2, ...); got {tuple(x.shape)}"
        )
    if x.numel() == 0:  # view_as_complex needs a stride-1 pair, which an empty tensor lacks
        return torch.complex(x[:, 0], x[:, 1])
    return torch.view_as_complex(x.movedim(1, -1).contiguous())


def to_real(z: Tensor) -> Tensor:
    """Complex → real pair in dim 1: ``(B, *rest)`` complex → ``(B, 2, *rest)`` float (a view)."""
    return torch.view_as_real(z).movedim(-1, 1)
