"""Exact column inclusion probabilities E[Mⱼ] of the acquisition masks.

They are the sampling density that weighted losses such as ENSURE and weighted SSDU invert,
computed once per (generator, W) and cached.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from ssibench.masks.acquisition import (
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    MaskGenerator,
    RandomMaskGenerator,
    center_block,
)

__all__ = ["inclusion_probabilities", "successive_sampling_inclusion"]


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
    n_center, n_lines = mask_generator.line_counts(width)
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
