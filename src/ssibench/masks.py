"""Cartesian acquisition masks and measurement-splitting masks, vectorised over the batch.

Generators hold only hyper-parameters. ``sample(...)`` takes the ``torch.Generator`` to draw from, is
deterministic for a seed, never touches the global RNG, and draws the whole batch in one call (no
Python loop per sample). Acquisition masks select whole columns (phase-encode lines along W) and are
returned as ``(B, 1, H, W)`` float32 of 0/1.

Line counts follow the reference (DeepInverse's ``BaseMaskGenerator``): for width W, acceleration R
and centre fraction c, n_center = ⌊c W⌋ fully sampled centre columns plus n_lines = ⌊W / R⌋ − n_center
random columns (at W = 320, R = 6, c = 0.08: 25 + 28 = 53 columns).
"""

from __future__ import annotations

import abc
import difflib
import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "MASK_GENERATORS",
    "BernoulliSplittingMaskGenerator",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "MaskGenerator",
    "MultiplicativeSplittingMaskGenerator",
    "RandomMaskGenerator",
    "center_block",
    "line_counts",
    "make_mask_generator",
    "sample_without_replacement",
]

#: Centre fraction used when none is given: 8 % below 8× acceleration, 4 % from 8× (reference default).
DEFAULT_CENTER_FRACTION = {True: 0.08, False: 0.04}
#: Width of the Gaussian column density relative to W (σ = W/10, reference).
GAUSSIAN_WIDTH_FRACTION = 0.1


def line_counts(width: int, acceleration: float, center_fraction: float) -> tuple[int, int]:
    """Return (n_center, n_lines): ⌊c W⌋ centre columns and ⌊W / R⌋ − n_center random columns.

    Raises:
        ValueError: if the acceleration is too low for the centre block (n_lines < 0).
    """
    n_center = int(center_fraction * width)
    n_lines = int(width // acceleration - n_center)
    if n_lines < 0:
        raise ValueError(
            f"acceleration {acceleration} with center_fraction {center_fraction} at width {width} "
            f"leaves {n_lines} random lines; lower center_fraction or acceleration"
        )
    return n_center, n_lines


def center_block(width: int, n_center: int) -> slice:
    """Columns of the fully sampled centre block: [W//2 − n_c//2, W//2 + ⌈n_c/2⌉)."""
    return slice(width // 2 - n_center // 2, width // 2 + math.ceil(n_center / 2))


def sample_without_replacement(
    log_weights: Tensor, k: int, batch_size: int, generator: torch.Generator
) -> Tensor:
    """Draw k distinct indices per batch row with probability ∝ exp(log_weights), all rows at once.

    Gumbel-top-k: the k largest of log wᵢ + Gᵢ, Gᵢ = −log(−log Uᵢ) i.i.d. Gumbel, are distributed as k
    sequential draws without replacement (Plackett–Luce), i.e. as ``torch.multinomial(w, k,
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

    def __post_init__(self) -> None:
        if self.acceleration < 1:
            raise ValueError(f"acceleration must be ≥ 1; got {self.acceleration}")
        if self.center_fraction is not None and not 0 <= self.center_fraction < 1:
            raise ValueError(f"center_fraction must be in [0, 1); got {self.center_fraction}")

    @property
    def effective_center_fraction(self) -> float:
        """The centre fraction in use (the reference default when none is given)."""
        if self.center_fraction is not None:
            return self.center_fraction
        return DEFAULT_CENTER_FRACTION[self.acceleration < 8]

    def density(self, width: int) -> Tensor:
        """Unnormalised column density before the centre block is removed, ``(W,)`` float64."""
        return torch.ones(width, dtype=torch.float64)

    def pdf(self, width: int) -> Tensor:
        """Normalised probability of each column on the first draw, centre block set to 0, ``(W,)``."""
        n_center, _ = line_counts(width, self.acceleration, self.effective_center_fraction)
        pdf = self.density(width).clone()
        pdf[center_block(width, n_center)] = 0
        return pdf / pdf.sum()

    def sample(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> Tensor:
        """Draw ``(B, 1, H, W)`` masks: centre block + n_lines distinct columns ~ :meth:`pdf`."""
        n_center, n_lines = line_counts(width, self.acceleration, self.effective_center_fraction)
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
    """Centre block plus columns drawn without replacement from a Gaussian density (SSIBench default).

    p(j) ∝ exp(−½ (j − W/2)² / (W/10)²) + 1/(2R) outside the centre block, j = 0 … W−1 (Schlemper et
    al., "A deep cascade of CNNs for dynamic MR image reconstruction", IEEE TMI 2018, arXiv:1704.02422;
    as in DeepInverse's ``GaussianMaskGenerator``).

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

    The spacing a = R (n_c − W) / (n_c R − W) accounts for the centre block so that about W/R columns are
    sampled; sample b takes columns round(o_b + a k) < W − 1 with a random integer offset
    o_b ∈ [0, round(a)). The centre block is [⌊(W − n_c + 1)/2⌋, … + n_c).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> EquispacedMaskGenerator(acceleration=4).sample(3, 8, 64, g).shape
        torch.Size([3, 1, 8, 64])
    """

    def sample(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> Tensor:
        """Draw ``(B, 1, H, W)`` equispaced masks with one random offset per sample."""
        n_center = int(self.effective_center_fraction * width)
        device = generator.device
        if n_center >= width or self.acceleration <= 1:
            return torch.ones(batch_size, 1, height, width, device=device)
        spacing = self.acceleration * (n_center - width) / (n_center * self.acceleration - width)
        offsets = torch.randint(
            0, max(round(spacing), 1), (batch_size, 1), generator=generator, device=device
        )
        steps = torch.arange(math.ceil(width / spacing) + 1, device=device, dtype=torch.float64)
        positions = offsets.double() + spacing * steps
        valid = positions < width - 1
        columns = torch.zeros(batch_size, width, device=device)
        index = positions.round().long().clamp_(0, width - 1)
        columns.scatter_reduce_(1, index, valid.float(), reduce="amax")  # invalid ones add nothing
        pad = (width - n_center + 1) // 2
        columns[:, pad : pad + n_center] = 1.0
        return columns[:, None, None, :].expand(batch_size, 1, height, width).contiguous()


@dataclass(frozen=True)
class BernoulliSplittingMaskGenerator:
    """Split an acquisition mask Ω into an input mask M₁ ⊆ Ω for measurement splitting (SSDU).

    Pixel-wise: for each sample, exactly ⌊ρ K⌋ of the K sampled k-space points of Ω are kept, chosen
    uniformly without replacement (ρ = ``split_ratio``); the loss mask is M₂ = Ω − M₁. Vectorised by
    ranking i.i.d. uniforms within Ω (Yaman et al., "Self-supervised learning of physics-guided
    reconstruction neural networks without fully sampled reference data", MRM 2020, arXiv:1912.07669;
    as DeepInverse's ``BernoulliSplittingMaskGenerator`` with an input mask).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> omega = torch.ones(2, 1, 8, 8)
        >>> BernoulliSplittingMaskGenerator(0.5).sample(omega, g).sum(dim=(1, 2, 3)).tolist()
        [32.0, 32.0]
    """

    split_ratio: float = 0.6

    def __post_init__(self) -> None:
        if not 0 < self.split_ratio < 1:
            raise ValueError(f"split_ratio must be in (0, 1); got {self.split_ratio}")

    def sample(
        self, input_mask: Tensor, generator: torch.Generator, batch_size: int | None = None
    ) -> Tensor:
        """Draw M₁ ⊆ Ω for each sample.

        Args:
            input_mask: Ω, ``(B, 1, H, W)``, or a shared ``(1, 1, H, W)`` split independently
                ``batch_size`` times.
            generator: source of randomness (B·H·W uniforms).
            batch_size: number of splits of a shared mask (default: Ω's batch size).

        Returns:
            ``(B, 1, H, W)`` float 0/1 on Ω's device, with exactly ⌊ρ Σ Ω_b⌋ ones per sample.
        """
        batch = batch_size if batch_size is not None else input_mask.shape[0]
        omega = input_mask.expand(batch, *input_mask.shape[1:]).flatten(1)
        uniform = torch.rand(omega.shape, generator=generator, device=generator.device)
        uniform = uniform.to(omega.device).masked_fill(omega == 0, 2.0)  # outside Ω ranks last
        order = uniform.argsort(dim=1)
        ranks = torch.empty_like(order).scatter_(
            1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
        )
        keep = torch.floor(self.split_ratio * omega.sum(dim=1, keepdim=True)).long()
        return (ranks < keep).to(input_mask.dtype).view(batch, *input_mask.shape[1:])


#: Acquisition-mask generators by config name.
MASK_GENERATORS: dict[str, type[_ColumnDensityMask]] = {
    "gaussian": GaussianMaskGenerator,
    "random": RandomMaskGenerator,
    "equispaced": EquispacedMaskGenerator,
}


def make_mask_generator(
    name: str, acceleration: float, center_fraction: float | None = None
) -> MaskGenerator:
    """Build the acquisition-mask generator registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the valid ones and the closest match.
    """
    if name not in MASK_GENERATORS:
        close = difflib.get_close_matches(name, MASK_GENERATORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown mask generator {name!r}{hint}; valid: {', '.join(sorted(MASK_GENERATORS))}"
        )
    return MASK_GENERATORS[name](acceleration=acceleration, center_fraction=center_fraction)


@dataclass(frozen=True)
class MultiplicativeSplittingMaskGenerator:
    """Split an acquisition mask Ω line-wise by intersecting it with a random column mask.

    M₁ = M_split ⊙ Ω, where M_split is a fresh draw of ``split_generator`` per sample (e.g. a
    Gaussian column density at acceleration 2 without a centre block: W/2 columns); the loss mask
    is M₂ = Ω − M₁. The split is a whole-line (column) split, unlike the pixel-wise Bernoulli
    split, and the number of kept lines varies with how many split columns fall inside Ω.
    Millard & Chiew, "A theoretical framework for self-supervised MR image reconstruction using
    sub-sampling via variable density Noisier2Noise", IEEE TCI 2023, arXiv:2205.10278 (as
    DeepInverse's ``MultiplicativeSplittingMaskGenerator`` with an input mask).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> splitter = MultiplicativeSplittingMaskGenerator(GaussianMaskGenerator(2, 0.0))
        >>> splitter.sample(torch.ones(3, 1, 8, 16), g).sum(dim=(1, 2, 3)).tolist()
        [64.0, 64.0, 64.0]
    """

    split_generator: MaskGenerator

    def __post_init__(self) -> None:
        if not isinstance(self.split_generator, MaskGenerator):
            raise TypeError(
                "split_generator must be a MaskGenerator (e.g. GaussianMaskGenerator(2, 0.0)); "
                f"got {type(self.split_generator).__name__}"
            )

    def sample(
        self, input_mask: Tensor, generator: torch.Generator, batch_size: int | None = None
    ) -> Tensor:
        """Draw M₁ = M_split ⊙ Ω for each sample, all samples in one call of the split generator.

        Args:
            input_mask: Ω, ``(B, 1, H, W)``, or a shared ``(1, 1, H, W)`` split independently
                ``batch_size`` times.
            generator: source of randomness (the split generator's draws for B samples).
            batch_size: number of splits of a shared mask (default: Ω's batch size).

        Returns:
            ``(B, 1, H, W)`` float 0/1 on Ω's device and dtype, M₁ ⊆ Ω.
        """
        batch = batch_size if batch_size is not None else input_mask.shape[0]
        height, width = input_mask.shape[-2:]
        split = self.split_generator.sample(batch, height, width, generator)
        return split.to(device=input_mask.device, dtype=input_mask.dtype) * input_mask
