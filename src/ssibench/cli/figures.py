"""``ssibench figures``: the sample-reconstruction figure of one scenario."""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

from ssibench.cli.common import formatter
from ssibench.cli.tables import read_metrics
from ssibench.errors import ConfigError, DataFileError
from ssibench.io import atomic_path

__all__ = ["add_parser", "read_samples"]

#: Arrays a samples.npz (written by ``evaluate``) must hold.
SAMPLES_KEYS = ("indices", "target", "recon", "zero_filled")
#: Resolution of the saved PNG.
DPI = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``figures`` subcommand."""
    parser = subparsers.add_parser(
        "figures",
        help="sample reconstructions of one scenario (PNG)",
        description=(
            "Plot one saved test slice: ground truth, zero-filled and every method's "
            "reconstruction on one grey scale, each titled with that slice's PSNR. --metrics and "
            "--samples are paired by position: the i-th samples.npz belongs to the run of the "
            "i-th metrics.csv."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench figures --metrics results/runs/noisy/{sup,ei}/seed0/metrics.csv "
            "--samples results/runs/noisy/{sup,ei}/seed0/samples.npz --scenario noisy "
            "--out results/figures/samples_noisy.png"
        ),
    )
    parser.add_argument(
        "--metrics", type=Path, nargs="+", required=True, help="metrics.csv of each run"
    )
    parser.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        required=True,
        help="samples.npz of each run, in the order of --metrics",
    )
    parser.add_argument("--scenario", required=True, help="scenario name (all rows must match)")
    parser.add_argument(
        "--sample-index",
        type=int,
        default=0,
        help="which saved test slice (row of samples.npz) to show",
    )
    parser.add_argument("--out", type=Path, required=True, help="figure file (.png)")
    parser.set_defaults(handler=_run)


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """Read the arrays of a samples.npz, checking their names and shapes.

    Raises:
        DataFileError: for a missing or unreadable file, a missing array or inconsistent shapes.
    """
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataFileError(
            f"{path}: cannot read the samples ({error}); rebuild it with snakemake {path}"
        ) from error
    missing = [key for key in SAMPLES_KEYS if key not in arrays]
    if missing:
        raise DataFileError(f"{path}: no array(s) {', '.join(missing)}; rebuild it with snakemake")
    n = len(arrays["indices"])
    shapes = {key: arrays[key].shape for key in SAMPLES_KEYS[1:]}
    if any(len(shape) != 3 or shape[0] != n for shape in shapes.values()):
        raise DataFileError(
            f"{path}: expected target, recon and zero_filled of shape ({n}, H, W) for {n} indices, "
            f"got {shapes}"
        )
    return arrays


def _run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ssibench.report import RunSamples, sample_figure

    if len(args.metrics) != len(args.samples):
        raise ConfigError(
            f"--metrics has {len(args.metrics)} files but --samples {len(args.samples)}; give one "
            f"samples.npz per metrics.csv, in the same order"
        )
    frames = read_metrics(args.metrics, args.scenario)
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
    figure = sample_figure(
        runs, pd.concat(frames, ignore_index=True), args.scenario, args.sample_index
    )
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, dpi=DPI)
    print(f"wrote {args.out}", file=sys.stderr)
