"""Figure 2: per-slice PSNR and SSIM distributions of every method (box + strip plots).

Each point is one test slice's metric averaged over training seeds, m̄(i) = (1/S) Σ_s m[s, i];
boxes show the quartiles and whiskers 1.5 IQR. Methods follow the leaderboard order (ascending
mean PSNR, supervised last), coloured by group (baseline, self-supervised, supervised).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.leaderboard import LEADERBOARD_MODE, leaderboard_table, with_external
from ssibench.report.stats import per_slice
from ssibench.report.style import (
    EXTERNAL_SUFFIX,
    GROUP_COLOURS,
    PAGE_WIDTH,
    figure_style,
    method_group,
)

__all__ = ["distribution_figure"]

_METRICS = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
_ROW_INCHES = 0.2
#: Horizontal spread of the strip points (in units of the box spacing), drawn deterministically.
_JITTER = 0.18


def distribution_figure(
    metrics: pd.DataFrame, scenario: str, methods: Mapping[str, MethodSpec] = METHODS
) -> Figure:
    """Box and strip plots of per-slice PSNR and SSIM, one row per method.

    Args:
        metrics: rows of the scenario's ``metrics.csv`` files.
        scenario: scenario name for the title.
        methods: registry giving labels and groups.

    Returns:
        A ``Figure`` with two axes (PSNR, SSIM) sharing the method axis.
    """
    methods = with_external(metrics, methods, EXTERNAL_SUFFIX)  # specs of external runs
    table = leaderboard_table(metrics, methods)
    order = table["method"].tolist()
    rows = metrics[metrics["mode"] == LEADERBOARD_MODE]
    labels = [methods[m].label for m in order]
    colours = [GROUP_COLOURS[method_group(m, methods)] for m in order]
    with figure_style():
        figure = Figure(figsize=(PAGE_WIDTH, 0.6 + _ROW_INCHES * len(order)), layout="constrained")
        axes = figure.subplots(1, 2, sharey=True)
        for ax, (metric, title) in zip(axes, _METRICS, strict=True):
            values = per_slice(rows, metric)
            data = [values[m].dropna().to_numpy() for m in order]
            boxes = ax.boxplot(
                data,
                orientation="horizontal",
                widths=0.6,
                patch_artist=True,
                showfliers=False,
                medianprops=dict(color="black", linewidth=0.8),
            )
            for box, colour in zip(boxes["boxes"], colours, strict=True):
                box.set(facecolor=colour, alpha=0.35, edgecolor=colour)
            for position, (points, colour) in enumerate(zip(data, colours, strict=True), start=1):
                offsets = np.linspace(-_JITTER, _JITTER, len(points)) if len(points) > 1 else [0.0]
                ax.scatter(
                    points,
                    position + np.asarray(offsets),
                    s=3,
                    color=colour,
                    zorder=3,
                    linewidths=0,
                )
            ax.set_xlabel(title)
            ax.grid(axis="x", linewidth=0.3, alpha=0.5)
        axes[0].set_yticks(range(1, len(order) + 1), labels)
        axes[0].set_label("psnr")
        axes[1].set_label("ssim")
        figure.legend(
            handles=[Patch(color=c, alpha=0.6, label=g) for g, c in GROUP_COLOURS.items()],
            loc="outside upper right",
            ncols=3,
            frameon=False,
        )
        n_slices = int(table["n_slices"].max())
        figure.suptitle(
            f"Scenario {scenario}: per-slice metrics over {n_slices} test slices",
            x=0.02,
            ha="left",
        )
    return figure
