"""Figure 3: training curves — every loss term and the validation PSNR per epoch, per method.

One small panel per trained method: the loss terms of ``train_log.csv`` (``loss_*`` columns,
the epoch means of the weighted terms; on a log axis when they span more than a decade) and the
validation PSNR on a second axis. With several seeds the curves are the mean over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.style import OKABE_ITO, PAGE_WIDTH, figure_style

__all__ = ["TRAIN_LOG_COLUMNS", "curves_figure"]

#: Columns every ``train_log.csv`` has (written by ``ssibench train``).
TRAIN_LOG_COLUMNS = ("epoch", "loss_total")
_COLUMNS = 4
_PANEL_HEIGHT = 1.25
_VAL_COLOUR = OKABE_ITO[0]
#: Loss terms spanning more than this ratio are drawn on a log axis.
LOG_SPAN = 10.0
#: Longest legend label of a loss term (the class-derived names can be long).
MAX_LABEL = 18


def _short(name: str) -> str:
    """A loss term's legend label, cut to :data:`MAX_LABEL` characters."""
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


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
        A ``Figure`` with one axes per method (labelled with the method name).

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
        for ax, method in zip(axes, order, strict=False):
            runs = [log for (m, _), log in logs.items() if m == method]
            mean = pd.concat(runs).groupby("epoch").mean(numeric_only=True).sort_index()
            terms = [c for c in mean.columns if c.startswith("loss_") and c != "loss_total"]
            terms = terms or ["loss_total"]
            values = mean[terms].to_numpy()
            # a log axis when every term is positive and they span more than a decade (SURE-type
            # losses such as ENSURE can be negative and need the linear axis)
            log = bool((values > 0).all()) and values.max() > LOG_SPAN * values.min()
            for index, term in enumerate(terms):
                ax.plot(
                    mean.index,
                    mean[term].to_numpy(),
                    linewidth=0.9,
                    color=OKABE_ITO[1 + index % (len(OKABE_ITO) - 1)],
                    label=_short(term.removeprefix("loss_")),
                )
            if log:
                ax.set_yscale("log")
                # decades only: minor-tick labels of a log axis crowd each other
                ax.yaxis.set_major_locator(LogLocator(base=10, numticks=4))
                ax.yaxis.set_minor_formatter(NullFormatter())
            else:
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            # right-aligned: the left corner holds the y axis' offset text (×1e−2)
            ax.set_title(methods[method].label if method in methods else method, loc="right", pad=2)
            ax.set_label(method)
            ax.tick_params(labelsize=5)
            ax.legend(loc="best", fontsize=5, frameon=False, handlelength=1.0)
            if "val_psnr" in mean.columns and mean["val_psnr"].notna().any():
                twin = ax.twinx()
                twin.plot(
                    mean.index, mean["val_psnr"], color=_VAL_COLOUR, linestyle="--", linewidth=0.9
                )
                twin.tick_params(labelsize=5, colors=_VAL_COLOUR)
                twin.ticklabel_format(axis="y", useOffset=False)
                twin.spines["right"].set_visible(True)
                twin.set_label(f"{method}:val_psnr")
        for ax in axes[len(order) :]:
            ax.set_axis_off()
        figure.supxlabel("epoch")
        figure.suptitle(
            f"Scenario {scenario}: loss terms (colour, left axis) and validation PSNR "
            "(dashed, right axis, dB)"
        )
    return figure
