"""Leaderboards and sample figures from per-run metrics and saved test images.

Pure functions: DataFrames and arrays in, DataFrames, Markdown text and matplotlib ``Figure``
objects out; the ``tables`` and ``figures`` subcommands read the files and write the results.

Statistics of one metric m (PSNR, SSIM or NMSE) of a method evaluated with seeds s = 1..S on the
same n test slices, m[s, i] the value on slice i:

    mean     = (1/S) Σ_s μ_s,   μ_s = (1/n) Σ_i m[s, i]
    std      = (1/S) Σ_s σ_s,   σ_s = √((1/n) Σ_i (m[s, i] − μ_s)²)  population std over slices
    seed_std = √(1/(S−1) Σ_s (μ_s − mean)²)                    sample std over seeds (NaN if S = 1)

With one seed, ``mean ± std`` is the paper's test-set mean and the spread over test slices.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ssibench.methods import METHODS, MethodSpec

__all__ = [
    "METRICS_COLUMNS",
    "Leaderboard",
    "RunSamples",
    "build_leaderboard",
    "leaderboard_markdown",
    "leaderboard_table",
    "sample_figure",
]

#: Columns a metrics table (``metrics.csv`` written by ``evaluate``) must have.
METRICS_COLUMNS = (
    "scenario",
    "method",
    "seed",
    "sample",
    "mode",
    "psnr",
    "ssim",
    "nmse",
    "zf_psnr",
)
#: Metric mode of the leaderboard (reproduces SSIBench); the other mode's columns get a prefix.
LEADERBOARD_MODE = "ssibench"
EXTRA_MODE = "fastmri"
#: Metrics summarised per method.
METRICS = ("psnr", "ssim", "nmse")
#: Panel size of the sample figure in inches: three columns fit a 3.5-inch journal column.
PANEL_INCHES = (1.2, 1.45)
MAX_COLUMNS = 5
TITLE_FONTSIZE = 7


@dataclass(frozen=True)
class Leaderboard:
    """A scenario's leaderboard: numeric table (one row per method) and the paper-style Markdown."""

    table: pd.DataFrame
    markdown: str


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


def _check_columns(metrics: pd.DataFrame) -> None:
    missing = [column for column in METRICS_COLUMNS if column not in metrics.columns]
    if missing:
        raise ValueError(
            f"metrics table lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(METRICS_COLUMNS)}"
        )


def _summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-method statistics (see the module docstring) of one metric mode's rows."""
    duplicated = rows.duplicated(["method", "seed", "sample"])
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        raise ValueError(
            f"metrics table has several rows for method {first['method']!r} seed {first['seed']} "
            f"sample {first['sample']} (mode {first['mode']!r}); was a metrics file given twice?"
        )
    per_seed = rows.groupby(["method", "seed"])
    means = per_seed[list(METRICS)].mean()
    stds = per_seed[list(METRICS)].std(ddof=0)
    counts = per_seed["sample"].count()
    per_method = counts.groupby(level="method")
    uneven = per_method.nunique() > 1
    if uneven.any():
        method = uneven[uneven].index[0]
        raise ValueError(
            f"method {method!r}: seeds were evaluated on different numbers of test slices "
            f"({dict(counts[method])}); evaluate every seed on the same measurements"
        )
    summary = pd.DataFrame({"n_seeds": per_method.size(), "n_slices": per_method.first()}).astype(
        "int64"
    )
    for metric in METRICS:
        by_method = means[metric].groupby(level="method")
        summary[f"{metric}_mean"] = by_method.mean()
        summary[f"{metric}_std"] = stds[metric].groupby(level="method").mean()
        summary[f"{metric}_seed_std"] = by_method.std(ddof=1)
    return summary


def _spec(method: str, methods: Mapping[str, MethodSpec]) -> MethodSpec:
    if method not in methods:
        raise ValueError(
            f"metrics table names unknown method {method!r}; known: {', '.join(methods)}"
        )
    return methods[method]


def leaderboard_table(
    metrics: pd.DataFrame, methods: Mapping[str, MethodSpec] = METHODS
) -> pd.DataFrame:
    """One row per method with PSNR/SSIM/NMSE statistics, sorted like the paper's leaderboards.

    Rows of mode ``ssibench`` give ``psnr_mean, psnr_std, psnr_seed_std, ssim_…, nmse_…``
    (formulas in the module docstring); rows of mode ``fastmri``, when present, give the same
    columns prefixed ``fastmri_``. Sorted by ascending ``psnr_mean`` with supervised methods last;
    the zero-filled baseline is the ``zero-filled`` method's row and sorts with the others.

    Args:
        metrics: rows of ``metrics.csv`` files (columns :data:`METRICS_COLUMNS`, one row per run,
            test slice and metric mode).
        methods: registry giving each method's label and whether it is supervised.

    Returns:
        Columns ``method, label, supervised, n_seeds, n_slices``, the statistics above, and the
        ``fastmri_`` statistics (NaN for a method without fastMRI-mode rows); index 0..M−1.

    Raises:
        ValueError: for missing columns, no ``ssibench`` rows, an unknown method, duplicate rows or
            seeds evaluated on different numbers of slices.
    """
    _check_columns(metrics)
    main = metrics[metrics["mode"] == LEADERBOARD_MODE]
    if main.empty:
        raise ValueError(f"metrics table has no rows of mode {LEADERBOARD_MODE!r}")
    table = _summarise(main)
    extra_rows = metrics[metrics["mode"] == EXTRA_MODE]
    if not extra_rows.empty:
        extra = _summarise(extra_rows).drop(columns=["n_seeds", "n_slices"])
        table = table.join(extra.add_prefix(f"{EXTRA_MODE}_"), how="left")
    specs = [_spec(method, methods) for method in table.index]
    table.insert(0, "label", [spec.label for spec in specs])
    table.insert(1, "supervised", [spec.supervised for spec in specs])
    table = table.reset_index().sort_values(
        ["supervised", "psnr_mean", "label"], kind="stable", ignore_index=True
    )
    return table


def _psnr_text(value: float) -> str:
    return f"{value:.2f}"


def _ssim_text(value: float) -> str:
    """SSIM as the paper prints it: 4 decimals without the leading zero (.7862)."""
    return re.sub(r"^(-?)0\.", r"\1.", f"{value:.4f}")


def leaderboard_markdown(
    table: pd.DataFrame,
    scenario: str,
    skipped: Sequence[tuple[str, str]] = (),
    methods: Mapping[str, MethodSpec] = METHODS,
) -> str:
    """The leaderboard as a Markdown table like the paper's: method label, PSNR, SSIM.

    Cells read ``mean ± std`` over test slices; with several seeds two columns add the seed
    standard deviation. The best self-supervised method (highest PSNR among trained, unsupervised
    methods) is in bold, as in the paper. A note under the table lists the skipped methods and why.

    Args:
        table: output of :func:`leaderboard_table` (in display order).
        scenario: scenario name for the heading.
        skipped: (method, reason) pairs not run in this scenario.
        methods: registry giving labels of the skipped methods.

    Returns:
        Markdown text ending with a newline.
    """
    multi_seed = bool((table["n_seeds"] > 1).any())
    header = ["Method", "PSNR (dB)", "SSIM"]
    if multi_seed:
        header += ["PSNR seed std", "SSIM seed std"]
    self_supervised = table[
        [methods[m].trains and not methods[m].supervised for m in table["method"]]
    ]
    best = self_supervised["psnr_mean"].idxmax() if not self_supervised.empty else None
    lines = [
        f"### Scenario `{scenario}`",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * len(header)) + " |",
    ]
    for index, row in table.iterrows():
        cells = [
            row["label"],
            f"{_psnr_text(row['psnr_mean'])} ± {_psnr_text(row['psnr_std'])}",
            f"{_ssim_text(row['ssim_mean'])} ± {_ssim_text(row['ssim_std'])}",
        ]
        if multi_seed:
            cells += [
                _psnr_text(row["psnr_seed_std"]) if row["n_seeds"] > 1 else "–",
                _ssim_text(row["ssim_seed_std"]) if row["n_seeds"] > 1 else "–",
            ]
        if index == best:
            cells = [f"**{cell}**" for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    n_slices = " / ".join(map(str, sorted(set(table["n_slices"].tolist()))))
    seeds = sorted(set(table["n_seeds"].tolist()))
    n_seeds = " / ".join(map(str, seeds))
    lines += [
        "",
        f"Mean ± standard deviation over {n_slices} test slices (SSIBench metric mode), "
        f"{n_seeds} training seed{'' if seeds == [1] else 's'}.",
    ]
    if skipped:
        notes = "; ".join(
            f"{methods[m].label if m in methods else m} (`{m}`): {reason}" for m, reason in skipped
        )
        lines.append(f"Skipped in this scenario: {notes}.")
    else:
        lines.append("Skipped in this scenario: none.")
    return "\n".join(lines) + "\n"


def build_leaderboard(
    metrics: pd.DataFrame,
    scenario: str,
    skipped: Sequence[tuple[str, str]] = (),
    methods: Mapping[str, MethodSpec] = METHODS,
) -> Leaderboard:
    """Leaderboard of one scenario: the numeric table and its Markdown rendering.

    Raises:
        ValueError: if a row belongs to another scenario, or as :func:`leaderboard_table`.
    """
    _check_columns(metrics)
    others = sorted(set(metrics["scenario"].astype(str)) - {scenario})
    if others:
        raise ValueError(
            f"metrics of scenario(s) {', '.join(others)} given for scenario {scenario!r}"
        )
    table = leaderboard_table(metrics, methods)
    table.insert(0, "scenario", scenario)
    return Leaderboard(table, leaderboard_markdown(table, scenario, skipped, methods))


def _slice_psnr(metrics: pd.DataFrame, method: str, seed: int, sample: int, column: str) -> float:
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


def sample_figure(
    runs: Sequence[RunSamples],
    metrics: pd.DataFrame,
    scenario: str,
    sample_index: int,
    methods: Mapping[str, MethodSpec] = METHODS,
) -> Figure:
    """Ground truth, zero-filled and every trained method on the same test slice.

    Panels show magnitudes on one grey scale [0, max of the ground truth], titled with the method's
    label and the PSNR of this slice (``ssibench`` mode; the zero-filled panel uses ``zf_psnr``).
    Methods follow the leaderboard order (ascending mean PSNR, supervised last); with several seeds
    a method's panel shows its lowest seed. The zero-filled method, if run, gives no extra panel.

    Args:
        runs: saved images of each run; all must hold the same test rows.
        metrics: the runs' metrics rows (columns :data:`METRICS_COLUMNS`).
        scenario: scenario name for the figure title.
        sample_index: row of the saved images to show (0 ≤ sample_index < k).
        methods: registry giving labels and supervision.

    Returns:
        A ``Figure`` with one axes per trained method plus two (ground truth, zero-filled).

    Raises:
        ValueError: for no runs, runs saving different test rows, an out-of-range ``sample_index``
            or a missing metrics row.
    """
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
    sample = int(reference.indices[sample_index])
    order = leaderboard_table(metrics, methods)["method"].tolist()
    first_seed: dict[str, RunSamples] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        first_seed.setdefault(run.method, run)
    trained = [m for m in order if m in first_seed and _spec(m, methods).trains]

    target = reference.target[sample_index]
    zf_psnr = _slice_psnr(metrics, reference.method, reference.seed, sample, "zf_psnr")
    panels = [
        ("Ground truth", "reference", target),
        ("Zero-filled", f"{zf_psnr:.2f} dB", reference.zero_filled[sample_index]),
    ]
    for method in trained:
        run = first_seed[method]
        psnr = _slice_psnr(metrics, method, run.seed, sample, "psnr")
        panels.append((methods[method].label, f"{psnr:.2f} dB", run.recon[sample_index]))

    n_columns = min(MAX_COLUMNS, max(2, math.ceil(math.sqrt(len(panels)))))
    n_rows = math.ceil(len(panels) / n_columns)
    figure = Figure(
        figsize=(n_columns * PANEL_INCHES[0], n_rows * PANEL_INCHES[1] + 0.25),
        layout="constrained",
    )
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    vmax = float(target.max()) if float(target.max()) > 0 else 1.0
    for ax, (label, value, image) in zip(axes, panels, strict=False):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label}\n{value}", fontsize=TITLE_FONTSIZE)
        ax.set_axis_off()
    for ax in axes[len(panels) :]:
        figure.delaxes(ax)
    figure.suptitle(f"Scenario {scenario}: test slice {sample}", fontsize=TITLE_FONTSIZE + 1)
    return figure
