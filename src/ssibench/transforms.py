"""Random image transforms for equivariant losses, on 2-channel complex images ``(B, 2, H, W)``.

Geometric transforms act identically on the real and imaginary channels, which is the correct way to
warp a complex image (no phase modulation is introduced). Randomness comes only from the
``torch.Generator`` passed to ``__call__``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

__all__ = ["Rotate", "rotate"]


def rotate(x: Tensor, angles_deg: Tensor, mode: str = "nearest") -> Tensor:
    """Rotate each image of ``x`` about its centre by its own angle, zero padding outside.

    Positive angles turn counter-clockwise as displayed (row 0 at the top). The output pixel at
    centred coordinates (u, v) (column, row; pixel centres at ±(W−1)/2, ±(H−1)/2) samples the input at
    (u cos θ − v sin θ, u sin θ + v cos θ), as torchvision's ``rotate`` does.

    Args:
        x: ``(B, C, H, W)`` images.
        angles_deg: ``(B,)`` angles in degrees.
        mode: ``"nearest"`` (the reference) or ``"bilinear"``.

    Returns:
        ``(B, C, H, W)`` rotated images.
    """
    batch, _, height, width = x.shape
    theta = torch.deg2rad(angles_deg.to(device=x.device, dtype=torch.float64))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Build the sampling grid in pixel units so non-square images rotate without shear.
    cols = torch.arange(width, device=x.device, dtype=torch.float64) - (width - 1) / 2
    rows = torch.arange(height, device=x.device, dtype=torch.float64) - (height - 1) / 2
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    src_u = cos[:, None, None] * u - sin[:, None, None] * v
    src_v = sin[:, None, None] * u + cos[:, None, None] * v
    grid = torch.stack((src_u / (width / 2), src_v / (height / 2)), dim=-1).to(x.dtype)
    return F.grid_sample(x, grid.expand(batch, -1, -1, -1), mode=mode, padding_mode="zeros",
                         align_corners=False)


@dataclass(frozen=True)
class Rotate:
    """Random rotation by integer-degree angles, one angle per sample.

    Angles are drawn uniformly from {multiples·k} ∩ (−limits, limits) (both signs; ``positive`` keeps
    only non-negative angles). The defaults match the reference's ``Rotate()`` (integer degrees in
    [−359, 359], nearest interpolation, zero corners); ``multiples=90, positive=True`` gives the exact
    rotation group of the square grid. Difference from the reference: the reference draws one angle for
    the whole batch; we draw one per sample (same expected loss, lower variance).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> Rotate()(torch.zeros(3, 2, 8, 8), g).shape
        torch.Size([3, 2, 8, 8])
    """

    limits: int = 360
    multiples: int = 1
    positive: bool = False
    mode: str = "nearest"

    def angles(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """Draw ``(B,)`` angles in degrees."""
        candidates = torch.arange(0, self.limits, self.multiples, dtype=torch.float64)
        if not self.positive:
            candidates = torch.cat((candidates, -candidates))
        index = torch.randint(
            len(candidates), (batch_size,), generator=generator, device=generator.device
        )
        return candidates[index.cpu()]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Rotate each image of ``x`` ``(B, C, H, W)`` by a random angle."""
        return rotate(x, self.angles(x.shape[0], generator), self.mode)


