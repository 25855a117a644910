"""What every MRI operator shares: the interface, mask checks, masked noise and the masked-FFT core.

Operators are small frozen dataclasses holding tensors (mask, coil maps) and the noise level; they
are never mutated. ``with_mask(m)`` returns a new operator that shares every other tensor. They hold
no random generator: noise is drawn from a ``torch.Generator`` passed to :meth:`measure`.

Models reach data consistency through :func:`prox_l2`, which also serves a user's operator that
defines only ``A``, ``A_adjoint`` and ``with_mask`` (conjugate gradient on the normal equations).

Conventions: images ``x`` are ``(B, 2, H, W)`` float (real/imaginary in dim 1); masks are 0/1 and
carry a singleton channel dim, ``(B|1, 1, H, W)`` (or ``(B|1, 1, T, H, W)`` for time series). F is
the centred orthonormal 2-D DFT of :mod:`ssibench.fft`, over the last two axes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.rng import on_device

__all__ = [
    "MaskedFourier",
    "MaskedOperator",
    "Physics",
    "check_mask",
    "conjugate_gradient",
    "gaussian_noise",
    "prox_l2",
]

_Operator = TypeVar("_Operator", bound="MaskedOperator")


@runtime_checkable
class Physics(Protocol):
    """What models and losses may assume of an MRI operator (every built-in one offers it all).

    A user's operator needs only ``A``, ``A_adjoint`` and ``with_mask``: models reach data
    consistency through :func:`prox_l2`, which uses the operator's ``prox_l2`` when it has one and
    otherwise solves (γ AᴴA + I) u = γ Aᴴy + z by conjugate gradient. The built-in operators are
    also callable as in DeepInverse, ``y = physics(x)`` = ``measure(x, None)`` (noise from torch's
    global generator; the pipeline itself always passes a named generator to ``measure``).
    """

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


def check_mask(mask: Tensor, ndim: int = 4) -> None:
    """Raise unless ``mask`` is a floating tensor of ``ndim`` dims with a singleton dim 1.

    ``ndim = 4``: ``(B, 1, H, W)``; ``ndim = 5``: ``(B, 1, T, H, W)``. A ``(B, H, W)`` mask is
    refused rather than silently reinterpreted (the reference turns it into ``(1, B, H, W)``).

    Raises:
        TypeError: if ``mask`` is not a tensor.
        ValueError: on a wrong shape (expected and actual are printed) or a non-floating dtype.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim != ndim or mask.shape[1] != 1:
        expected = "(B, 1, H, W)" if ndim == 4 else "(B, 1, T, H, W)"
        kind = "mask" if ndim == 4 else "a time-resolved mask"
        raise ValueError(f"{kind} must have shape {expected}; got {tuple(mask.shape)}")
    if not mask.is_floating_point():
        raise ValueError(f"mask must be a floating tensor of 0/1 values; got dtype {mask.dtype}")


def gaussian_noise(
    shape: torch.Size, sigma: float, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """σ ε, ε ~ N(0, I) drawn on the generator's device, returned on ``like``'s device/dtype.

    Drawing on the generator's device (the CPU in simulation) makes a data set identical whatever
    device later trains on it.
    """
    device = generator.device if generator is not None else like.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return sigma * on_device(noise, like.device)


class MaskedOperator:
    """Noise, mask swap and device moves of an operator with fields ``mask`` and ``sigma``.

    A mixin for frozen dataclasses: :meth:`measure` returns y = A x + M ⊙ σ ε (noise drawn on the
    full grid, then masked, so unsampled k-space stays 0; nothing is drawn when σ = 0).
    """

    mask: Tensor
    sigma: float

    def A(self, x: Tensor) -> Tensor:  # pragma: no cover - every operator defines it
        """Forward operator, noiseless (defined by each operator)."""
        raise NotImplementedError

    def _noise_mask(self) -> Tensor:
        """The mask broadcast against y (``(B|1, 1, …)``; multicoil adds a coil dim)."""
        return self.mask

    def measure(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noisy measurement y = A x + M ⊙ σ ε, ε drawn from ``generator`` (skipped if σ = 0)."""
        y = self.A(x)
        if self.sigma == 0:
            return y
        return y + self._noise_mask() * gaussian_noise(y.shape, self.sigma, generator, y)

    def __call__(self, x: Tensor) -> Tensor:
        """Y = physics(x) = A x + M ⊙ σ ε, the noisy measurement (DeepInverse's ``physics(x)``).

        ε is drawn from torch's global generator on x's device (seed it with
        ``torch.manual_seed``): this is :meth:`measure` with ``generator=None``, for user code.
        The pipeline itself always calls :meth:`measure` with a named generator, so its data do not
        depend on the global random state.
        """
        return self.measure(x, None)

    def with_mask(self: _Operator, mask: Tensor) -> _Operator:
        """The same operator with ``mask``; no other tensor is copied."""
        return replace(self, mask=mask)

    def to(self: _Operator, device: torch.device | str) -> _Operator:
        """A copy with its mask on ``device``."""
        return replace(self, mask=self.mask.to(device))


@dataclass(frozen=True, eq=False)
class MaskedFourier(MaskedOperator):
    """A x = M ⊙ F x, applied to every leading index (single images or video frames alike).

    AᴴA = F⁻¹ diag(M²) F is diagonal in k-space, so the pseudo-inverse of a 0/1 mask is the adjoint
    (zero filling) and data consistency has a closed form. Subclasses fix the shapes: mask
    ``(B|1, 1, *S, H, W)`` against data ``(B, 2, *S, H, W)``; ``sigma`` is the standard deviation of
    each real and imaginary k-space component (the complex noise variance is 2σ²).
    """

    mask: Tensor
    sigma: float = 0.0

    def _m(self) -> Tensor:
        """The mask without its channel dim, to broadcast against complex data."""
        return self.mask[:, 0]

    def A(self, x: Tensor) -> Tensor:
        """Y = M ⊙ F x.  x: ``(B, 2, *S, H, W)`` → same shape."""
        return to_real(self._m() * fft2c(to_complex(x)))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """X = F⁻¹ (M ⊙ y) (zero-filled image).  y: ``(B, 2, *S, H, W)`` → same shape."""
        return to_real(ifft2c(self._m() * to_complex(y)))

    def A_dagger(self, y: Tensor) -> Tensor:
        """Pseudo-inverse; for a 0/1 mask it equals the adjoint (zero-filled reconstruction)."""
        return self.A_adjoint(y)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """Closed-form data consistency u = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖².

        The normal equations (γ AᴴA + I) u = γ Aᴴy + z are diagonal in k-space:
        u = F⁻¹[(γ M ⊙ y + F z) / (γ M² + 1)], so sampled points blend y and F z and unsampled
        points keep F z.  z, y: ``(B, 2, *S, H, W)``; γ: scalar (a 0-dim tensor may carry a
        gradient).
        """
        m = self._m()
        kz = fft2c(to_complex(z))
        ky = to_complex(y)
        return to_real(ifft2c((gamma * m * ky + kz) / (gamma * m * m + 1.0)))


class ConvergenceProbe:
    """Whether every CG sample has converged, read without making the host wait for the device.

    On the CPU the flag is read at once. On a device, each call queues a copy of "any sample
    still active" into host memory (``non_blocking``: pinned memory on CUDA) with an event, and
    answers from the last copy that has arrived, never blocking: CG stops one or two iterations
    after convergence instead of stalling the GPU once per iteration. The extra iterations change
    nothing: a converged sample is frozen (step sizes 0), so u, r and ρ stay bit for bit the same,
    and the result equals the CPU's.
    """

    def __init__(self, device: torch.device) -> None:
        self._on_host = device.type == "cpu"
        self._pending: tuple[Tensor, Any] | None = None

    def seen(self, active: Tensor) -> bool:
        """True once the host knows that no sample of ``active`` ``(B, 1, …)`` is active."""
        if self._on_host:
            return not bool(active.any())
        answer = False
        if self._pending is not None:
            flag, event = self._pending
            if event is None or event.query():  # arrived: a host read, no device sync
                answer = not bool(flag)
                self._pending = None
        if self._pending is None:
            flag = active.any().to("cpu", non_blocking=True)
            event = None
            if flag.device.type == "cpu" and active.device.type == "cuda":
                event = torch.cuda.Event()
                event.record()
            self._pending = (flag, event)
        return answer


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
    not depend on the other samples of the batch, nor on how many iterations run after it
    converged: on a GPU the stop is read without a host sync (:class:`ConvergenceProbe`), one or
    two iterations late, with the same result.

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
    converged = ConvergenceProbe(rhs.device)
    for _ in range(max_iter):
        active = rho > threshold
        if converged.seen(active):
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


#: Conjugate-gradient defaults of :func:`prox_l2` for an operator without its own ``prox_l2``.
PROX_CG_MAX_ITER = 50
PROX_CG_TOL = 1e-4


def prox_l2(
    physics: Any,
    z: Tensor,
    y: Tensor,
    gamma: Tensor | float,
    max_iter: int = PROX_CG_MAX_ITER,
    tol: float = PROX_CG_TOL,
) -> Tensor:
    """Data consistency u = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖² for any operator.

    Uses ``physics.prox_l2`` when the operator has one (every built-in operator: closed form or
    its own CG), so those results are unchanged. Otherwise only A and Aᴴ are needed: the normal
    equations (γ AᴴA + I) u = γ Aᴴy + z, Hermitian positive definite for γ ≥ 0, are solved by
    :func:`conjugate_gradient` on complex images from u₀ = z (``max_iter``, relative tolerance
    ``tol``); gradients flow through the unrolled iterations, to γ as well.

    Args:
        physics: the operator; needs ``A`` and ``A_adjoint`` (``prox_l2`` optional).
        z: the point to stay near, an image ``(B, 2, ...)``.
        y: measurements, shaped like ``physics.A(z)``.
        gamma: γ ≥ 0, a float or 0-dim tensor (MoDL's trainable step size).
        max_iter: CG iteration cap (fallback only).
        tol: CG relative residual tolerance (fallback only).

    Returns:
        u, shaped like ``z``.
    """
    own = getattr(physics, "prox_l2", None)
    if own is not None:
        return own(z, y, gamma)

    def normal(u: Tensor) -> Tensor:
        # (γ AᴴA + I) u, with A and Aᴴ on the real/imaginary pairs the operator works on.
        return to_complex(gamma * physics.A_adjoint(physics.A(to_real(u)))) + u

    rhs = to_complex(gamma * physics.A_adjoint(y) + z)
    return to_real(conjugate_gradient(normal, rhs, to_complex(z), max_iter=max_iter, tol=tol))
