"""Figure 4: our PSNR against the published PSNR, per method of one scenario.

Each point is a method (x: the paper's test-set PSNR, y: ours, mean over seeds); the dashed line
is y = x. The title gives Spearman's rank correlation ρ between the two, the agreement of the
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
        figure = Figure(figsize=(COLUMN_WIDTH, COLUMN_WIDTH), layout="constrained")
        ax = figure.subplots()
        low = float(np.nanmin(both[["psnr_mean", "psnr_published"]].to_numpy())) - 1.0
        high = float(np.nanmax(both[["psnr_mean", "psnr_published"]].to_numpy())) + 1.0
        ax.plot(
            [low, high], [low, high], linestyle="--", color="#999999", linewidth=0.8, label="y = x"
        )
        for group, colour in GROUP_COLOURS.items():
            rows = both[[method_group(m, methods) == group for m in both["method"]]]
            if rows.empty:
                continue
            ax.scatter(
                rows["psnr_published"], rows["psnr_mean"], s=12, color=colour, label=group, zorder=3
            )
        for _, row in both.iterrows():
            ax.annotate(
                row["label"],
                (row["psnr_published"], row["psnr_mean"]),
                fontsize=5,
                xytext=(2, 2),
                textcoords="offset points",
            )
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("published PSNR (dB)")
        ax.set_ylabel("our PSNR (dB)")
        ax.legend(loc="lower right", frameon=False)
        ax.grid(linewidth=0.3, alpha=0.5)
        rho = rank_correlation(both)
        figure.suptitle(f"Scenario {scenario}: ours vs paper (Spearman ρ = {rho:.2f})")
    return figure
