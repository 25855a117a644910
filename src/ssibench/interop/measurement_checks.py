"""What the rows of an imported DeepInverse measurement file must satisfy to enter a store.

:func:`~ssibench.interop.measurements.import_measurements` copies a file it did not write, so each
chunk of rows is checked before it is written:

- :func:`one_channel_mask`: a DeepInverse mask ``(b, 1|2, H, W)`` holds only 0 and 1, and both
  channels (real, imaginary) agree: ssibench masks k-space points;
- :func:`check_rows`: x and y are finite, and y = 0 exactly wherever M = 0, since DeepInverse's
  ``MRI`` and ``MultiCoilMRI`` multiply both A x and the noise by the mask;
- :class:`NoiseCheck`: at the sampled points the residual r = y − A x (ssibench's operator, the
  same M ⊙ F x) must be the declared noise. Per row, over its k sampled real components,
  σ̂² = ‖r‖² / k has mean σ² and standard deviation σ² √(2/k) (a χ²ₖ / k law); a row is refused
  when |σ̂² − σ²| exceeds :data:`NOISE_CHECK_SDS` of them plus the float32 round-off of
  recomputing A x, (:data:`ROUNDOFF` · rms y)². A mask, coil maps, noise level or images that do
  not belong to the measurements fail it: a mask wider than the acquisition leaves y = 0 where it
  says sampled, so r = −F x there.

Each refusal is one :class:`~ssibench.errors.DataFileError` naming the file, the split, the rows
and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ssibench.errors import DataFileError

__all__ = [
    "LISTED_ROWS",
    "NOISE_CHECK_SDS",
    "REGENERATE",
    "ROUNDOFF",
    "NoiseCheck",
    "check_rows",
    "one_channel_mask",
]

#: Half-width of the noise check in standard deviations of σ̂²: a genuine row is refused with a
#: probability under 1e-6 even when its mask samples only 96 real components.
NOISE_CHECK_SDS = 6.0
#: Relative float32 round-off of y − A x: two FFTs of the same data differ by ~1e-7 of |y|.
ROUNDOFF = 1e-5
#: How many bad rows a message lists.
LISTED_ROWS = 10
#: The fix of a file that is not what ``generate_dataset`` writes.
REGENERATE = "regenerate it with deepinv.datasets.generate_dataset(..., test_dataset=...)"


def _listed(rows: Tensor, start: int = 0) -> str:
    """Rows ``(b,)`` bool as text: the first :data:`LISTED_ROWS` indices, offset by ``start``."""
    found = [start + int(r) for r in torch.nonzero(rows).flatten()]
    shown = ", ".join(str(r) for r in found[:LISTED_ROWS])
    return shown + (f", … ({len(found)} in all)" if len(found) > LISTED_ROWS else "")


def one_channel_mask(path: Path, name: str, mask: Tensor, start: int = 0) -> Tensor:
    """A DeepInverse mask ``(b, 1|2, H, W)`` as ssibench's ``(b, 1, H, W)`` float32.

    Args:
        path: the file, for messages.
        name: the dataset or state key, for messages.
        mask: rows ``start …`` of it.
        start: the first row's index in its split.

    Raises:
        DataFileError: another shape, values other than 0 and 1, or channels that differ.
    """
    if mask.ndim != 4 or mask.shape[1] not in (1, 2):
        raise DataFileError(
            f"{path}: {name!r} has shape {tuple(mask.shape)}, expected (n, 1 or 2, H, W); "
            f"{REGENERATE}"
        )
    binary = ((mask == 0) | (mask == 1)).flatten(1).all(1)
    if not bool(binary.all()):
        raise DataFileError(
            f"{path}: {name!r} holds values other than 0 and 1 in row(s) "
            f"{_listed(~binary, start)} (a mask says which k-space points were sampled); "
            f"{REGENERATE}"
        )
    if mask.shape[1] == 2 and not torch.equal(mask[:, 0], mask[:, 1]):
        raise DataFileError(
            f"{path}: {name!r} samples the real and imaginary parts differently; ssibench "
            f"masks k-space points (one mask for both); {REGENERATE}"
        )
    return mask[:, :1].to(torch.float32)


def check_rows(path: Path, split: str, start: int, x: Tensor, y: Tensor, mask: Tensor) -> None:
    """Refuse rows of non-finite x or y, or of y ≠ 0 where the mask is 0.

    Args:
        path: the file, for messages.
        split: the split, for messages.
        start: the index of the first row.
        x: ``(b, 2, H, W)``.
        y: ``(b, 2, H, W)`` or ``(b, 2, N, H, W)``.
        mask: ``(b|1, 1, H, W)`` of 0/1.

    Raises:
        DataFileError: naming the split and the rows.
    """
    outside = (mask.unsqueeze(2) if y.ndim == 5 else mask) == 0
    faults = {
        "x holds values that are not finite": ~torch.isfinite(x).flatten(1).all(1),
        "y holds values that are not finite": ~torch.isfinite(y).flatten(1).all(1),
        "y is not 0 at k-space points its mask says were not sampled (DeepInverse's y is "
        "M ⊙ (A x + noise)), so the mask is not this y's": ((y != 0) & outside).flatten(1).any(1),
    }
    for what, bad in faults.items():
        if bool(bad.any()):
            raise DataFileError(
                f"{path}: in split {split!r}, {what}: row(s) {_listed(bad, start)}; {REGENERATE}"
            )


class NoiseCheck:
    """Accumulates ‖r‖², ‖y‖² and k per row of a split, then tests them (module docstring).

    Example:
        >>> check = NoiseCheck()  # two noiseless rows (r = 0) of 2 × 4 × 4 sampled components
        >>> check.add(torch.zeros(2, 2, 4, 4), torch.ones(2, 2, 4, 4), torch.ones(1, 1, 4, 4))
        >>> check.check(Path("dinv_dataset0.h5"), "test", sigma=0.0)
        0.0
    """

    def __init__(self) -> None:
        self._r2: list[Tensor] = []
        self._y2: list[Tensor] = []
        self._k: list[Tensor] = []

    def add(self, residual: Tensor, y: Tensor, mask: Tensor) -> None:
        """One chunk: r and y ``(b, 2, [N,] H, W)``, zero off the mask ``(b|1, 1, H, W)``."""
        components = y[0].numel() // (mask.shape[-2] * mask.shape[-1])  # 2 or 2N per point
        self._r2.append(residual.double().square().flatten(1).sum(1))
        self._y2.append(y.double().square().flatten(1).sum(1))
        self._k.append(mask.double().flatten(1).sum(1).expand(y.shape[0]) * components)

    def check(self, path: Path, split: str, sigma: float) -> float | None:
        """σ̂ of the whole split, √(Σ‖r‖² / Σk); ``None`` when nothing was sampled.

        Each row is tested, then the split as one sample of Σk components (much tighter where
        each row samples few points, e.g. tiny images).

        Raises:
            DataFileError: a row, or the split, whose σ̂² is off σ², with the σ̂ found.
        """
        if not self._k:
            return None
        r2, y2, k = (torch.cat(values) for values in (self._r2, self._y2, self._k))
        if float(k.sum()) == 0:
            return None
        rows = _off(r2, y2, k, sigma)
        whole = _off(
            r2.sum(0, keepdim=True), y2.sum(0, keepdim=True), k.sum(0, keepdim=True), sigma
        )
        if bool(rows.any()) or bool(whole.any()):
            where = f"row(s) {_listed(rows)}" if bool(rows.any()) else "the split as a whole"
            first = int(torch.nonzero(rows).flatten()[0]) if bool(rows.any()) else None
            found = r2.sum() / k.sum() if first is None else r2[first] / k[first]
            raise DataFileError(
                f"{path}: in split {split!r}, y differs from A x (M ⊙ F x, centred orthonormal "
                f"FFT, with the coil maps if any) at the sampled points by a noise level of "
                f"{math.sqrt(float(found)):.4g} per real component in {where}, where sigma is "
                f"{sigma:g}: the masks, coil maps, noise level or images do not belong to these "
                "measurements; check sigma in --physics and pass the physics<g>.pt written with "
                "this file, or regenerate both"
            )
        return math.sqrt(float(r2.sum() / k.sum()))


def _off(r2: Tensor, y2: Tensor, k: Tensor, sigma: float) -> Tensor:
    """Whether σ̂² = ‖r‖²/k is off σ² by more than the test allows (module docstring), ``(b,)``."""
    per = k.clamp_min(1)
    slack = NOISE_CHECK_SDS * sigma**2 * (2 / per).sqrt() + ROUNDOFF**2 * y2 / per
    return ((r2 / per - sigma**2).abs() > slack) & (k > 0)
