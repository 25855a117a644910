"""Figure 1: the paper's sample strip — every method on one test slice, with error maps.

Top row of each strip: magnitudes on one grey scale [0, max |x|] — ground truth, zero-filled Aᴴy,
then every trained method in leaderboard order — each with the slice's PSNR, a box on a region
and a zoomed inset of that region. Row below: error maps e = | |x̂| − |x| | on ONE shared colour
scale [0, e_max] (e_max the 99.5th percentile of the zero-filled error; larger errors saturate)
with one colour bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.leaderboard import LEADERBOARD_MODE, leaderboard_table, with_external
from ssibench.report.style import (
    ERROR_CMAP,
    EXTERNAL_SUFFIX,
    OKABE_ITO,
    PAGE_WIDTH,
    figure_style,
)

__all__ = ["RunSamples", "ZoomRegion", "auto_zoom_region", "sample_figure"]

#: Most image columns per strip (a 7.16-inch page width gives ~1-inch panels).
MAX_COLUMNS = 7
#: Side of the automatic zoom region, as a fraction of the image height.
ZOOM_FRACTION = 0.25
#: Side of the inset, as a fraction of the panel (placed in the bottom-left corner).
INSET_FRACTION = 0.42
#: Height and width of the PSNR label in the top-right corner, as fractions of the panel.
LABEL_FRACTION = (0.16, 0.55)
#: Percentile of the error maps that sets the top of their shared colour scale.
ERROR_PERCENTILE = 99.5
BOX_COLOUR = OKABE_ITO[6]  # vermillion
INSET_COLOUR = OKABE_ITO[2]  # sky blue


@dataclass(frozen=True)
class RunSamples:
    """Saved test images of one run (the content of its ``samples.npz``).

    Attributes:
        method: registered method name.
        seed: training seed of the run.
        indices: ``(k,)`` int64 rows of the test split.
        target: ``(k, H, W)`` float32 ground-truth magnitudes.
        recon: ``(k, H, W)`` float32 reconstructed magnitudes.
        zero_filled: ``(k, H, W)`` float32 magnitudes of Aᴴy.
    """

    method: str
    seed: int
    indices: np.ndarray
    target: np.ndarray
    recon: np.ndarray
    zero_filled: np.ndarray


@dataclass(frozen=True)
class ZoomRegion:
    """A square region ``[row, row + size) × [col, col + size)`` in pixels."""

    row: int
    col: int
    size: int

    @classmethod
    def from_fractions(cls, fractions: Sequence[float], shape: tuple[int, int]) -> ZoomRegion:
        """From ``(row, col, size)`` fractions of the image height/width (the config form).

        Raises:
            ValueError: if the region is empty or leaves the image.
        """
        height, width = shape
        row, col, size = fractions
        region = cls(round(row * height), round(col * width), max(2, round(size * height)))
        if not (
            region.row >= 0
            and region.row + region.size <= height
            and region.col >= 0
            and region.col + region.size <= width
        ):
            raise ValueError(
                f"zoom region {list(fractions)} (row, col, size as fractions) leaves the "
                f"{height}×{width} image; keep row + size ≤ 1 and col + size·H/W ≤ 1"
            )
        return region


def auto_zoom_region(target: np.ndarray) -> ZoomRegion:
    """The square window of most detail, away from the inset and the PSNR label.

    Detail is the gradient energy Σ ‖∇x‖² of the ground truth inside the window (side
    ⌈ZOOM_FRACTION·H⌉), found with a summed-area table; windows overlapping the bottom-left
    corner (the inset) or the top-right corner (the PSNR label) are excluded.

    Args:
        target: ``(H, W)`` ground-truth magnitude.
    """
    height, width = target.shape
    size = max(2, math.ceil(ZOOM_FRACTION * height))
    gy, gx = np.gradient(target.astype(np.float64))
    energy = np.pad((gx**2 + gy**2).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (
        energy[size:, size:]
        - energy[:-size, size:]
        - energy[size:, :-size]
        + energy[:-size, :-size]
    )  # sums[r, c] = energy of the window with top-left corner (r, c)
    rows, cols = np.indices(sums.shape)
    inset_top, inset_right = height * (1 - INSET_FRACTION), width * INSET_FRACTION
    overlaps_inset = (rows + size > inset_top) & (cols < inset_right)
    text_bottom, text_left = height * LABEL_FRACTION[0], width * (1 - LABEL_FRACTION[1])
    overlaps_label = (rows < text_bottom) & (cols + size > text_left)
    sums = np.where(overlaps_inset | overlaps_label, -np.inf, sums)
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return ZoomRegion(int(row), int(col), size)


def _slice_metric(metrics: pd.DataFrame, method: str, seed: int, sample: int, column: str) -> float:
    rows = metrics[
        (metrics["mode"] == LEADERBOARD_MODE)
        & (metrics["method"] == method)
        & (metrics["seed"] == seed)
        & (metrics["sample"] == sample)
    ]
    if rows.empty:
        raise ValueError(
            f"no {LEADERBOARD_MODE} metrics for method {method!r} seed {seed} test sample {sample}"
        )
    return float(rows[column].iloc[0])


def _check_runs(runs: Sequence[RunSamples], sample_index: int) -> RunSamples:
    if not runs:
        raise ValueError("no runs to plot")
    reference = runs[0]
    for run in runs[1:]:
        if not np.array_equal(run.indices, reference.indices):
            raise ValueError(
                f"runs saved different test rows: {run.method} seed {run.seed} has "
                f"{run.indices.tolist()}, {reference.method} seed {reference.seed} has "
                f"{reference.indices.tolist()}"
            )
    if not 0 <= sample_index < len(reference.indices):
        raise ValueError(
            f"sample_index {sample_index} out of range: the runs saved {len(reference.indices)} "
            f"test slices"
        )
    return reference


def _draw_box(ax, region: ZoomRegion, linewidth: float) -> None:
    """Outline ``region`` (pixel edges are at half-integer coordinates in ``imshow``)."""
    corner = (region.col - 0.5, region.row - 0.5)
    ax.add_patch(
        Rectangle(
            corner,
            region.size,
            region.size,
            edgecolor=BOX_COLOUR,
            facecolor="none",
            linewidth=linewidth,
        )
    )


def _draw_zoom(ax, image: np.ndarray, region: ZoomRegion, **imshow) -> None:
    _draw_box(ax, region, linewidth=0.8)
    inset = ax.inset_axes((0.0, 0.0, INSET_FRACTION, INSET_FRACTION))
    crop = image[region.row : region.row + region.size, region.col : region.col + region.size]
    inset.imshow(crop, interpolation="nearest", **imshow)
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(INSET_COLOUR)
        spine.set_linewidth(1.0)


def sample_figure(
    runs: Sequence[RunSamples],
    metrics: pd.DataFrame,
    scenario: str,
    sample_index: int,
    zoom: Sequence[float] | None = None,
    methods: Mapping[str, MethodSpec] = METHODS,
) -> Figure:
    """Ground truth, zero-filled and every trained method on one test slice, with error maps.

    Args:
        runs: saved images of each run; all must hold the same test rows. With several seeds a
            method's panel shows its lowest seed.
        metrics: the runs' metrics rows (columns of ``metrics.csv``).
        scenario: scenario name for the figure title.
        sample_index: row of the saved images to show (0 ≤ sample_index < k).
        zoom: ``(row, col, size)`` fractions of the zoom region, or None to pick the region of
            most detail (:func:`auto_zoom_region`).
        methods: registry giving labels and supervision.

    Returns:
        A ``Figure`` with strips of at most :data:`MAX_COLUMNS` panels; each strip is an image
        row (axes labelled ``image:<name>``) over an error row (``error:<name>``, none under the
        ground truth).

    Raises:
        ValueError: for no runs, runs saving different test rows, an out-of-range
            ``sample_index``, a zoom region outside the image or a missing metrics row.
    """
    methods = with_external(metrics, methods, EXTERNAL_SUFFIX)  # specs of external runs
    reference = _check_runs(runs, sample_index)
    sample = int(reference.indices[sample_index])
    order = leaderboard_table(metrics, methods)["method"].tolist()
    first_seed: dict[str, RunSamples] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        first_seed.setdefault(run.method, run)
    trained = [m for m in order if m in first_seed and methods[m].trains]

    target = reference.target[sample_index]
    zf_psnr = _slice_metric(metrics, reference.method, reference.seed, sample, "zf_psnr")
    panels = [
        ("ground-truth", "Ground truth", None, target),
        ("zero-filled", "Zero-filled", zf_psnr, reference.zero_filled[sample_index]),
    ]
    for method in trained:
        run = first_seed[method]
        psnr = _slice_metric(metrics, method, run.seed, sample, "psnr")
        label = methods[method].label
        panels.append((method, label, psnr, run.recon[sample_index]))
    region = (
        auto_zoom_region(target) if zoom is None else ZoomRegion.from_fractions(zoom, target.shape)
    )
    errors = {name: np.abs(image - target) for name, _, _, image in panels[1:]}
    # The zero-filled error sets the scale: a method that fails (e.g. a collapsed adversarial
    # run) saturates instead of turning every other map black.
    error_max = float(np.percentile(errors["zero-filled"], ERROR_PERCENTILE)) or 1.0
    error_norm = Normalize(0.0, error_max)
    grey = dict(cmap="gray", vmin=0.0, vmax=float(target.max()) or 1.0)

    n_strips = math.ceil(len(panels) / MAX_COLUMNS)
    n_columns = math.ceil(len(panels) / n_strips)  # strips as evenly filled as possible
    panel = PAGE_WIDTH / MAX_COLUMNS
    with figure_style():
        figure = Figure(
            figsize=(n_columns * panel + 0.45, n_strips * 2 * (panel + 0.12) + 0.2),
            layout="constrained",
        )
        axes = figure.subplots(2 * n_strips, n_columns, squeeze=False)
        error_image = None
        for index, (name, label, psnr, image) in enumerate(panels):
            strip, column = divmod(index, n_columns)
            ax, err_ax = axes[2 * strip, column], axes[2 * strip + 1, column]
            ax.imshow(image, interpolation="nearest", **grey)
            _draw_zoom(ax, image, region, **grey)
            ax.set_title(label, pad=2)
            ax.set_label(f"image:{name}")
            if psnr is not None:
                ax.text(
                    0.98,
                    0.97,
                    f"{psnr:.2f} dB",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    color="white",
                    fontsize=6,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="black", alpha=0.6, linewidth=0),
                )
            if name in errors:
                error_image = err_ax.imshow(
                    errors[name], cmap=ERROR_CMAP, norm=error_norm, interpolation="nearest"
                )
                _draw_box(err_ax, region, linewidth=0.6)
                err_ax.set_label(f"error:{name}")
            else:
                err_ax.text(
                    0.5,
                    0.5,
                    "error\n| |x̂| − |x| |",
                    ha="center",
                    va="center",
                    transform=err_ax.transAxes,
                )
            for a in (ax, err_ax):
                a.set_xticks([])
                a.set_yticks([])
                for spine in a.spines.values():
                    spine.set_visible(False)
        for index in range(len(panels), n_strips * n_columns):
            strip, column = divmod(index, n_columns)
            axes[2 * strip, column].set_axis_off()
            axes[2 * strip + 1, column].set_axis_off()
        if error_image is not None:
            colour_bar = figure.colorbar(
                error_image,
                ax=axes[1::2, :].ravel().tolist(),
                shrink=0.8 if n_strips > 1 else 1.0,  # one strip: a short bar, keep all of it
                pad=0.01,
                aspect=30 if n_strips > 1 else 20,
                extend="max",
            )
            # two short lines: one long one overran the bar of a single strip
            colour_bar.set_label("absolute error\n(scale: zero-filled)", fontsize=6)
        figure.suptitle(
            f"Scenario {scenario}: test slice {sample} (PSNR of this slice; box: zoomed region)"
        )
    return figure
