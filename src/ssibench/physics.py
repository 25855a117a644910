"""MRI forward operators: single-coil and multicoil Cartesian MRI with additive Gaussian noise.

Operators are small frozen dataclasses holding tensors (mask, coil maps) and the noise level; they
are never mutated. ``with_mask(m)`` returns a new operator that shares every other tensor. They hold
no random generator: noise is drawn from a ``torch.Generator`` passed to :meth:`measure`.

Conventions (DESIGN.md): images ``x`` are ``(B, 2, H, W)`` float (real/imaginary in dim 1);
single-coil k-space ``(B, 2, H, W)``; multicoil k-space ``(B, 2, N, H, W)``; masks ``(B, 1, H, W)``
or a shared ``(1, 1, H, W)`` of 0/1, whole columns (phase-encode lines) for Cartesian sampling. F is
the centred orthonormal 2-D DFT of :mod:`ssibench.fft`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ssibench.fft import fft2c, ifft2c, to_complex, to_real

__all__ = [
    "MultiCoilMRI",
    "Physics",
    "SingleCoilMRI",
    "birdcage_maps",
    "check_mask",
    "conjugate_gradient",
]

#: Birdcage coil-centre radius relative to the half field of view (sigpy's default, as SSIBench).
BIRDCAGE_RADIUS = 1.5


@runtime_checkable
class Physics(Protocol):
    """What models and losses may assume of an MRI operator."""

    mask: Tensor
    sigma: float

    def A(self, x: Tensor) -> Tensor:
        """Forward operator, noiseless."""

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Adjoint operator."""

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖²."""

    def measure(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noisy measurement A x + M ⊙ σ ε."""

    def with_mask(self, mask: Tensor) -> Physics:
        """The same operator with another mask."""


def check_mask(mask: Tensor) -> None:
    """Raise ``ValueError`` unless ``mask`` is a floating ``(B, 1, H, W)`` tensor.

    A ``(B, H, W)`` mask is refused rather than silently reinterpreted (the reference turns it into
    ``(1, B, H, W)``).
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (B, 1, H, W); got {tuple(mask.shape)}")
    if not mask.is_floating_point():
        raise ValueError(f"mask must be a floating tensor of 0/1 values; got dtype {mask.dtype}")


def _gaussian_noise(
    shape: torch.Size, sigma: float, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """σ ε, ε ~ N(0, I) drawn on the generator's device, returned on ``like``'s device/dtype."""
    device = generator.device if generator is not None else like.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return sigma * noise.to(like.device)


@dataclass(frozen=True, eq=False)
class SingleCoilMRI:
    """Single-coil Cartesian MRI: A x = M ⊙ F x, with noisy measurement y = M ⊙ (F x + σ ε).

    Shapes: x, y ``(B, 2, H, W)`` float; mask ``(B, 1, H, W)`` or shared ``(1, 1, H, W)``.
    ``sigma`` is the standard deviation of each real and imaginary k-space component (the complex
    noise variance is 2σ²); noise is drawn on the full grid then masked, so unsampled k-space stays
    0.

    Example:
        >>> mask = torch.ones(1, 1, 8, 8)
        >>> physics = SingleCoilMRI(mask)
        >>> physics.A(torch.randn(3, 2, 8, 8)).shape
        torch.Size([3, 2, 8, 8])
    """

    mask: Tensor
    sigma: float = 0.0

    def __post_init__(self) -> None:
        check_mask(self.mask)

    def _m(self) -> Tensor:
        """The mask as ``(B, H, W)``, to broadcast against complex single-coil data."""
        return self.mask[:, 0]

    def A(self, x: Tensor) -> Tensor:
        """Y = M ⊙ F x.  x: ``(B, 2, H, W)`` → ``(B, 2, H, W)``."""
        return to_real(self._m() * fft2c(to_complex(x)))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """X = F⁻¹ (M ⊙ y) (zero-filled image).  y: ``(B, 2, H, W)`` → ``(B, 2, H, W)``."""
        return to_real(ifft2c(self._m() * to_complex(y)))

    def A_dagger(self, y: Tensor) -> Tensor:
        """Pseudo-inverse; for a 0/1 mask it equals the adjoint (zero-filled reconstruction)."""
        return self.A_adjoint(y)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """Closed-form data consistency u = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖².

        The normal equations (γ AᴴA + I) u = γ Aᴴy + z are diagonal in k-space:
        u = F⁻¹[(γ M ⊙ y + F z) / (γ M² + 1)], so sampled points blend y and F z and unsampled
        points keep F z.  z, y: ``(B, 2, H, W)``; γ: scalar (a 0-dim tensor may carry a gradient).
        """
        m = self._m()
        kz = fft2c(to_complex(z))
        ky = to_complex(y)
        return to_real(ifft2c((gamma * m * ky + kz) / (gamma * m * m + 1.0)))

    def measure(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noisy measurement y = M ⊙ (F x + σ ε), ε drawn from ``generator`` (skipped if σ = 0)."""
        y = self.A(x)
        if self.sigma == 0:
            return y
        return y + self.mask * _gaussian_noise(y.shape, self.sigma, generator, y)

    def with_mask(self, mask: Tensor) -> SingleCoilMRI:
        """The same operator with ``mask``; no tensor is copied."""
        return replace(self, mask=mask)

    def to(self, device: torch.device | str) -> SingleCoilMRI:
        """A copy with its tensors on ``device``."""
        return replace(self, mask=self.mask.to(device))


@dataclass(frozen=True, eq=False)
class MultiCoilMRI:
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

    def measure(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noisy measurement yₙ = M ⊙ (F(Sₙ x) + σ εₙ) (noise skipped if σ = 0)."""
        y = self.A(x)
        if self.sigma == 0:
            return y
        return y + self.mask.unsqueeze(1) * _gaussian_noise(y.shape, self.sigma, generator, y)

    def with_mask(self, mask: Tensor) -> MultiCoilMRI:
        """The same operator with ``mask``; coil maps are shared, not copied."""
        return replace(self, mask=mask)

    def to(self, device: torch.device | str) -> MultiCoilMRI:
        """A copy with its tensors on ``device``."""
        return replace(self, mask=self.mask.to(device), coil_maps=self.coil_maps.to(device))


def conjugate_gradient(
    operator: Callable[[Tensor], Tensor],
    rhs: Tensor,
    initial: Tensor,
    max_iter: int = 50,
    tol: float = 1e-4,
) -> Tensor:
    """Solve H u = b for a Hermitian positive-definite H by conjugate gradient, batch-parallel.

    Per sample b (dim 0): r = b − H u, p = r; repeat α = ⟨r,r⟩/⟨p,Hp⟩, u += α p, r −= α Hp,
    p = r + (⟨r',r'⟩/⟨r,r⟩) p until ‖r‖ ≤ tol·‖b‖ for every sample or ``max_iter`` is reached.
    A sample that has converged is frozen (its step size is set to 0), so each sample's result does
    not depend on the other samples of the batch.

    Args:
        operator: u ↦ H u on complex tensors shaped like ``rhs``.
        rhs: b, complex ``(B, ...)``.
        initial: u₀, complex, shaped like ``rhs``.
        max_iter: iteration cap.
        tol: relative residual tolerance ‖b − H u‖ ≤ tol ‖b‖.

    Returns:
        u, shaped like ``rhs``.
    """
    dims = tuple(range(1, rhs.ndim))

    def inner(a: Tensor, b: Tensor) -> Tensor:
        return (a.conj() * b).real.sum(dim=dims, keepdim=True)

    threshold = (tol**2) * inner(rhs, rhs).clamp_min(torch.finfo(rhs.real.dtype).tiny)
    u = initial
    r = rhs - operator(u)
    p = r
    rho = inner(r, r)
    for _ in range(max_iter):
        active = rho > threshold
        if not bool(active.any()):  # one host sync per iteration; CG here needs only a few
            break
        hp = operator(p)
        alpha = torch.where(active, rho / inner(p, hp).clamp_min(1e-30), torch.zeros_like(rho))
        u = u + alpha * p
        r = r - alpha * hp
        rho_new = inner(r, r)
        beta = torch.where(active, rho_new / rho.clamp_min(1e-30), torch.zeros_like(rho))
        p = r + beta * p
        rho = torch.where(active, rho_new, rho)
    return u


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
