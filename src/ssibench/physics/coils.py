"""Multicoil Cartesian MRI and simulated coil sensitivities.

yₙ = M ⊙ F(Sₙ x) for coils n = 1 … N, with birdcage sensitivities Sₙ normalised so that
Σₙ |Sₙ|² = 1. Shapes: x ``(B, 2, H, W)``; y ``(B, 2, N, H, W)`` float; mask ``(B|1, 1, H, W)``;
coil maps ``(N, H, W)`` or ``(B|1, N, H, W)`` complex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.physics.base import MaskedOperator, check_mask, conjugate_gradient

__all__ = ["BIRDCAGE_RADIUS", "MultiCoilMRI", "birdcage_maps"]

#: Birdcage coil-centre radius relative to the half field of view (sigpy's default, as SSIBench).
BIRDCAGE_RADIUS = 1.5


@dataclass(frozen=True, eq=False)
class MultiCoilMRI(MaskedOperator):
    """Multicoil Cartesian MRI: yₙ = M ⊙ F(Sₙ x), Aᴴy = Σₙ conj(Sₙ) F⁻¹(M ⊙ yₙ).

    Shapes: x ``(B, 2, H, W)``; y ``(B, 2, N, H, W)`` float; mask ``(B|1, 1, H, W)``;
    coil_maps ``(N, H, W)`` or ``(B|1, N, H, W)`` complex. With maps normalised so that Σₙ|Sₙ|² = 1
    (see :func:`birdcage_maps`) and a full mask, AᴴA = I. Data consistency has no closed form and is
    solved by conjugate gradient (``cg_max_iter``, relative tolerance ``cg_tol``).

    Example:
        >>> physics = MultiCoilMRI(torch.ones(1, 1, 8, 8), birdcage_maps(4, 8, 8))
        >>> physics.A(torch.randn(3, 2, 8, 8)).shape
        torch.Size([3, 2, 4, 8, 8])
    """

    mask: Tensor
    coil_maps: Tensor
    sigma: float = 0.0
    cg_max_iter: int = 50
    cg_tol: float = 1e-4

    def __post_init__(self) -> None:
        check_mask(self.mask)
        if not self.coil_maps.is_complex() or self.coil_maps.ndim not in (3, 4):
            raise ValueError(
                "coil_maps must be complex with shape (N, H, W) or (B, N, H, W); got "
                f"{self.coil_maps.dtype} {tuple(self.coil_maps.shape)}"
            )
        if self.coil_maps.shape[-2:] != self.mask.shape[-2:]:
            raise ValueError(
                f"coil maps {tuple(self.coil_maps.shape)} and mask {tuple(self.mask.shape)} "
                "differ in their spatial size (H, W)"
            )

    @property
    def n_coils(self) -> int:
        """Number of receive coils N."""
        return self.coil_maps.shape[-3]

    def A(self, x: Tensor) -> Tensor:
        """yₙ = M ⊙ F(Sₙ x).  x: ``(B, 2, H, W)`` → ``(B, 2, N, H, W)``."""
        coil_images = self.coil_maps * to_complex(x).unsqueeze(1)
        return to_real(self.mask * fft2c(coil_images))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """X = Σₙ conj(Sₙ) F⁻¹(M ⊙ yₙ).  y: ``(B, 2, N, H, W)`` → ``(B, 2, H, W)``."""
        coil_images = ifft2c(self.mask * to_complex(y))
        return to_real((self.coil_maps.conj() * coil_images).sum(dim=1))

    def normal(self, x: Tensor) -> Tensor:
        """AᴴA x on complex images ``(B, H, W)`` (the operator CG inverts)."""
        coil_k = self.mask * fft2c(self.coil_maps * x.unsqueeze(1))
        return (self.coil_maps.conj() * ifft2c(coil_k)).sum(dim=1)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """U = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖² by conjugate gradient, started at u₀ = z.

        Solves (γ AᴴA + I) u = γ Aᴴy + z, a Hermitian positive-definite system whose condition
        number is at most 1 + γ (normalised coil maps), so a few iterations suffice. Gradients flow
        through the unrolled iterations.  z: ``(B, 2, H, W)``; y: ``(B, 2, N, H, W)``.
        """
        rhs = to_complex(gamma * self.A_adjoint(y) + z)
        solution = conjugate_gradient(
            lambda u: gamma * self.normal(u) + u,
            rhs,
            to_complex(z),
            max_iter=self.cg_max_iter,
            tol=self.cg_tol,
        )
        return to_real(solution)

    def A_dagger(self, y: Tensor) -> Tensor:
        """Least-squares solution of AᴴA x = Aᴴy by conjugate gradient from x₀ = 0."""
        rhs = to_complex(self.A_adjoint(y))
        return to_real(
            conjugate_gradient(
                self.normal, rhs, torch.zeros_like(rhs), self.cg_max_iter, self.cg_tol
            )
        )

    def _noise_mask(self) -> Tensor:
        """The mask ``(B|1, 1, 1, H, W)``, broadcast against y ``(B, 2, N, H, W)``."""
        return self.mask.unsqueeze(1)

    def to(self, device: torch.device | str) -> MultiCoilMRI:
        """A copy with its tensors on ``device``."""
        return replace(self, mask=self.mask.to(device), coil_maps=self.coil_maps.to(device))


def birdcage_maps(n_coils: int, height: int, width: int, radius: float = BIRDCAGE_RADIUS) -> Tensor:
    """Simulated birdcage coil sensitivities, normalised so that Σₙ |Sₙ|² = 1 at every pixel.

    Coil c sits at (cx, cy) = r (cos 2πc/N, sin 2πc/N) with phase φ_c = −2πc/N; on the grid
    xc = (j − W/2)/(W/2) − cx, yc = (i − H/2)/(H/2) − cy, ρ = √(xc² + yc²):
    Sₙ = ρ⁻¹ exp(i (atan2(xc, −yc) + φ_c)), then every coil is divided by the root-sum-of-squares
    over coils. Matches sigpy's ``birdcage_maps`` as used by SSIBench's
    ``MultiCoilMRI(coil_maps=N)``.

    Returns:
        ``(N, H, W)`` complex64.
    """
    if n_coils < 1:
        raise ValueError(f"n_coils must be at least 1; got {n_coils}")
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    angles = 2 * math.pi * torch.arange(n_coils, dtype=torch.float64) / n_coils
    cx = (radius * torch.cos(angles))[:, None, None]
    cy = (radius * torch.sin(angles))[:, None, None]
    xc = ((cols - width / 2) / (width / 2))[None, None, :] - cx
    yc = ((rows - height / 2) / (height / 2))[None, :, None] - cy
    rho = torch.sqrt(xc**2 + yc**2)
    phase = torch.atan2(xc, -yc) - angles[:, None, None]
    maps = torch.polar(1.0 / rho, phase)
    rss = torch.sqrt((maps.abs() ** 2).sum(dim=0, keepdim=True))
    return (maps / rss).to(torch.complex64)
