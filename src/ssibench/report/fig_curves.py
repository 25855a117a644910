"""Figure 3: training curves — every loss term and the validation PSNR per epoch, per method.

One small panel per trained method: the loss terms of ``train_log.csv`` (``loss_*`` columns,
the epoch means of the weighted terms, named by :func:`~ssibench.report.style.loss_label`) and
the validation PSNR (dashed) on a second axis. The loss axis is logarithmic when every plotted
value of the panel is positive and linear otherwise (SURE-type losses such as ENSURE can be
negative). Tick labels carry no offset or ×10ⁿ corner label; PSNR ticks have at most two
decimals. With several seeds the curves are the mean over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.style import (
    OKABE_ITO,
    PAGE_WIDTH,
    CompactFormatter,
    figure_style,
    loss_label,
)

__all__ = ["MIN_PSNR_SPAN", "TRAIN_LOG_COLUMNS", "curves_figure", "loss_scale"]

#: Columns every ``train_log.csv`` has (written by ``ssibench train``).
TRAIN_LOG_COLUMNS = ("epoch", "loss_total")
_COLUMNS = 4
_PANEL_HEIGHT = 1.5
_VAL_COLOUR = OKABE_ITO[0]
#: Smallest range (dB) of the PSNR axis, so that two-decimal ticks stay distinct.
MIN_PSNR_SPAN = 0.1
#: Legends whose labels together exceed this many characters stack their entries.
_LEGEND_ROW_CHARS = 26


def loss_scale(values: np.ndarray) -> str:
    """``log`` when every finite value is positive, else ``linear``."""
    finite = values[np.isfinite(values)]
    return "log" if finite.size and bool((finite > 0).all()) else "linear"


def _format_log_axis(ax: Axes) -> None:
    """Decade ticks (10ⁿ) over two or more decades, else 1-2-5 or plain ticks, never crowded.

    Decided on the view limits (the autoscaled data range), so that a constant loss, which the
    log axis widens to a decade or more, gets its decades.
    """
    low, high = (math.log10(limit) for limit in ax.get_ylim())
    decades = math.floor(high) - math.ceil(low) + 1
    ax.yaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis crowd each other
    if decades >= 2:
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=4))
        return
    one_two_five = [
        m * 10.0**e
        for e in range(math.floor(low), math.floor(high) + 1)
        for m in (1.0, 2.0, 5.0)
        if low <= math.log10(m * 10.0**e) <= high
    ]
    if len(one_two_five) >= 2:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    else:  # less than a factor of ~2.5: evenly spaced ticks read best
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
    ax.yaxis.set_major_formatter(CompactFormatter())


def _plot_psnr(ax: Axes, psnr: pd.Series, method: str) -> None:
    """Validation PSNR (epochs without validation skipped) on a right axis of ``ax``."""
    twin = ax.twinx()
    twin.plot(
        psnr.index,
        psnr.to_numpy(),
        color=_VAL_COLOUR,
        linestyle="--",
        linewidth=0.9,
        marker="o" if len(psnr) < 3 else None,
        markersize=1.5,
    )
    low, high = float(psnr.min()), float(psnr.max())
    if high - low < MIN_PSNR_SPAN:
        centre = 0.5 * (low + high)
        twin.set_ylim(centre - 0.6 * MIN_PSNR_SPAN, centre + 0.6 * MIN_PSNR_SPAN)
    twin.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
    twin.yaxis.set_major_formatter(CompactFormatter(max_decimals=2))
    twin.tick_params(labelsize=5, colors=_VAL_COLOUR)
    twin.spines["right"].set_visible(True)
    twin.set_label(f"{method}:val_psnr")


def curves_figure(
    logs: Mapping[tuple[str, int], pd.DataFrame],
    scenario: str,
    order: list[str] | None = None,
    methods: Mapping[str, MethodSpec] = METHODS,
) -> Figure:
    """Loss terms and validation PSNR against epoch, one panel per method.

    Args:
        logs: ``(method, seed)`` → that run's ``train_log.csv``.
        scenario: scenario name for the title.
        order: panel order of the methods (default: registry order).
        methods: registry giving labels.

    Returns:
        A ``Figure`` with one axes per method (labelled with the method name), its legend
        under the panel.

    Raises:
        ValueError: for no logs or a log without the :data:`TRAIN_LOG_COLUMNS`.
    """
    if not logs:
        raise ValueError("no training logs to plot")
    for (method, seed), log in logs.items():
        missing = [c for c in TRAIN_LOG_COLUMNS if c not in log.columns]
        if missing:
            raise ValueError(f"train log of {method} seed {seed} lacks column(s) {missing}")
    present = {method for method, _ in logs}
    order = [m for m in (order or list(methods)) if m in present]
    n_rows = math.ceil(len(order) / _COLUMNS)
    with figure_style():
        figure = Figure(figsize=(PAGE_WIDTH, n_rows * _PANEL_HEIGHT + 0.4), layout="constrained")
        axes = figure.subplots(n_rows, _COLUMNS, squeeze=False).ravel()
        validated = False
        for ax, method in zip(axes, order, strict=False):
            runs = [log for (m, _), log in logs.items() if m == method]
            mean = pd.concat(runs).groupby("epoch").mean(numeric_only=True).sort_index()
            terms = [c for c in mean.columns if c.startswith("loss_") and c != "loss_total"]
            terms = terms or ["loss_total"]
            labels = [loss_label(term) for term in terms]
            for index, (term, label) in enumerate(zip(terms, labels, strict=True)):
                ax.plot(
                    mean.index,
                    mean[term].to_numpy(),
                    linewidth=0.9,
                    color=OKABE_ITO[1 + index % (len(OKABE_ITO) - 1)],
                    label=label,
                    marker="o" if len(mean) == 1 else None,  # one epoch: no line to see
                    markersize=1.5,
                )
            values = mean[terms].to_numpy(dtype=np.float64)
            if loss_scale(values) == "log":
                ax.set_yscale("log")
                _format_log_axis(ax)
            else:
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
                ax.yaxis.set_major_formatter(CompactFormatter())
            if len(mean) == 1:  # the integer locator falls back to fractions for one epoch
                ax.set_xticks(mean.index)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.set_title(methods[method].label if method in methods else method, pad=2)
            ax.set_label(method)
            ax.tick_params(labelsize=5)
            # under the panel: inside, "best" would ignore the PSNR curve of the twin axis
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.14),
                ncols=len(labels) if sum(map(len, labels)) <= _LEGEND_ROW_CHARS else 1,
                fontsize=5,
                frameon=False,
                handlelength=1.0,
                columnspacing=0.8,
                borderaxespad=0.0,
            )
            if "val_psnr" in mean.columns and mean["val_psnr"].notna().any():
                _plot_psnr(ax, mean["val_psnr"].dropna(), method)
                validated = True
        for ax in axes[len(order) :]:
            ax.set_axis_off()
        figure.supxlabel("epoch")
        figure.suptitle(  # no validation: no val split, or no ground truth (measured k-space)
            f"Scenario {scenario}: loss terms (colour, left axis) and validation PSNR "
            "(dashed, right axis, dB)"
            if validated
            else f"Scenario {scenario}: loss terms (no validation PSNR: no validation split)"
        )
    return figure
