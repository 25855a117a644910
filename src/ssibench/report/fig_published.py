"""Figure 4: our PSNR against the published PSNR, per method of one scenario.

Each point is a method (x: the paper's test-set PSNR, y: ours, mean over seeds). Both axes span
the range of all the numbers (ours and published) with a small margin, on an equal aspect, so
that the dashed y = x runs corner to corner and a point's distance from it reads the same in
either direction; a scaled-down run (lower PSNRs throughout) sits below the line. Labels are
spread vertically so that they never overlap. The title gives Spearman's rank correlation ρ
between the two, the agreement of the rankings, which is what a scaled-down run can reproduce
even when absolute PSNRs differ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import spearmanr

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.style import (
    COLUMN_WIDTH,
    GROUP_COLOURS,
    CompactFormatter,
    figure_style,
    method_group,
)

__all__ = ["axis_range", "published_figure", "rank_correlation"]


def rank_correlation(table: pd.DataFrame) -> float:
    """Spearman's ρ of ``psnr_mean`` and ``psnr_published`` over methods with both (NaN if < 3)."""
    both = table[["psnr_mean", "psnr_published"]].dropna()
    if len(both) < 3:
        return float("nan")
    return float(spearmanr(both["psnr_mean"], both["psnr_published"]).statistic)


#: Smallest vertical gap between two method labels, as a fraction of the axis range.
MIN_LABEL_GAP = 0.045
#: Margin around the data on both axes, as a fraction of their range (at least 0.5 dB).
MARGIN = 0.06
#: Points right of this fraction of the range are labelled on their left.
_LABEL_LEFT_OF = 0.72
#: Labels moved further than this many gaps mean a crowded band of points (see label_layout).
_CROWDED = 1.5


def axis_range(*values: pd.Series) -> tuple[float, float]:
    """One range for both axes: the smallest and largest of all ``values`` with a margin."""
    low = min(float(v.min()) for v in values)
    high = max(float(v.max()) for v in values)
    pad = max(MARGIN * (high - low), 0.5)
    return low - pad, high + pad


def _spread(
    y: np.ndarray, gap: float, bounds: tuple[float, float], order: np.ndarray | None = None
) -> np.ndarray:
    """Label heights near ``y``, stacked bottom to top in ``order`` (default: by ``y``).

    Labels are pushed up with at least ``gap`` between neighbours, then the block is shifted
    back down by half its mean displacement, so that they stay centred on their points, and
    finally moved into ``bounds`` (the axis range less half a gap) as far as it holds them.
    """
    order = np.argsort(y, kind="stable") if order is None else order
    placed = y[order].astype(np.float64)
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= 0.5 * (placed - y[order]).mean()
    low, high = bounds[0] + 0.5 * gap, bounds[1] - 0.5 * gap
    if len(placed):
        placed -= max(placed[-1] - high, 0.0)  # off the top: shift down
        placed += max(low - placed[0], 0.0)  # off the bottom (wins if the block is too tall)
    result = np.empty_like(placed)
    result[order] = placed
    return result


def label_layout(
    x: np.ndarray, y: np.ndarray, bounds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Height of each point's label and whether it sits left of the point.

    Labels sit beside their points, on the left for points near the right edge. When the
    points crowd into a band (labels pushed more than :data:`_CROWDED` gaps away), every label
    goes to the side with more room and the stack follows x instead of y: then no leader line
    crosses another label.
    """
    low, high = bounds
    span = high - low
    gap = MIN_LABEL_GAP * span
    heights = _spread(y, gap, bounds)
    left = x > low + _LABEL_LEFT_OF * span
    if len(y) and np.abs(heights - y).max() > _CROWDED * gap:
        on_left = bool(x.min() - low > high - x.max())
        # left of the points: higher labels for points further right (and vice versa)
        order = np.argsort(x if on_left else -x, kind="stable")
        heights = _spread(y, gap, bounds, order)
        left = np.full(len(x), on_left)
    return heights, left


def published_figure(
    table: pd.DataFrame, scenario: str, methods: Mapping[str, MethodSpec] = METHODS
) -> Figure:
    """Scatter of our against the published PSNR of every method with a published number.

    Args:
        table: a leaderboard with published columns
            (:func:`~ssibench.report.leaderboard.build_leaderboard`).
        scenario: scenario name for the title.
        methods: registry giving labels and groups.

    Raises:
        ValueError: if no method of the table has a published PSNR.
    """
    both = table.dropna(subset=["psnr_mean", "psnr_published"])
    if both.empty:
        raise ValueError(f"scenario {scenario!r}: no method has a published PSNR to compare with")
    with figure_style():
        figure = Figure(figsize=(COLUMN_WIDTH, COLUMN_WIDTH * 1.05), layout="constrained")
        ax = figure.subplots()
        for group, colour in GROUP_COLOURS.items():
            rows = both[[method_group(m, methods) == group for m in both["method"]]]
            if not rows.empty:
                ax.scatter(
                    rows["psnr_published"],
                    rows["psnr_mean"],
                    s=12,
                    color=colour,
                    label=group,
                    zorder=3,
                )
        low, high = axis_range(both["psnr_published"], both["psnr_mean"])
        span = high - low
        ax.plot(
            [low, high], [low, high], linestyle="--", color="#999999", linewidth=0.8, label="y = x"
        )
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        ax.xaxis.set_major_formatter(CompactFormatter(max_decimals=1))
        ax.yaxis.set_major_formatter(CompactFormatter(max_decimals=1))
        heights, sides = label_layout(
            both["psnr_published"].to_numpy(), both["psnr_mean"].to_numpy(), (low, high)
        )
        for (_, row), y, left in zip(both.iterrows(), heights, sides, strict=True):
            shift = (-0.03 if left else 0.03) * span
            ax.annotate(
                row["label"],
                (row["psnr_published"], row["psnr_mean"]),
                xytext=(row["psnr_published"] + shift, y),
                fontsize=5,
                ha="right" if left else "left",
                va="center",
                arrowprops=dict(arrowstyle="-", linewidth=0.3, color="#999999", shrinkB=1.0),
            )
        ax.set_xlabel("published PSNR (dB)")
        ax.set_ylabel("our PSNR (dB)")
        ax.grid(linewidth=0.3, alpha=0.5)
        figure.legend(loc="outside lower center", ncols=4, frameon=False)
        rho = rank_correlation(both)
        figure.suptitle(f"Scenario {scenario}: ours vs paper, Spearman ρ = {rho:.2f}")
    return figure
