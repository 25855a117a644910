"""Figure 5: the cost of each method — training wall time and peak memory.

Read from Snakemake ``benchmark:`` files of the train jobs (``s``: wall seconds, ``max_rss``:
peak resident memory in MB); with several seeds the bar is the mean and the error bar the
range over seeds (drawn only where the seeds differ). Untrained baselines (zero-filled) have no
training job and no bar; colours follow the method groups, as in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.style import GROUP_COLOURS, PAGE_WIDTH, figure_style, method_group

__all__ = ["BENCHMARK_COLUMNS", "cost_figure", "read_benchmark"]

#: Columns of a Snakemake benchmark file that the figure uses.
BENCHMARK_COLUMNS = ("s", "max_rss")
_ROW_INCHES = 0.18


def read_benchmark(path: Path) -> pd.Series:
    """The first row of a Snakemake benchmark TSV (``s``, ``max_rss``, ...).

    Raises:
        ValueError: for a file without rows or without :data:`BENCHMARK_COLUMNS`.
    """
    frame = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    missing = [c for c in BENCHMARK_COLUMNS if c not in frame.columns]
    if frame.empty or missing:
        raise ValueError(
            f"{path}: not a Snakemake benchmark file (no rows or no column(s) {missing})"
        )
    return frame.iloc[0]


def _time_unit(longest_s: float) -> tuple[str, float]:
    """The unit that keeps the longest bar between 2 and 120: (name, seconds per unit)."""
    for unit, scale in (("s", 1.0), ("min", 60.0)):
        if longest_s < 120 * scale:
            return unit, scale
    return "h", 3600.0


def cost_figure(
    costs: pd.DataFrame,
    scenario: str,
    order: list[str] | None = None,
    methods: Mapping[str, MethodSpec] = METHODS,
) -> Figure:
    """Horizontal bars of training wall time (s, min or h) and peak memory (GB) per method.

    Args:
        costs: one row per training run with columns ``method, seed, s, max_rss`` (MB).
        scenario: scenario name for the title.
        order: bar order of the methods (default: by mean wall time).
        methods: registry giving labels and groups.

    Raises:
        ValueError: for an empty ``costs`` table.
    """
    if costs.empty:
        raise ValueError("no training benchmarks to plot")
    grouped = costs.groupby("method")
    seconds = grouped["s"].agg(["mean", "min", "max"])
    time_unit, time_scale = _time_unit(float(seconds["mean"].max()))
    times = seconds / time_scale
    memory = grouped["max_rss"].agg(["mean", "min", "max"]) / 1024.0
    order = [m for m in (order or times.sort_values("mean").index.tolist()) if m in times.index]
    labels = [methods[m].label for m in order]
    colours = [GROUP_COLOURS[method_group(m, methods)] for m in order]
    positions = np.arange(len(order))
    with figure_style():
        figure = Figure(figsize=(PAGE_WIDTH, 0.7 + _ROW_INCHES * len(order)), layout="constrained")
        axes = figure.subplots(1, 2, sharey=True)
        for ax, stats, unit, name in (
            (axes[0], times, f"training wall time ({time_unit})", "time"),
            (axes[1], memory, "peak resident memory (GB)", "memory"),
        ):
            mean = stats.loc[order, "mean"].to_numpy()
            spread = np.vstack(
                [
                    mean - stats.loc[order, "min"].to_numpy(),
                    stats.loc[order, "max"].to_numpy() - mean,
                ]
            )
            ax.barh(positions, mean, color=colours, height=0.7)
            # whiskers only where seeds differ: a zero-width one left a stray cap on the bar end
            varied = (spread > 0).any(axis=0)
            if varied.any():
                ax.errorbar(
                    mean[varied],
                    positions[varied],
                    xerr=spread[:, varied],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.6,
                    capsize=1.5,
                )
            ax.set_xlabel(unit)
            ax.grid(axis="x", linewidth=0.3, alpha=0.5)
            ax.set_label(name)
        axes[0].set_yticks(positions, labels)
        groups = [g for g in GROUP_COLOURS if any(method_group(m, methods) == g for m in order)]
        figure.legend(
            handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in groups],
            loc="outside upper right",
            ncols=len(groups),
            frameon=False,
        )
        fewest, n_seeds = int(grouped.size().min()), int(grouped.size().max())
        seeds = f"{fewest}–{n_seeds}" if fewest < n_seeds else str(n_seeds)
        figure.suptitle(
            f"Scenario {scenario}: cost of training ({seeds} seed{'s' if n_seeds > 1 else ''}"
            f"{', bars: mean, whiskers: range' if n_seeds > 1 else ''})",
            x=0.02,
            ha="left",
        )
    return figure
