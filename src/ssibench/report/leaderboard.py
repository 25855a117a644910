"""Leaderboards: per-method statistics of a scenario's per-slice metrics.

Pure functions: metrics DataFrames in, one numeric table out (rendered by
:mod:`ssibench.report.render`); the ``tables`` subcommand reads the files and writes the results.

Statistics of one metric m (PSNR, SSIM or NMSE) of a method evaluated with seeds s = 1..S on the
same n test slices, m[s, i] the value on slice i:

    mean     = (1/S) Σ_s μ_s,   μ_s = (1/n) Σ_i m[s, i]
    std      = (1/S) Σ_s σ_s,   σ_s = √((1/n) Σ_i (m[s, i] − μ_s)²)  population std over slices
    seed_std = √(1/(S−1) Σ_s (μ_s − mean)²)                    sample std over seeds (NaN if S = 1)

With one seed, ``mean ± std`` is the paper's test-set mean and the spread over test slices.

Runs made outside the workflow (config ``external_runs``) come as metrics tables whose rows carry
their run's name in ``method`` and its label in :data:`EXTERNAL_LABEL`; :func:`with_external`
gives each a method spec of its own (trained, not supervised: it sorts, and may be the best, among
the self-supervised methods), so they are never looked up in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.published import with_published
from ssibench.report.stats import SIGNIFICANCE_LEVEL, paired_p_values, per_slice

__all__ = [
    "EXTERNAL_CITATION",
    "EXTERNAL_LABEL",
    "EXTRA_MODE",
    "LEADERBOARD_MODE",
    "METRICS",
    "METRICS_COLUMNS",
    "best_self_supervised",
    "build_leaderboard",
    "check_columns",
    "leaderboard_table",
    "with_external",
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
#: Column of an external run's metrics.csv (``ssibench import-metrics``): the label of its rows.
EXTERNAL_LABEL = "external_label"
#: Citation of the method spec of every external run (and how one is recognised).
EXTERNAL_CITATION = (
    "External run (config external_runs): made outside this workflow, or trained on another "
    "scenario's data."
)


def check_columns(metrics: pd.DataFrame) -> None:
    """Raise ValueError naming the :data:`METRICS_COLUMNS` that ``metrics`` lacks."""
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


def with_external(
    metrics: pd.DataFrame, methods: Mapping[str, MethodSpec] = METHODS, suffix: str = ""
) -> Mapping[str, MethodSpec]:
    """``methods`` and a spec per external run of ``metrics`` (its rows with an external label).

    Args:
        metrics: rows of ``metrics.csv`` files; an external run's carry :data:`EXTERNAL_LABEL`.
        methods: the registry; an external run already in it (as one) is kept.
        suffix: appended to an external run's label (a figure's mark; the tables mark theirs).

    Raises:
        ValueError: for an external run named like a registered method, or with several labels.
    """
    if EXTERNAL_LABEL not in metrics.columns:
        return methods
    external = {}
    for key, labels in metrics.dropna(subset=[EXTERNAL_LABEL]).groupby("method"):
        name = str(key)
        if name in methods and methods[name].citation == EXTERNAL_CITATION:
            continue
        if name in methods:
            raise ValueError(f"external run {name!r} is named like a method; rename the run")
        values = sorted(set(labels[EXTERNAL_LABEL].astype(str)))
        if len(values) != 1:
            raise ValueError(f"external run {name!r} has several labels: {', '.join(values)}")
        external[name] = MethodSpec(name, values[0] + suffix, EXTERNAL_CITATION)
    return {**methods, **external}


def _spec(method: str, methods: Mapping[str, MethodSpec]) -> MethodSpec:
    if method not in methods:
        raise ValueError(
            f"metrics table names unknown method {method!r}; known: {', '.join(methods)}"
        )
    return methods[method]


def best_self_supervised(
    table: pd.DataFrame, methods: Mapping[str, MethodSpec] = METHODS
) -> str | None:
    """The trained, unsupervised method of highest mean PSNR (the paper's bold row), if any."""
    candidates = table[[methods[m].trains and not methods[m].supervised for m in table["method"]]]
    if candidates.empty:
        return None
    return str(candidates.loc[candidates["psnr_mean"].idxmax(), "method"])


def leaderboard_table(
    metrics: pd.DataFrame, methods: Mapping[str, MethodSpec] = METHODS
) -> pd.DataFrame:
    """One row per method with PSNR/SSIM/NMSE statistics, sorted like the paper's leaderboards.

    Rows of mode ``ssibench`` give ``psnr_mean, psnr_std, psnr_seed_std, ssim_…, nmse_…``
    (formulas in the module docstring); rows of mode ``fastmri``, when present, give the same
    columns prefixed ``fastmri_``. Sorted by ascending ``psnr_mean`` with supervised methods last;
    the zero-filled baseline is the ``zero-filled`` method's row and sorts with the others.

    The best self-supervised method (:func:`best_self_supervised`) is flagged ``best``; every
    method gets the paired Wilcoxon p-value of its per-slice PSNR and SSIM against it
    (:mod:`ssibench.report.stats`) and ``differs_from_best`` when the PSNR p-value is below
    :data:`~ssibench.report.stats.SIGNIFICANCE_LEVEL`.

    Args:
        metrics: rows of ``metrics.csv`` files (columns :data:`METRICS_COLUMNS`, one row per run,
            test slice and metric mode).
        methods: registry giving each method's label and whether it is supervised.

    Returns:
        Columns ``method, label, supervised, trains`` (and ``external`` when external runs are
        present, :func:`with_external`), ``n_seeds, n_slices``, the statistics above, ``best,
        psnr_p_value, ssim_p_value, differs_from_best`` and the ``fastmri_`` statistics (NaN for
        a method without fastMRI-mode rows); index 0..M−1.

    Raises:
        ValueError: for missing columns, no ``ssibench`` rows, an unknown method, duplicate rows,
            seeds evaluated on different numbers of slices, or methods on different slices.
    """
    check_columns(metrics)
    main = metrics[metrics["mode"] == LEADERBOARD_MODE]
    if main.empty:
        raise ValueError(f"metrics table has no rows of mode {LEADERBOARD_MODE!r}")
    table = _summarise(main)
    extra_rows = metrics[metrics["mode"] == EXTRA_MODE]
    if not extra_rows.empty:
        extra = _summarise(extra_rows).drop(columns=["n_seeds", "n_slices"])
        table = table.join(extra.add_prefix(f"{EXTRA_MODE}_"), how="left")
    registry = with_external(metrics, methods)
    specs = [_spec(method, registry) for method in table.index]
    table.insert(0, "label", [spec.label for spec in specs])
    table.insert(1, "supervised", [spec.supervised for spec in specs])
    table.insert(2, "trains", [spec.trains for spec in specs])
    if any(spec.citation == EXTERNAL_CITATION for spec in specs):  # else the columns stay as ever
        table.insert(3, "external", [spec.citation == EXTERNAL_CITATION for spec in specs])
    table = table.reset_index().sort_values(
        ["supervised", "psnr_mean", "label"], kind="stable", ignore_index=True
    )
    best = best_self_supervised(table, registry)
    table["best"] = table["method"] == best
    for metric in ("psnr", "ssim"):
        if best is None:
            table[f"{metric}_p_value"] = np.nan
        else:
            p_values = paired_p_values(per_slice(main, metric), best)
            table[f"{metric}_p_value"] = table["method"].map(p_values).astype("float64")
    table["differs_from_best"] = table["psnr_p_value"] < SIGNIFICANCE_LEVEL
    return table


def build_leaderboard(
    metrics: pd.DataFrame, scenario: str, methods: Mapping[str, MethodSpec] = METHODS
) -> pd.DataFrame:
    """Leaderboard of one scenario with the published numbers beside ours.

    Returns:
        :func:`leaderboard_table` with a leading ``scenario`` column and the published columns
        of :func:`~ssibench.report.published.with_published`.

    Raises:
        ValueError: if a row belongs to another scenario, or as :func:`leaderboard_table`.
    """
    check_columns(metrics)
    others = sorted(set(metrics["scenario"].astype(str)) - {scenario})
    if others:
        raise ValueError(
            f"metrics of scenario(s) {', '.join(others)} given for scenario {scenario!r}"
        )
    table = leaderboard_table(metrics, methods)
    table.insert(0, "scenario", scenario)
    return with_published(table, scenario)
