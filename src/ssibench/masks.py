"""Cartesian acquisition masks and measurement-splitting masks, vectorised over the batch.

Generators hold only hyper-parameters. ``sample(...)`` takes the ``torch.Generator`` to draw from,
is deterministic for a seed, never touches the global RNG, and draws the whole batch in one call (no
Python loop per sample). Acquisition masks select whole columns (phase-encode lines along W) and are
returned as ``(B, 1, H, W)`` float32 of 0/1.

Line counts follow the reference (DeepInverse's ``BaseMaskGenerator``): for width W, acceleration R
and centre fraction c, n_center = ⌊c W⌋ fully sampled centre columns plus
n_lines = ⌊W / R⌋ − n_center random columns (at W = 320, R = 6, c = 0.08: 25 + 28 = 53 columns).

:func:`inclusion_probabilities` gives the exact probability E[Mⱼ] that each column is sampled (the
sampling density that weighted losses such as ENSURE and weighted SSDU invert), computed once per
(generator, W) and cached.
"""

from __future__ import annotations

import abc
import difflib
import functools
import math
from dataclasses import dataclass

import numpy as np
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
    "inclusion_probabilities",
    "line_counts",
    "make_mask_generator",
    "sample_without_replacement",
    "successive_sampling_inclusion",
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
        """Normalised probability of each column on the first draw, centre block at 0, ``(W,)``."""
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
        return int(self.effective_center_fraction * width) >= width or self.acceleration <= 1

    def offset_columns(self, width: int, device: torch.device | str = "cpu") -> Tensor:
        """The column mask of every offset o = 0 … round(a) − 1, ``(n_offsets, W)`` float64 of 0/1.

        ``sample`` picks one row per sample uniformly, so the mean over rows is E[M] exactly. A
        fully sampled setting has one all-ones row.
        """
        n_center = int(self.effective_center_fraction * width)
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


@dataclass(frozen=True)
class BernoulliSplittingMaskGenerator:
    """Split an acquisition mask Ω into an input mask M₁ ⊆ Ω for measurement splitting (SSDU).

    Pixel-wise: for each sample, exactly ⌊ρ K⌋ of the K sampled k-space points of Ω are kept, chosen
    uniformly without replacement (ρ = ``split_ratio``); the loss mask is M₂ = Ω − M₁. Vectorised
    by ranking i.i.d. uniforms within Ω (Yaman et al., "Self-supervised learning of physics-guided
    reconstruction neural networks without fully sampled reference data", MRM 2020,
    arXiv:1912.07669; as DeepInverse's ``BernoulliSplittingMaskGenerator`` with an input mask).

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
        omega = input_mask.expand(batch, *input_mask.shape[1:]).flatten(1) != 0
        counts = omega.sum(dim=1)
        split = torch.zeros(omega.shape, dtype=torch.bool, device=omega.device)
        # The kept points are the ⌊ρ K_b⌋ smallest of K_b uniforms drawn on the sampled points of
        # row b, found by a k-th-value threshold (an O(K) selection, not a sort). Column masks give
        # every row the same K: uniforms are then drawn for the sampled points only, one call.
        if bool((counts == counts[0]).all()):  # one host sync
            n_points = int(counts[0])
            keep = int(self.split_ratio * n_points)
            if keep == 0:
                return split.to(input_mask.dtype).view(batch, *input_mask.shape[1:])
            points = omega.nonzero()[:, 1].view(batch, n_points)  # row-major within each row
            uniform = torch.rand(batch, n_points, generator=generator, device=generator.device)
            uniform = uniform.to(omega.device)
            threshold = uniform.kthvalue(keep, dim=1, keepdim=True).values
            split.scatter_(1, points, uniform <= threshold)
            return split.to(input_mask.dtype).view(batch, *input_mask.shape[1:])
        uniform = torch.rand(omega.shape, generator=generator, device=generator.device)
        uniform = uniform.to(omega.device).masked_fill(~omega, 2.0)  # outside Ω ranks last
        keep_per_row = torch.floor(self.split_ratio * counts).long()
        for k in keep_per_row.unique().tolist():  # rows with different counts: one call per count
            rows = keep_per_row == k
            if k > 0:
                threshold = uniform[rows].kthvalue(k, dim=1, keepdim=True).values
                split[rows] = uniform[rows] <= threshold
        return split.to(input_mask.dtype).view(batch, *input_mask.shape[1:])


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


#: Gauss–Legendre nodes per quadrature panel of the inclusion integral.
INCLUSION_QUADRATURE_ORDER = 16
#: End of the first panel in mean first-arrival times 1/Σw; the next panels double in length.
INCLUSION_FIRST_PANEL = 0.25
#: Doublings tried to reach the tail: 2⁹⁶ mean arrival times covers weight ratios up to ~10²⁶.
INCLUSION_MAX_DOUBLINGS = 96
#: The integral stops at the first doubling edge where Pr[N(t) ≤ k], which bounds every
#: leave-one-out tail Pr[N₋ᵢ(t) ≤ k − 1] and hence every neglected remainder, is below this.
INCLUSION_TAIL_TOLERANCE = 1e-16
#: Equal sub-panels per doubling panel: the first try, then refinements while Σπ misses k.
INCLUSION_SUBPANELS = (2, 4, 8, 16)
#: Largest accepted |Σᵢ πᵢ − k| (2 sub-panels give ~1e-13 up to n = 640 items).
INCLUSION_SUM_TOLERANCE = 1e-11
#: Nodes are processed in chunks: one (nodes, k) step of the dynamic programming stays below
#: ATen's parallel grain (32768 elements), so it runs on one thread (thread hand-offs cost more
#: than they save on such small steps, ~50× more on a busy CPU), and the (n, nodes, k) table
#: below 64 MiB of float64.
INCLUSION_STEP_ELEMENTS = 1 << 15
INCLUSION_TABLE_ELEMENTS = 1 << 23


def _leave_one_out_tails(arrived: Tensor, stay: Tensor, k: int) -> Tensor:
    """Pr[N₋ᵢ(t) ≤ k − 1]: fewer than k of the items other than i have arrived, at every node.

    Both count distributions are Poisson-binomial, truncated to counts 0 … k − 1 and built one item
    at a time: A_i of the items after i (from the back, then turned into CDFs) and B_i of the items
    before i (from the front, kept reversed), combined as Σ_a B_i(a) · A_i(≤ k − 1 − a). Every step
    is a convex combination, so rounding errors stay at the float64 level.

    Args:
        arrived: ``(T, n)`` probability 1 − e^(−rⱼ t) that item j has arrived by node t.
        stay: ``(T, n)`` its complement e^(−rⱼ t) (passed separately to keep small values exact).
        k: the threshold, 1 ≤ k < n.

    Returns:
        ``(T, n)`` float64.
    """
    nodes, n = arrived.shape
    after = arrived.new_empty(n, nodes, k)  # after[i, t, c] = Pr[c arrivals among items > i]
    after[n - 1].zero_()
    after[n - 1, :, 0] = 1
    for i in range(n - 2, -1, -1):
        torch.mul(after[i + 1], stay[:, i + 1, None], out=after[i])
        after[i, :, 1:].addcmul_(after[i + 1, :, :-1], arrived[:, i + 1, None])
    after.cumsum_(dim=-1)  # now Pr[≤ c arrivals among items > i]
    before = arrived.new_zeros(nodes, k)  # before[t, c] = Pr[k − 1 − c arrivals among items < i]
    before[:, k - 1] = 1
    following = torch.empty_like(before)
    tails = arrived.new_empty(nodes, n)
    for i in range(n):
        tails[:, i] = torch.linalg.vecdot(before, after[i])
        torch.mul(before, stay[:, i, None], out=following)
        following[:, :-1].addcmul_(before[:, 1:], arrived[:, i, None])
        before, following = following, before
    return tails


def _count_cdf(rates: Tensor, k: int, times: Tensor) -> Tensor:
    """Pr[N(t) ≤ k] for the count N(t) of all items arrived by each time, ``(T,)``.

    It bounds every leave-one-out tail: N₋ᵢ(t) ≤ k − 1 implies N(t) ≤ k.
    """
    exponent = -times[:, None] * rates
    arrived, stay = -exponent.expm1(), exponent.exp()
    distribution = rates.new_zeros(times.numel(), k + 1)  # Pr[c arrivals among the items so far]
    distribution[:, 0] = 1
    for j in range(rates.numel()):
        following = distribution * stay[:, j, None]
        following[:, 1:] += distribution[:, :-1] * arrived[:, j, None]
        distribution = following
    return distribution.sum(dim=1)


def _panel_rule(edges: Tensor, subpanels: int) -> tuple[Tensor, Tensor]:
    """Composite Gauss–Legendre nodes and weights, each panel between edges cut in equal parts."""
    fractions = torch.linspace(0.0, 1.0, subpanels + 1, dtype=torch.float64)[:-1]
    starts = (edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * fractions).flatten()
    bounds = torch.cat([starts, edges[-1:]])
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(INCLUSION_QUADRATURE_ORDER)
    half = (bounds[1:] - bounds[:-1])[:, None] / 2
    nodes = bounds[:-1, None] + half * (1 + torch.from_numpy(unit_nodes))
    return nodes.flatten(), (half * torch.from_numpy(unit_weights)).flatten()


def _tails(rates: Tensor, k: int, times: Tensor) -> Tensor:
    """:func:`_leave_one_out_tails` at ``times`` ``(T,)`` for rates ``(n,)``, in bounded memory."""
    n = rates.numel()
    chunk = max(1, min(INCLUSION_STEP_ELEMENTS // k, INCLUSION_TABLE_ELEMENTS // (n * k)))
    parts = []
    for start in range(0, times.numel(), chunk):
        exponent = -times[start : start + chunk, None] * rates
        parts.append(_leave_one_out_tails(-exponent.expm1(), exponent.exp(), k))
    return torch.cat(parts)


def successive_sampling_inclusion(weights: Tensor, k: int) -> Tensor:
    """Exact probability πᵢ that item i is among k draws without replacement ∝ ``weights``.

    Successive (Plackett–Luce) sampling, as ``torch.multinomial(w, k, replacement=False)`` or the
    Gumbel-top-k of :func:`sample_without_replacement`, is an exponential race: item i arrives at
    Eᵢ ~ Exp(rᵢ), rᵢ = wᵢ / Σw, and the k earliest are drawn. So

        πᵢ = ∫₀^∞ rᵢ e^(−rᵢ t) Pr[N₋ᵢ(t) ≤ k − 1] dt,   N₋ᵢ(t) = Σ_{j≠i} Bernoulli(1 − e^(−rⱼ t)),

    (i arrives at t while fewer than k others have; t in mean first-arrival times 1/Σw). The
    Poisson-binomial tails come from prefix/suffix dynamic programming over the items, O(n k) per
    node for all i at once. The integral is composite Gauss–Legendre (16 nodes per panel) on the
    doubling panels [0, ¼], [¼, ½], [½, 1], [1, 2], …, each cut in 2 equal parts, up to the first
    edge where Pr[N(t) ≤ k], which bounds every tail, is below 1e-16. Doubling panels follow the
    exponential of every rate (weight ratios up to ~10²⁶); the cuts resolve the drop of the tails
    around the k-th arrival, whose relative width shrinks like 1/√k. Since Σᵢ πᵢ = k exactly, the
    rule is refined (4, 8, 16 parts) while |Σπ − k| > 1e-11. Error ≲ 3e-15 against exhaustive
    enumeration (n ≤ 7, weight ratios up to 10⁹) and against a 16-times finer rule (n = 320 and
    640, k between 1 and n − 1, Gaussian and log-normal weights). Equal weights give k/n directly.

    Args:
        weights: ``(n,)`` positive weights (any float dtype or device; computed in float64 on the
            CPU).
        k: number of draws, 0 ≤ k ≤ n.

    Returns:
        ``(n,)`` float64 on the CPU, in [0, 1], summing to k.

    Raises:
        ValueError: for non-positive weights, k outside [0, n], or a weight ratio beyond ~10²⁶.
        RuntimeError: if the finest rule still misses Σπ = k (an internal check).

    Example:
        >>> p = successive_sampling_inclusion(torch.tensor([1.0, 1.0, 2.0]), 1)
        >>> [round(float(v), 2) for v in p]
        [0.25, 0.25, 0.5]
    """
    w = weights.detach().to(device="cpu", dtype=torch.float64).flatten()
    n = w.numel()
    if not 0 <= k <= n:
        raise ValueError(f"cannot draw k = {k} of n = {n} items without replacement")
    if n > 0 and not bool((w > 0).all()):
        raise ValueError("successive sampling needs positive weights; drop zero-weight items first")
    if k == 0 or k == n or bool((w == w[0]).all()):
        return torch.full((n,), k / max(n, 1), dtype=torch.float64)
    rates = w / w.sum()
    doublings = torch.arange(INCLUSION_MAX_DOUBLINGS, dtype=torch.float64)
    edges = INCLUSION_FIRST_PANEL * 2.0**doublings
    below = torch.nonzero(_count_cdf(rates, k, edges) < INCLUSION_TAIL_TOLERANCE).flatten()
    if below.numel() == 0:
        raise ValueError(
            f"weights span a ratio of {float(w.max() / w.min()):.3g}; the inclusion integral "
            "supports ratios up to ~1e26: merge or drop the lightest items"
        )
    edges = torch.cat([edges.new_zeros(1), edges[: int(below[0]) + 1]])
    for subpanels in INCLUSION_SUBPANELS:
        nodes, node_weights = _panel_rule(edges, subpanels)
        density = rates * torch.exp(-nodes[:, None] * rates)  # of Eᵢ at each node, (T, n)
        inclusion = node_weights @ (density * _tails(rates, k, nodes))
        total = float(inclusion.sum())
        if abs(total - k) <= INCLUSION_SUM_TOLERANCE:
            return inclusion.clamp_(0.0, 1.0)
    raise RuntimeError(
        f"inclusion probabilities sum to {total!r}, not {k} (n = {n}), with "
        f"{INCLUSION_SUBPANELS[-1]} sub-panels per doubling; this is a bug, please report it"
    )


@functools.lru_cache(maxsize=128)
def _cached_inclusion(mask_generator: MaskGenerator, width: int) -> Tensor:
    if isinstance(mask_generator, EquispacedMaskGenerator):
        return mask_generator.offset_columns(width).mean(dim=0)
    n_center, n_lines = line_counts(
        width, mask_generator.acceleration, mask_generator.effective_center_fraction
    )
    if n_center + n_lines >= width:
        return torch.ones(width, dtype=torch.float64)
    pdf = mask_generator.pdf(width)
    candidates = pdf > 0
    inclusion = torch.zeros(width, dtype=torch.float64)
    inclusion[candidates] = successive_sampling_inclusion(pdf[candidates], n_lines)
    inclusion[center_block(width, n_center)] = 1.0
    return inclusion


def inclusion_probabilities(mask_generator: MaskGenerator, width: int) -> Tensor:
    """Exact probability Pⱼ = E[Mⱼ] that column j is in a mask of ``mask_generator`` at width W.

    Gaussian and random masks: Pⱼ = 1 in the centre block; the other columns are the n_lines
    draws without replacement ∝ :meth:`~_ColumnDensityMask.pdf`, whose inclusion probabilities
    are :func:`successive_sampling_inclusion` of the pdf (not n_lines · pdf, which exceeds 1 and
    overweights dense columns); a fully sampled setting gives 1 everywhere. Equispaced masks: the
    mean over all equally likely offsets of :meth:`EquispacedMaskGenerator.offset_columns`.
    Σⱼ Pⱼ is the expected number of sampled columns. Cached per (generator, W) (generators are
    frozen dataclasses); a copy is returned. At W = 320 the Gaussian cases take ~0.1–0.5 s once.

    Args:
        mask_generator: a :class:`GaussianMaskGenerator`, :class:`RandomMaskGenerator` or
            :class:`EquispacedMaskGenerator`.
        width: W, the number of columns.

    Returns:
        ``(W,)`` float64 on the CPU.

    Raises:
        TypeError: for another kind of mask generator.

    Example:
        >>> p = inclusion_probabilities(RandomMaskGenerator(2, 0.25), 16)
        >>> [round(float(v), 4) for v in p[:2]], float(p[8])
        ([0.3333, 0.3333], 1.0)
    """
    supported = (GaussianMaskGenerator, RandomMaskGenerator, EquispacedMaskGenerator)
    if not isinstance(mask_generator, supported):
        raise TypeError(
            f"no exact inclusion probabilities for {type(mask_generator).__name__}; supported: "
            f"{', '.join(cls.__name__ for cls in supported)}"
        )
    return _cached_inclusion(mask_generator, int(width)).clone()
