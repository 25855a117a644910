"""Rigid geometric transforms: rotation about the image centre and circular shift.

Both act identically on the real and imaginary channels (and on every frame of a video), which is
the correct way to move a complex image: no phase modulation is introduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ssibench.rng import on_device
from ssibench.transforms.base import Transform, TransformParams, as_images

__all__ = ["Rotate", "Shift", "rotate", "shift"]


def rotate(
    x: Tensor, angles_deg: Tensor, mode: Literal["nearest", "bilinear"] = "nearest"
) -> Tensor:
    """Rotate each sample of ``x`` about the image centre by its own angle, zero padding outside.

    Positive angles turn counter-clockwise as displayed (row 0 at the top). The output pixel at
    centred coordinates (u, v) (column, row; pixel centres at ±(W−1)/2, ±(H−1)/2) samples the input
    at (u cos θ − v sin θ, u sin θ + v cos θ), as torchvision's ``rotate`` does.

    Args:
        x: ``(B, C, H, W)`` images or ``(B, C, T, H, W)`` videos (every frame turned alike).
        angles_deg: ``(B,)`` angles in degrees.
        mode: ``"nearest"`` (the reference) or ``"bilinear"``.

    Returns:
        The rotated tensor, shaped like ``x``.
    """
    images = as_images(x)
    batch, _, height, width = images.shape
    theta = torch.deg2rad(angles_deg.to(device=x.device, dtype=torch.float64))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Build the sampling grid in pixel units so non-square images rotate without shear.
    cols = torch.arange(width, device=x.device, dtype=torch.float64) - (width - 1) / 2
    rows = torch.arange(height, device=x.device, dtype=torch.float64) - (height - 1) / 2
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    src_u = cos[:, None, None] * u - sin[:, None, None] * v
    src_v = sin[:, None, None] * u + cos[:, None, None] * v
    grid = torch.stack((src_u / (width / 2), src_v / (height / 2)), dim=-1).to(x.dtype)
    out = F.grid_sample(
        images, grid.expand(batch, -1, -1, -1), mode=mode, padding_mode="zeros", align_corners=False
    )
    return out.view(x.shape)


def shift(x: Tensor, shifts: Tensor) -> Tensor:
    """Circularly shift each sample by its own (rows, cols) offset, as ``torch.roll`` does.

    out[b, ..., i, j] = x[b, ..., (i − s_b,0) mod H, (j − s_b,1) mod W]: exact, a permutation of the
    pixels, and undone by the opposite shift. Vectorised as two gathers.

    Args:
        x: ``(B, C, H, W)`` or ``(B, C, T, H, W)``.
        shifts: ``(B, 2)`` integer offsets (rows, cols).

    Returns:
        The shifted tensor, shaped like ``x``.
    """
    images = as_images(x)
    batch, channels, height, width = images.shape
    shifts = shifts.to(device=x.device, dtype=torch.long)
    rows = (torch.arange(height, device=x.device) - shifts[:, :1]) % height
    cols = (torch.arange(width, device=x.device) - shifts[:, 1:]) % width
    out = images.gather(2, rows[:, None, :, None].expand(batch, channels, height, width))
    out = out.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))
    return out.view(x.shape)


@dataclass(frozen=True)
class Rotate(Transform):
    """Random rotation by integer-degree angles, one angle per sample, nearest and zero corners.

    Angles are drawn uniformly from {multiples·k : 0 ≤ multiples·k < limits} and their negatives
    (the reference's candidate list, in which 0 appears twice; ``positive`` keeps only the
    non-negative ones). The defaults match the reference's ``Rotate()`` (integer degrees in [−359,
    359], nearest interpolation, zero corners); ``limits=15`` gives AugmentConsistencyLoss's default
    [−14, 14]; ``multiples=90, positive=True`` the exact rotation group of the square grid. The
    inverse rotates by −θ; it is exact only for multiples of 90° on square images (interpolation and
    cropped corners). Parameters: ``angles`` ``(B,)`` float64 degrees. Difference from the
    reference: one angle per sample instead of one for the whole batch (same expected loss, lower
    variance).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> Rotate()(torch.zeros(3, 2, 8, 8), g).shape
        torch.Size([3, 2, 8, 8])
    """

    limits: int = 360
    multiples: int = 1
    positive: bool = False
    mode: Literal["nearest", "bilinear"] = "nearest"

    def __post_init__(self) -> None:
        if self.limits < 1 or self.multiples < 1:
            raise ValueError(
                "Rotate: limits and multiples must be positive integers; got "
                f"limits={self.limits}, multiples={self.multiples}"
            )

    def angles(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """Draw ``(B,)`` angles in degrees (float64, on the generator's device)."""
        candidates = torch.arange(
            0, self.limits, self.multiples, dtype=torch.float64, device=generator.device
        )
        if not self.positive:
            candidates = torch.cat((candidates, -candidates))
        index = torch.randint(
            len(candidates), (batch_size,), generator=generator, device=generator.device
        )
        return candidates[index]

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """``{"angles": (B,) degrees}``."""
        return {"angles": on_device(self.angles(x.shape[0], generator), x.device)}

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Rotate sample b by ``angles[b]``."""
        return rotate(x, params["angles"], self.mode)

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """Rotate sample b by −``angles[b]``."""
        return rotate(x, -params["angles"], self.mode)


@dataclass(frozen=True)
class Shift(Transform):
    """Random circular shift, one (rows, cols) offset per sample; exact and exactly invertible.

    Offsets are uniform integers in [−⌊s H⌋, ⌊s H⌋ − 1] × [−⌊s W⌋, ⌊s W⌋ − 1] with s = ``shift_max``
    (the reference's range; 0 when ⌊s H⌋ = 0), rows drawn before columns. A circular shift is a
    phase ramp in k-space, so it commutes with Cartesian sampling F⁻¹ M F: this is why a shift-based
    augmentation is consistent with MRI physics. Parameters: ``shifts`` ``(B, 2)`` int64. Difference
    from the reference: one offset per sample instead of one for the whole batch.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> t = Shift(shift_max=0.25)
        >>> x = torch.randn(2, 2, 8, 8)
        >>> p = t.sample_params(x, g)
        >>> torch.equal(t.inverse(t.apply(x, p), p), x)
        True
    """

    shift_max: float = 1.0

    unitary = True

    def __post_init__(self) -> None:
        if not 0 <= self.shift_max <= 1:
            raise ValueError(f"Shift: shift_max must be in [0, 1]; got {self.shift_max}")

    def _offsets(self, size: int, batch_size: int, generator: torch.Generator) -> Tensor:
        limit = int(self.shift_max * size)
        if limit == 0:
            return torch.zeros(batch_size, dtype=torch.long, device=generator.device)
        return torch.randint(
            -limit, limit, (batch_size,), generator=generator, device=generator.device
        )

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """``{"shifts": (B, 2) int64 (rows, cols)}``."""
        rows = self._offsets(x.shape[-2], x.shape[0], generator)
        cols = self._offsets(x.shape[-1], x.shape[0], generator)
        return {"shifts": on_device(torch.stack((rows, cols), dim=1), x.device)}

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Roll sample b by ``shifts[b]``."""
        return shift(x, params["shifts"])

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """Roll sample b by −``shifts[b]``."""
        return shift(x, -params["shifts"])
