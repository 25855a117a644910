"""Time-resolved single-coil MRI: dynamic (a video) and sequential (a static image, many frames).

Both operators acquire T frames of Cartesian single-coil k-space, frame t through its own mask Mₜ:

* :class:`DynamicMRI`: the object moves, x is a video; yₜ = Mₜ ⊙ F xₜ.
* :class:`SequentialMRI`: the object is static, x is one image seen T times; yₜ = Mₜ ⊙ F x. With
  disjoint line sets (every phase-encode line in one frame only) the frames together are one
  ordinary acquisition with mask Σₜ Mₜ, split in time: what Phase2Phase and Artifact2Artifact
  exploit.

Shapes: video x and every y ``(B, 2, T, H, W)`` float, real/imaginary in dim 1; static
x ``(B, 2, H, W)``; masks ``(B, 1, T, H, W)`` or shared ``(1, 1, T, H, W)`` of 0/1. F is the centred
orthonormal 2-D DFT over (H, W), applied frame by frame. Operators are frozen dataclasses that are
never mutated and hold no random generator (noise comes from the generator given to ``measure``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.physics.base import MaskedFourier, MaskedOperator, check_mask
from ssibench.physics.cartesian import SingleCoilMRI

__all__ = [
    "DynamicMRI",
    "SequentialMRI",
    "check_time_mask",
    "fold_time",
    "select_frames",
    "time_average",
    "unfold_time",
]


def check_time_mask(mask: Tensor) -> None:
    """Raise unless ``mask`` is a floating ``(B, 1, T, H, W)`` tensor (see :func:`check_mask`)."""
    check_mask(mask, ndim=5)


def fold_time(x: Tensor) -> Tensor:
    """Fold frames into the batch: ``(B, C, T, H, W)`` → ``(B·T, C, H, W)``, sample-major."""
    batch, channels, frames, height, width = x.shape
    return x.movedim(2, 1).reshape(batch * frames, channels, height, width)


def unfold_time(x: Tensor, batch_size: int) -> Tensor:
    """Inverse of :func:`fold_time`: ``(B·T, C, H, W)`` → ``(B, C, T, H, W)``."""
    folded, channels, height, width = x.shape
    return x.reshape(batch_size, folded // batch_size, channels, height, width).movedim(1, 2)


def select_frames(data: Tensor, frames: Tensor) -> Tensor:
    """Pick frames per sample: out[b, :, j] = data[b, :, frames[b, j]].

    Args:
        data: ``(B, C, T, H, W)``, or ``(1, C, T, H, W)`` shared by every sample (a shared mask).
        frames: ``(B, T')`` int64 frame indices, one row per sample.

    Returns:
        ``(B, C, T', H, W)``.
    """
    batch, count = frames.shape
    data = data.expand(batch, *data.shape[1:])
    index = frames.to(data.device)[:, None, :, None, None]
    return data.gather(2, index.expand(batch, data.shape[1], count, *data.shape[-2:]))


def time_average(y: Tensor, mask: Tensor) -> Tensor:
    """Average k-space over the frames that sampled each point: ȳ = Σₜ Mₜ yₜ / Σₜ Mₜ (0 if never).

    For disjoint frame masks this is the plain sum Σₜ yₜ; with repeated samples it averages them
    (and their noise). Unlike the reference, which counts the non-zero entries of y, the count comes
    from the mask, so a sampled entry that happens to be 0 still counts.

    Args:
        y: ``(B, 2, T, H, W)`` k-space.
        mask: ``(B|1, 1, T, H, W)`` 0/1.

    Returns:
        ``(B, 2, H, W)`` k-space.
    """
    count = mask.sum(dim=2)
    total = (mask * y).sum(dim=2)
    return torch.where(count > 0, total / torch.where(count > 0, count, 1.0), 0.0)


def _union(mask: Tensor) -> Tensor:
    """clip(Σₜ Mₜ, 0, 1): every k-space point sampled in at least one frame, ``(B, 1, H, W)``."""
    return mask.sum(dim=2).clamp(max=1.0)


@dataclass(frozen=True, eq=False)
class DynamicMRI(MaskedFourier):
    """Dynamic single-coil MRI, frame by frame: yₜ = Mₜ ⊙ (F xₜ + σ εₜ), t = 0 … T−1.

    A x = M ⊙ F x and Aᴴ y = F⁻¹(M ⊙ y) act on each frame independently (F over the last two axes),
    so AᴴA = F⁻¹ diag(M²) F is diagonal in k-space, frame by frame, and the pseudo-inverse of a 0/1
    mask is the adjoint (zero filling). Shapes: x, y ``(B, 2, T, H, W)``; mask
    ``(B|1, 1, T, H, W)``; ``sigma`` is the standard deviation of each real and imaginary k-space
    component. A, Aᴴ, A† and the closed-form ``prox_l2`` are those of
    :class:`~ssibench.physics.base.MaskedFourier`, frame by frame.

    Example:
        >>> physics = DynamicMRI(torch.ones(1, 1, 4, 8, 8))
        >>> physics.A(torch.randn(3, 2, 4, 8, 8)).shape
        torch.Size([3, 2, 4, 8, 8])
        >>> physics.to_static().mask.shape
        torch.Size([1, 1, 8, 8])
    """

    def __post_init__(self) -> None:
        check_time_mask(self.mask)

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return self.mask.shape[2]

    def to_static(self) -> SingleCoilMRI:
        """Single-coil operator with the union mask clip(Σₜ Mₜ, 0, 1) ``(B|1, 1, H, W)``."""
        return SingleCoilMRI(_union(self.mask), sigma=self.sigma)

    def fold_frames(self, batch_size: int) -> SingleCoilMRI:
        """The same operator on frames folded into the batch: mask ``(B·T, 1, H, W)``.

        A(x) equals ``unfold_time(fold_frames(B).A(fold_time(x)), B)``; a shared mask is expanded
        to ``batch_size`` first, so frame t of every sample keeps its own mask.
        """
        mask = self.mask.expand(batch_size, *self.mask.shape[1:])
        return SingleCoilMRI(fold_time(mask), sigma=self.sigma)


@dataclass(frozen=True, eq=False)
class SequentialMRI(MaskedOperator):
    """A static image acquired as T frames: yₜ = Mₜ ⊙ (F x + σ εₜ), t = 0 … T−1.

    A x = (Mₜ ⊙ F x)ₜ repeats the static image over the frames. Its true adjoint sums them,
    Aᴴ y = F⁻¹(Σₜ Mₜ ⊙ yₜ), so AᴴA = F⁻¹ diag(Σₜ Mₜ²) F is diagonal in k-space with the number of
    times each point was sampled. The reference's default "adjoint" (DeepInverse ``SequentialMRI``,
    ``keep_time_dim=False``) instead averages over the frames that sampled each point — that is
    the pseudo-inverse A† y = F⁻¹(Σₜ Mₜ yₜ / Σₜ Mₜ), offered here as :meth:`A_dagger`. The two agree
    when the frames sample disjoint points (the ``sequential`` scenario) and differ by the sample
    counts otherwise; models and losses that need a true adjoint (MoDL's start, adjointness) use Aᴴ.

    Shapes: x ``(B, 2, H, W)``; y ``(B, 2, T, H, W)``; mask ``(B|1, 1, T, H, W)``.

    Example:
        >>> physics = SequentialMRI(torch.ones(1, 1, 4, 8, 8))
        >>> y = physics.A(torch.randn(3, 2, 8, 8))
        >>> y.shape, physics.A_adjoint(y).shape
        (torch.Size([3, 2, 4, 8, 8]), torch.Size([3, 2, 8, 8]))
    """

    mask: Tensor
    sigma: float = 0.0

    def __post_init__(self) -> None:
        check_time_mask(self.mask)

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return self.mask.shape[2]

    def _m(self) -> Tensor:
        """The mask as ``(B, T, H, W)``."""
        return self.mask[:, 0]

    def A(self, x: Tensor) -> Tensor:
        """Yₜ = Mₜ ⊙ F x.  x: ``(B, 2, H, W)`` → ``(B, 2, T, H, W)``."""
        return to_real(self._m() * fft2c(to_complex(x)).unsqueeze(1))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """X = F⁻¹(Σₜ Mₜ ⊙ yₜ), the true adjoint.  y: ``(B, 2, T, H, W)`` → ``(B, 2, H, W)``."""
        return to_real(ifft2c((self._m() * to_complex(y)).sum(dim=1)))

    def A_dagger(self, y: Tensor) -> Tensor:
        """Least-squares x = F⁻¹(Σₜ Mₜ yₜ / Σₜ Mₜ) (0 where never sampled); the reference's adjoint.

        Solves AᴴA x = Aᴴy with minimum norm.  y: ``(B, 2, T, H, W)`` → ``(B, 2, H, W)``.
        """
        return to_real(ifft2c(to_complex(time_average(y, self.mask))))

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """Closed-form u = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖².

        (γ AᴴA + I) u = γ Aᴴy + z is diagonal in k-space:
        u = F⁻¹[(γ Σₜ Mₜ ⊙ yₜ + F z) / (γ Σₜ Mₜ² + 1)].
        z: ``(B, 2, H, W)``; y: ``(B, 2, T, H, W)``; γ: scalar or 0-dim tensor.
        """
        m = self._m()
        numerator = gamma * (m * to_complex(y)).sum(dim=1) + fft2c(to_complex(z))
        return to_real(ifft2c(numerator / (gamma * (m * m).sum(dim=1) + 1.0)))

    def to_static(self) -> SingleCoilMRI:
        """Single-coil operator with the union mask clip(Σₜ Mₜ, 0, 1) ``(B|1, 1, H, W)``.

        With disjoint frames, ``to_static()`` applied to ``time_average(y, mask)`` is the same
        acquisition as this operator applied to y: same Aᴴ, same data-consistency step.
        """
        return SingleCoilMRI(_union(self.mask), sigma=self.sigma)
