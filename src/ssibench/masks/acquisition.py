"""Cartesian acquisition masks: column (phase-encode line) densities, sampled for a whole batch.

Generators hold only hyper-parameters. ``sample(...)`` takes the ``torch.Generator`` to draw from,
is deterministic for a seed, never touches the global RNG, and draws the whole batch in one call (no
Python loop per sample). Masks select whole columns (phase-encode lines along W) and are returned
as ``(B, 1, H, W)`` float32 of 0/1.

Line counts follow the reference (DeepInverse's ``BaseMaskGenerator``): for width W, acceleration R
and centre fraction c, n_center = ⌊c W⌋ fully sampled centre columns plus
n_lines = ⌊W / R⌋ − n_center random columns (at W = 320, R = 6, c = 0.08: 25 + 28 = 53 columns).
A fixed number of centre (ACS, autocalibration) lines, ``center_lines``, replaces ⌊c W⌋ when given,
as acquisitions with a prescribed calibration region need (e.g. 20 ACS lines at 8×).
"""

from __future__ import annotations

import abc
import difflib
import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_CENTER_FRACTION",
    "MASK_GENERATORS",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "MaskGenerator",
    "RandomMaskGenerator",
    "center_block",
    "line_counts",
    "lines_beside_center",
    "make_mask_generator",
    "sample_without_replacement",
]

#: Centre fraction used when none is given: 8 % below 8× acceleration, 4 % from 8× (reference).
DEFAULT_CENTER_FRACTION = {True: 0.08, False: 0.04}
#: Width of the Gaussian column density relative to W (σ = W/10, reference).
GAUSSIAN_WIDTH_FRACTION = 0.1


def line_counts(width: int, acceleration: float, center_fraction: float) -> tuple[int, int]:
    """Return (n_center, n_lines): ⌊c W⌋ centre columns and ⌊W / R⌋ − n_center random columns.

    Raises:
        ValueError: if the acceleration is too low for the centre block (n_lines < 0).
    """
    n_center = int(center_fraction * width)
    try:
        return n_center, lines_beside_center(width, acceleration, n_center)
    except ValueError:
        n_lines = int(width // acceleration - n_center)
        raise ValueError(
            f"acceleration {acceleration} with center_fraction {center_fraction} at width {width} "
            f"leaves {n_lines} random lines; lower center_fraction or acceleration"
        ) from None


def lines_beside_center(width: int, acceleration: float, n_center: int) -> int:
    """n_lines = ⌊W / R⌋ − n_center random columns beside a centre block of n_center.

    Raises:
        ValueError: if the centre block alone exceeds the ⌊W / R⌋ columns (n_lines < 0).
    """
    n_lines = int(width // acceleration - n_center)
    if n_lines < 0:
        raise ValueError(
            f"acceleration {acceleration} with {n_center} centre lines at width {width} leaves "
            f"{n_lines} random lines; lower the centre lines or the acceleration"
        )
    return n_lines


def center_block(width: int, n_center: int) -> slice:
    """Columns of the fully sampled centre block: [W//2 − n_c//2, W//2 + ⌈n_c/2⌉)."""
    return slice(width // 2 - n_center // 2, width // 2 + math.ceil(n_center / 2))


def sample_without_replacement(
    log_weights: Tensor, k: int, batch_size: int, generator: torch.Generator
) -> Tensor:
    """Draw k distinct indices per batch row with probability ∝ exp(log_weights), all rows at once.

    Gumbel-top-k: the k largest of log wᵢ + Gᵢ, Gᵢ = −log(−log Uᵢ) i.i.d. Gumbel, are distributed as
    k sequential draws without replacement (Plackett–Luce), i.e. as ``torch.multinomial(w, k,
    replacement=False)``; indices with weight 0 (log weight −∞) are never drawn.

    Args:
        log_weights: ``(W,)`` log of unnormalised weights.
        k: number of indices per row (≤ number of positive weights).
        batch_size: number of rows B.
        generator: source of the uniforms (B·W of them, row by row).

    Returns:
        ``(B, k)`` int64 indices.
    """
    uniform = torch.rand(
        batch_size, log_weights.numel(), generator=generator, device=generator.device
    )
    uniform = uniform.to(log_weights.device).clamp_(torch.finfo(uniform.dtype).tiny, 1.0)
    keys = log_weights - torch.log(-torch.log(uniform))
    return keys.topk(k, dim=1).indices


class MaskGenerator(abc.ABC):
    """Base of acquisition-mask generators: ``sample(batch_size, height, width, generator)``."""

    @abc.abstractmethod
    def sample(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> Tensor:
        """Draw ``batch_size`` masks ``(B, 1, H, W)`` float32 of 0/1 on the generator's device."""


@dataclass(frozen=True)
class _ColumnDensityMask(MaskGenerator):
    """Centre block plus n_lines columns drawn without replacement from a column density."""

    acceleration: float = 6.0
    center_fraction: float | None = None
    center_lines: int | None = None
    """Fixed number of fully sampled centre columns (overrides ``center_fraction``)."""

    def __post_init__(self) -> None:
        if self.acceleration < 1:
            raise ValueError(f"acceleration must be ≥ 1; got {self.acceleration}")
        if self.center_fraction is not None and not 0 <= self.center_fraction < 1:
            raise ValueError(f"center_fraction must be in [0, 1); got {self.center_fraction}")
        if self.center_lines is not None:
            if isinstance(self.center_lines, bool) or not isinstance(self.center_lines, int):
                raise ValueError(f"center_lines must be an integer; got {self.center_lines!r}")
            if self.center_lines < 0:
                raise ValueError(f"center_lines must be ≥ 0; got {self.center_lines}")
            if self.center_fraction is not None:
                raise ValueError(
                    "give center_lines or center_fraction, not both; got "
                    f"center_lines={self.center_lines}, center_fraction={self.center_fraction}"
                )

    @property
    def effective_center_fraction(self) -> float:
        """The centre fraction in use (the reference default when none is given)."""
        if self.center_fraction is not None:
            return self.center_fraction
        return DEFAULT_CENTER_FRACTION[self.acceleration < 8]

    def n_center(self, width: int) -> int:
        """Fully sampled centre columns at width W: ``center_lines``, else ⌊c W⌋.

        Raises:
            ValueError: if ``center_lines`` exceeds W.
        """
        if self.center_lines is None:
            return int(self.effective_center_fraction * width)
        if self.center_lines > width:
            raise ValueError(f"center_lines {self.center_lines} exceeds the width {width}")
        return self.center_lines

    def line_counts(self, width: int) -> tuple[int, int]:
        """(n_center, n_lines) at width W (:func:`line_counts` with :meth:`n_center`)."""
        n_center = self.n_center(width)
        return n_center, lines_beside_center(width, self.acceleration, n_center)

    def density(self, width: int) -> Tensor:
        """Unnormalised column density before the centre block is removed, ``(W,)`` float64."""
        return torch.ones(width, dtype=torch.float64)

    def pdf(self, width: int) -> Tensor:
        """Normalised probability of each column on the first draw, centre block at 0, ``(W,)``."""
        n_center, _ = self.line_counts(width)
        pdf = self.density(width).clone()
        pdf[center_block(width, n_center)] = 0
        return pdf / pdf.sum()

    def sample(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> Tensor:
        """Draw ``(B, 1, H, W)`` masks: centre block + n_lines distinct columns ~ :meth:`pdf`."""
        n_center, n_lines = self.line_counts(width)
        device = generator.device
        if n_center + n_lines >= width:
            return torch.ones(batch_size, 1, height, width, device=device)
        columns = torch.zeros(batch_size, width, device=device)
        if n_lines > 0:
            log_pdf = self.pdf(width).log().to(device=device, dtype=torch.float32)
            picked = sample_without_replacement(log_pdf, n_lines, batch_size, generator)
            columns.scatter_(1, picked, 1.0)
        columns[:, center_block(width, n_center)] = 1.0
        return columns[:, None, None, :].expand(batch_size, 1, height, width).contiguous()


@dataclass(frozen=True)
class RandomMaskGenerator(_ColumnDensityMask):
    """Centre block plus columns drawn uniformly without replacement.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> RandomMaskGenerator(acceleration=4).sample(2, 16, 32, g).shape
        torch.Size([2, 1, 16, 32])
    """


@dataclass(frozen=True)
class GaussianMaskGenerator(_ColumnDensityMask):
    """Centre block plus columns drawn without replacement from a Gaussian density (SSIBench's).

    p(j) ∝ exp(−½ (j − W/2)² / (W/10)²) + 1/(2R) outside the centre block, j = 0 … W−1 (Schlemper
    et al., "A deep cascade of CNNs for dynamic MR image reconstruction", IEEE TMI 2018,
    arXiv:1704.02422; as in DeepInverse's ``GaussianMaskGenerator``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = GaussianMaskGenerator(acceleration=6).sample(4, 320, 320, g)
        >>> int(m[0, 0, 0].sum())
        53
    """

    def density(self, width: int) -> Tensor:
        """exp(−½ (j − W/2)² / (W/10)²) + 1/(2R), ``(W,)`` float64."""
        j = torch.arange(width, dtype=torch.float64)
        std = GAUSSIAN_WIDTH_FRACTION * width
        return torch.exp(-0.5 * ((j - width / 2) / std) ** 2) + 1.0 / (2 * self.acceleration)


@dataclass(frozen=True)
class EquispacedMaskGenerator(_ColumnDensityMask):
    """Centre block plus equispaced columns with a random offset per sample (fastMRI-style).

    The spacing a = R (n_c − W) / (n_c R − W) accounts for the centre block so that about W/R
    columns are sampled; sample b takes columns round(o_b + a k) < W − 1 with a random integer
    offset o_b ∈ [0, round(a)). The centre block is [⌊(W − n_c + 1)/2⌋, … + n_c).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> EquispacedMaskGenerator(acceleration=4).sample(3, 8, 64, g).shape
        torch.Size([3, 1, 8, 64])
    """

    def fully_sampled(self, width: int) -> bool:
        """Whether every column is sampled (centre block ≥ W or R ≤ 1): nothing is drawn."""
        return self.n_center(width) >= width or self.acceleration <= 1

    def offset_columns(self, width: int, device: torch.device | str = "cpu") -> Tensor:
        """The column mask of every offset o = 0 … round(a) − 1, ``(n_offsets, W)`` float64 of 0/1.

        ``sample`` picks one row per sample uniformly, so the mean over rows is E[M] exactly. A
        fully sampled setting has one all-ones row.
        """
        n_center = self.n_center(width)
        if self.fully_sampled(width):
            return torch.ones(1, width, dtype=torch.float64, device=device)
        spacing = self.acceleration * (n_center - width) / (n_center * self.acceleration - width)
        offsets = torch.arange(max(round(spacing), 1), device=device, dtype=torch.float64)
        steps = torch.arange(math.ceil(width / spacing) + 1, device=device, dtype=torch.float64)
        positions = offsets[:, None] + spacing * steps
        valid = (positions < width - 1).double()
        columns = torch.zeros(offsets.numel(), width, dtype=torch.float64, device=device)
        index = positions.round().long().clamp_(0, width - 1)
        columns.scatter_reduce_(1, index, valid, reduce="amax")  # invalid ones add nothing
        pad = (width - n_center + 1) // 2
        columns[:, pad : pad + n_center] = 1.0
        return columns

    def sample(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> Tensor:
        """Draw ``(B, 1, H, W)`` equispaced masks with one random offset per sample."""
        device = generator.device
        if self.fully_sampled(width):
            return torch.ones(batch_size, 1, height, width, device=device)
        table = self.offset_columns(width, device)
        offsets = torch.randint(
            0, table.shape[0], (batch_size, 1), generator=generator, device=device
        )
        columns = table[offsets[:, 0]].float()
        return columns[:, None, None, :].expand(batch_size, 1, height, width).contiguous()


MASK_GENERATORS: dict[str, type[_ColumnDensityMask]] = {
    "gaussian": GaussianMaskGenerator,
    "random": RandomMaskGenerator,
    "equispaced": EquispacedMaskGenerator,
}


def make_mask_generator(
    name: str,
    acceleration: float,
    center_fraction: float | None = None,
    center_lines: int | None = None,
) -> MaskGenerator:
    """Build the acquisition-mask generator registered as ``name``.

    ``center_lines`` (a fixed number of centre columns) and ``center_fraction`` exclude each other.

    Raises:
        ValueError: for an unknown name, listing the valid ones and the closest match.
    """
    if name not in MASK_GENERATORS:
        close = difflib.get_close_matches(name, MASK_GENERATORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown mask generator {name!r}{hint}; valid: {', '.join(sorted(MASK_GENERATORS))}"
        )
    return MASK_GENERATORS[name](
        acceleration=acceleration, center_fraction=center_fraction, center_lines=center_lines
    )
