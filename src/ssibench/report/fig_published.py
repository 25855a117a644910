"""Figure 4: our PSNR against the published PSNR, per method of one scenario.

Each point is a method (x: the paper's test-set PSNR, y: ours, mean over seeds); the dashed line
is y = x where it crosses the plot. The axes have their own ranges, so that a scaled-down run
(lower PSNRs throughout) stays readable, and labels are spread vertically so that they never
overlap. The title gives Spearman's rank correlation ρ between the two, the agreement of the
rankings, which is what a scaled-down run can reproduce even when absolute PSNRs differ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.style import COLUMN_WIDTH, GROUP_COLOURS, figure_style, method_group

__all__ = ["published_figure", "rank_correlation"]


def rank_correlation(table: pd.DataFrame) -> float:
    """Spearman's ρ of ``psnr_mean`` and ``psnr_published`` over methods with both (NaN if < 3)."""
    both = table[["psnr_mean", "psnr_published"]].dropna()
    if len(both) < 3:
        return float("nan")
    return float(spearmanr(both["psnr_mean"], both["psnr_published"]).statistic)


#: Smallest vertical gap between two method labels, as a fraction of the y range.
MIN_LABEL_GAP = 0.045


def _padded(values: pd.Series) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    pad = max(0.08 * (high - low), 0.5)
    return low - pad, high + pad


def _spread(y: np.ndarray, gap: float) -> np.ndarray:
    """Label heights near ``y`` with at least ``gap`` between neighbours (order kept).

    Labels are pushed up from the lowest one, then the block is shifted back down by half its
    mean displacement, so that they stay centred on their points.
    """
    order = np.argsort(y, kind="stable")
    placed = y[order].astype(np.float64)
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= 0.5 * (placed - y[order]).mean()
    result = np.empty_like(placed)
    result[order] = placed
    return result


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
        x_low, x_high = _padded(both["psnr_published"])
        y_low, y_high = _padded(both["psnr_mean"])
        line = np.array([min(x_low, y_low), max(x_high, y_high)])
        ax.plot(line, line, linestyle="--", color="#999999", linewidth=0.8, label="y = x")
        ax.set_xlim(x_low, x_high)
        ax.set_ylim(y_low, y_high)
        label_y = _spread(both["psnr_mean"].to_numpy(), MIN_LABEL_GAP * (y_high - y_low))
        for (_, row), y in zip(both.iterrows(), label_y, strict=True):
            ax.annotate(
                row["label"],
                (row["psnr_published"], row["psnr_mean"]),
                xytext=(row["psnr_published"] + 0.02 * (x_high - x_low), y),
                fontsize=5,
                va="center",
                arrowprops=dict(arrowstyle="-", linewidth=0.3, color="#999999"),
            )
        ax.set_xlabel("published PSNR (dB)")
        ax.set_ylabel("our PSNR (dB)")
        ax.grid(linewidth=0.3, alpha=0.5)
        figure.legend(loc="outside lower center", ncols=4, frameon=False)
        rho = rank_correlation(both)
        figure.suptitle(f"Scenario {scenario}: ours vs paper, Spearman ρ = {rho:.2f}")
    return figure
