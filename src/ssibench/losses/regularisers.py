"""Network regularisers: total variation of the output, spectral norm of the network's Jacobian.

:class:`TVLoss` follows the loss contract. :class:`JacobianSpectralNorm` and
:class:`FNEJacobianSpectralNorm` do not (they need the input to require grad before the network is
applied), so they are ``nn.Module`` s called directly, as in the reference: typically to add a
hinge penalty such as relu(‖J‖ − 1 + ε)² that makes a denoiser non-expansive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.physics import Physics
from ssibench.rng import rand, randn

__all__ = ["FNEJacobianSpectralNorm", "JacobianSpectralNorm", "TVLoss"]

Reduction = Literal["max", "mean", "none"]


class TVLoss(Loss):
    """Quadratic total variation of the output.

        L = 2 · weight · (mean((x̂[i+1, j] − x̂[i, j])²) + mean((x̂[i, j+1] − x̂[i, j])²)),

    each mean over all forward differences of the batch (per sample: Σ(Δ_h x̂)²/(C(H−1)W) and
    Σ(Δ_w x̂)²/(CH(W−1)), then averaged over the batch). x̂ ``(B, C, H, W)``; returns a 0-dim
    tensor. Rudin, Osher, Fatemi, "Nonlinear total variation based noise removal algorithms",
    Physica D 1992 (no arXiv version); the squared (anisotropic, smooth) variant of the reference.

    Example:
        >>> x = torch.zeros(1, 2, 4, 4)
        >>> float(TVLoss()(x_net=x, y=x, physics=None, model=None))
        0.0
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
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
        """2 · weight · (mean of squared vertical + mean of squared horizontal differences)."""
        if x_net.ndim != 4:
            raise ValueError(f"TVLoss needs images (B, C, H, W); got shape {tuple(x_net.shape)}")
        vertical = (x_net[..., 1:, :] - x_net[..., :-1, :]).pow(2).mean()
        horizontal = (x_net[..., :, 1:] - x_net[..., :, :-1]).pow(2).mean()
        return 2 * self.weight * (vertical + horizontal)


class JacobianSpectralNorm(nn.Module):
    """Largest singular value ‖J‖₂ of J = ∂y/∂x for y = f(x), per sample, by power iteration.

    u ~ N(0, I) per sample (from the generator), normalised; each iteration computes J u by the
    double-backward trick (J u = ∂⟨Jᵀw, u⟩/∂w), then v = Jᵀ(J u), the Rayleigh quotient
    z = ⟨u, v⟩/‖u‖² and u ← v/‖v‖, stopping when every sample's z changes by less than
    ``tol`` (relative) or after ``max_iter`` iterations. Returns reduction(√z): the max or mean over
    the batch (0-dim) or ``(B,)``. Unless ``eval_mode`` the result is differentiable w.r.t. the
    network's parameters (only through the last v: at the top singular vector the derivative of the
    Rayleigh quotient does not depend on u's, so u is detached between iterations, saving memory).

    Call as ``jsn(y, x)`` with ``x.requires_grad`` set before computing y = f(x).
    Pesquet, Repetti, Terris, Wiaux, "Learning maximally monotone operators for image recovery",
    SIAM J. Imaging Sciences 2021, arXiv:2012.13247. Differences from the reference: u from the
    injected generator (global RNG there); early stopping works whatever the verbosity (B8: the
    reference stops early only when ``verbose``); u detached between iterations; no
    ``reduced_batchsize``.

    Example:
        >>> x = torch.randn(2, 3, requires_grad=True)
        >>> jsn = JacobianSpectralNorm(torch.Generator().manual_seed(0), max_iter=50)
        >>> round(float(jsn(3 * x, x)), 4)
        3.0
    """

    def __init__(
        self,
        generator: torch.Generator,
        max_iter: int = 10,
        tol: float = 1e-3,
        eval_mode: bool = False,
        reduction: Reduction = "max",
    ) -> None:
        super().__init__()
        if reduction not in ("max", "mean", "none"):
            raise ValueError(f"reduction must be 'max', 'mean' or 'none'; got {reduction!r}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be ≥ 1; got {max_iter}")
        self.generator = generator
        self.max_iter = max_iter
        self.tol = tol
        self.eval_mode = eval_mode
        self.reduction = reduction
        self.last_iterations = 0

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        """‖∂y/∂x‖₂ per sample, reduced (see the class docstring).  x, y: ``(B, ...)``."""
        if not x.requires_grad:
            raise ValueError("JacobianSpectralNorm needs x.requires_grad set before computing y")
        dims = tuple(range(1, x.ndim))
        u = randn(x.shape, self.generator, x.device).to(x.dtype)
        u = u / _norm(u, dims)
        dummy = torch.ones_like(y, requires_grad=True)
        (transposed,) = torch.autograd.grad(y, x, dummy, create_graph=True)  # Jᵀ dummy
        keep_graph = not self.eval_mode
        quotient = previous = None
        for iteration in range(1, self.max_iter + 1):
            (ju,) = torch.autograd.grad(
                transposed, dummy, u, retain_graph=True, create_graph=keep_graph
            )
            (v,) = torch.autograd.grad(y, x, ju, retain_graph=True, create_graph=keep_graph)
            quotient = (u * v).sum(dim=dims) / (u * u).sum(dim=dims)
            self.last_iterations = iteration
            if previous is not None:
                change = (quotient.detach() - previous).abs() / previous.abs().clamp_min(1e-30)
                if bool((change < self.tol).all()):  # one host sync per iteration
                    break
            previous = quotient.detach()
            u = (v / _norm(v, dims).clamp_min(1e-30)).detach()
        norm = quotient.clamp_min(0).sqrt()
        if self.eval_mode:
            norm = norm.detach()
        if self.reduction == "max":
            return norm.max()
        if self.reduction == "mean":
            return norm.mean()
        return norm


class FNEJacobianSpectralNorm(nn.Module):
    """Firm non-expansiveness check of a denoiser D: ‖J‖₂ of x ↦ 2 D(x) − x.

    D is firmly non-expansive iff 2D − I is non-expansive, i.e. this norm is ≤ 1 everywhere. The
    point x is ``inputs``, or with ``interpolate_with`` a random convex combination
    η · inputs + (1 − η) · interpolate_with, η ~ U(0, 1) per sample (from the generator). Both are
    detached; the caller's tensors are not modified. Shapes: ``(B, ...)`` in and out of D.
    Returns as :class:`JacobianSpectralNorm`. Pesquet, Repetti, Terris, Wiaux, SIAM J. Imaging
    Sciences 2021, arXiv:2012.13247. Differences from the reference: η from the injected generator;
    the caller's ``requires_grad`` flag is left unchanged (the reference sets it in place).

    Example:
        >>> fne = FNEJacobianSpectralNorm(torch.Generator().manual_seed(0), max_iter=50)
        >>> round(float(fne(torch.randn(2, 3), lambda v: 0.25 * v)), 4)
        0.5
    """

    def __init__(
        self,
        generator: torch.Generator,
        max_iter: int = 10,
        tol: float = 1e-3,
        eval_mode: bool = False,
        reduction: Reduction = "max",
    ) -> None:
        super().__init__()
        self.generator = generator
        self.spectral_norm = JacobianSpectralNorm(generator, max_iter, tol, eval_mode, reduction)

    def forward(
        self,
        inputs: Tensor,
        denoiser: Callable[[Tensor], Tensor],
        interpolate_with: Tensor | None = None,
    ) -> Tensor:
        """‖∂(2 D(x) − x)/∂x‖₂ at x = inputs or a random interpolation (see the class docstring)."""
        point = inputs.detach()
        if interpolate_with is not None:
            shape = (point.shape[0],) + (1,) * (point.ndim - 1)
            eta = rand(shape, self.generator, point.device).to(point.dtype)
            point = eta * point + (1 - eta) * interpolate_with.detach()
        point = point.clone().requires_grad_(True)
        return self.spectral_norm(2 * denoiser(point) - point, point)


def _norm(v: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Per-sample Euclidean norm, shaped to broadcast against ``v``."""
    return v.pow(2).sum(dim=dims, keepdim=True).sqrt()
