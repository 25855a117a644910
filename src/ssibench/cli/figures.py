"""``ssibench figures <kind>``: one paper figure of one scenario, as PDF and/or PNG.

Kinds: ``samples`` (reconstructions and error maps of one test slice), ``distributions``
(per-slice PSNR/SSIM), ``curves`` (training loss terms and validation PSNR), ``published``
(our PSNR against the paper's) and ``cost`` (training time and memory from benchmark files).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssibench.cli.common import formatter
from ssibench.cli.tables import add_data_argument
from ssibench.errors import ConfigError, DataFileError, rebuild_hint

__all__ = ["add_parser", "parse_runs", "read_samples"]

#: Arrays a samples.npz (written by ``evaluate``) must hold.
SAMPLES_KEYS = ("indices", "target", "recon", "zero_filled")
_RUN_DIR = "results/demo-40x40/runs/noisy/{sup,ei}/seed0"
_DATA = "--data data/measurements/demo-40x40/demo-40x40/noisy.h5"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``figures`` subcommand and its kinds."""
    parser = subparsers.add_parser(
        "figures",
        help="one figure of a scenario (PDF/PNG): samples, distributions, curves, published, cost",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=formatter,
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="<kind>")

    samples = _kind(
        kinds,
        "samples",
        "reconstructions of one test slice with zoom and error maps",
        f"{_DATA} --metrics {_RUN_DIR}/metrics.csv --samples {_RUN_DIR}/samples.npz",
    )
    _add_metrics(samples)
    samples.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        required=True,
        help="samples.npz of each run, in the order of --metrics",
    )
    samples.add_argument(
        "--sample-index", type=int, default=0, help="which saved test slice (row) to show"
    )
    samples.add_argument(
        "--zoom",
        type=float,
        nargs=3,
        metavar=("ROW", "COL", "SIZE"),
        default=None,
        help="zoom region as fractions of the image (top, left, side); default: most detail",
    )
    samples.set_defaults(handler=_samples)

    distributions = _kind(
        kinds,
        "distributions",
        "per-slice PSNR and SSIM of every method (box + strip plots)",
        f"{_DATA} --metrics {_RUN_DIR}/metrics.csv",
    )
    _add_metrics(distributions)
    distributions.set_defaults(handler=_distributions)

    curves = _kind(
        kinds,
        "curves",
        "training loss terms and validation PSNR per epoch, per method",
        f"--train-logs {_RUN_DIR}/train_log.csv --runs sup:0 ei:0",
    )
    curves.add_argument(
        "--train-logs", type=Path, nargs="+", required=True, help="train_log.csv of each run"
    )
    _add_runs(curves, "--train-logs")
    curves.set_defaults(handler=_curves)

    published = _kind(
        kinds,
        "published",
        "our PSNR against the published PSNR, per method",
        "--table results/demo-40x40/tables/leaderboard_noisy.csv",
    )
    published.add_argument(
        "--table", type=Path, required=True, help="the scenario's leaderboard CSV (ssibench tables)"
    )
    published.set_defaults(handler=_published)

    cost = _kind(
        kinds,
        "cost",
        "training wall time and peak memory per method",
        f"--benchmarks {_RUN_DIR}/benchmark.tsv --runs sup:0 ei:0",
    )
    cost.add_argument(
        "--benchmarks",
        type=Path,
        nargs="+",
        required=True,
        help="Snakemake benchmark TSV of each training job",
    )
    _add_runs(cost, "--benchmarks")
    cost.set_defaults(handler=_cost)


def _kind(
    kinds: argparse._SubParsersAction, name: str, help_text: str, example: str
) -> argparse.ArgumentParser:
    parser = kinds.add_parser(
        name,
        help=help_text,
        description=f"Plot {help_text}.",
        formatter_class=formatter,
        epilog=(
            f"example: ssibench figures {name} {example} --scenario noisy "
            f"--out results/demo-40x40/figures/{name}_noisy.pdf "
            f"results/demo-40x40/figures/{name}_noisy.png"
        ),
    )
    parser.add_argument("--scenario", required=True, help="scenario name (all rows must match)")
    parser.add_argument(
        "--out",
        type=Path,
        nargs="+",
        required=True,
        help="figure file(s); the suffix picks the format (.pdf, .png, .svg)",
    )
    return parser


def _add_metrics(parser: argparse.ArgumentParser) -> None:
    add_data_argument(parser)
    parser.add_argument(
        "--metrics", type=Path, nargs="+", required=True, help="metrics.csv of each run"
    )


def _add_runs(parser: argparse.ArgumentParser, files_option: str) -> None:
    parser.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="METHOD:SEED",
        help=f"the run of each file of {files_option}, in the same order",
    )


def parse_runs(runs: Sequence[str], files: Sequence[Path], option: str) -> list[tuple[str, int]]:
    """Turn ``METHOD:SEED`` strings into (method, seed) pairs, one per file of ``option``.

    Raises:
        ConfigError: for a malformed item or a count that differs from the files'.
    """
    if len(runs) != len(files):
        raise ConfigError(
            f"--runs has {len(runs)} items but {option} {len(files)} files; give one METHOD:SEED "
            f"per file, in the same order"
        )
    pairs = []
    for item in runs:
        method, colon, seed = item.rpartition(":")
        if not colon or not method or not seed.isdigit():
            raise ConfigError(f"--runs: expected METHOD:SEED such as ei:0, got {item!r}")
        pairs.append((method, int(seed)))
    return pairs


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """Read the arrays of a samples.npz, checking their names and shapes.

    Raises:
        DataFileError: for a missing or unreadable file, a missing array or inconsistent shapes.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataFileError(
            f"{path}: cannot read the samples ({error}); {rebuild_hint(path)}"
        ) from error
    missing = [key for key in SAMPLES_KEYS if key not in arrays]
    if missing:
        raise DataFileError(f"{path}: no array(s) {', '.join(missing)}; {rebuild_hint(path)}")
    n = len(arrays["indices"])
    shapes = {key: arrays[key].shape for key in SAMPLES_KEYS[1:]}
    if any(len(shape) != 3 or shape[0] != n for shape in shapes.values()):
        raise DataFileError(
            f"{path}: expected target, recon and zero_filled of shape ({n}, H, W) for {n} indices, "
            f"got {shapes}"
        )
    return arrays


def _save(figure: object, paths: Sequence[Path]) -> None:
    from ssibench.report.style import save_figure

    save_figure(figure, paths)
    print(f"wrote {', '.join(map(str, paths))}", file=sys.stderr)


def _samples(args: argparse.Namespace) -> None:
    import pandas as pd

    from ssibench.report.fig_samples import RunSamples, ZoomRegion, sample_figure
    from ssibench.report.inputs import read_metrics

    if len(args.metrics) != len(args.samples):
        raise ConfigError(
            f"--metrics has {len(args.metrics)} files but --samples {len(args.samples)}; give one "
            f"samples.npz per metrics.csv, in the same order"
        )
    frames = read_metrics(args.metrics, args.scenario, args.data)
    runs = []
    for metrics_path, samples_path, frame in zip(args.metrics, args.samples, frames, strict=True):
        keys = frame[["method", "seed"]].drop_duplicates()
        if len(keys) != 1:
            raise DataFileError(
                f"{metrics_path}: rows of several runs, expected one method and seed"
            )
        arrays = read_samples(samples_path)
        n_saved = len(arrays["indices"])
        if not 0 <= args.sample_index < n_saved:
            raise ConfigError(
                f"--sample-index {args.sample_index}: {samples_path} holds {n_saved} test slices; "
                f"choose 0..{n_saved - 1} (config report.sample_index below evaluate.n_samples)"
            )
        method, seed = keys.iloc[0]
        runs.append(RunSamples(str(method), int(seed), **{k: arrays[k] for k in SAMPLES_KEYS}))
    if args.zoom is not None:
        try:
            ZoomRegion.from_fractions(args.zoom, runs[0].target.shape[1:])
        except ValueError as error:
            raise ConfigError(f"--zoom: {error}") from None
    frame = pd.concat(frames, ignore_index=True)
    figure = sample_figure(runs, frame, args.scenario, args.sample_index, args.zoom)
    _save(figure, args.out)


def _distributions(args: argparse.Namespace) -> None:
    import pandas as pd

    from ssibench.report.fig_distributions import distribution_figure
    from ssibench.report.inputs import read_metrics

    frames = read_metrics(args.metrics, args.scenario, args.data)
    _save(distribution_figure(pd.concat(frames, ignore_index=True), args.scenario), args.out)


def _curves(args: argparse.Namespace) -> None:
    from ssibench.report.fig_curves import TRAIN_LOG_COLUMNS, curves_figure
    from ssibench.report.inputs import read_table

    runs = parse_runs(args.runs, args.train_logs, "--train-logs")
    logs = {}
    for path, run in zip(args.train_logs, runs, strict=True):
        log = read_table(path, "training log")
        missing = [c for c in TRAIN_LOG_COLUMNS if c not in log.columns]
        if missing:
            raise DataFileError(f"{path}: no column(s) {', '.join(missing)}; {rebuild_hint(path)}")
        logs[run] = log
    _save(curves_figure(logs, args.scenario), args.out)


def _published(args: argparse.Namespace) -> None:
    from ssibench.report.fig_published import published_figure
    from ssibench.report.inputs import read_table

    table = read_table(args.table, "leaderboard")
    missing = [c for c in ("method", "label", "psnr_mean", "psnr_published") if c not in table]
    if missing:
        raise DataFileError(f"{args.table}: no column(s) {', '.join(missing)}; rebuild it")
    try:
        figure = published_figure(table, args.scenario)
    except ValueError as error:
        raise DataFileError(f"{args.table}: {error}") from None
    _save(figure, args.out)


def _cost(args: argparse.Namespace) -> None:
    import pandas as pd

    from ssibench.report.fig_cost import cost_figure, read_benchmark

    runs = parse_runs(args.runs, args.benchmarks, "--benchmarks")
    rows = []
    for path, (method, seed) in zip(args.benchmarks, runs, strict=True):
        try:
            benchmark = read_benchmark(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
            raise DataFileError(f"{path}: {error}; rerun the training job") from None
        rows.append({"method": method, "seed": seed, **benchmark.to_dict()})
    _save(cost_figure(pd.DataFrame(rows), args.scenario), args.out)
