"""``ssibench tables``: the leaderboard of one scenario as CSV, Markdown and LaTeX."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ssibench.cli.common import formatter, read_table
from ssibench.errors import ConfigError, DataFileError
from ssibench.io import atomic_path, atomic_write_text

__all__ = ["add_parser", "parse_skipped", "read_metrics"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``tables`` subcommand."""
    parser = subparsers.add_parser(
        "tables",
        help="leaderboard of one scenario (CSV + Markdown + LaTeX)",
        description=(
            "Summarise the metrics.csv files of a scenario's runs: per method, PSNR/SSIM/NMSE mean "
            "and standard deviation over test slices (and over seeds), sorted by PSNR with the "
            "supervised method last, a paired Wilcoxon test of each method against the best "
            "self-supervised one, and the published SSIBench numbers with our difference. Writes a "
            "numeric CSV, a paper-style Markdown table and a booktabs LaTeX table."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench tables --metrics results/runs/noisy/*/seed0/metrics.csv "
            "--scenario noisy --skipped 'ddssl: needs a noise level' "
            "--out-csv results/tables/leaderboard_noisy.csv "
            "--out-md results/tables/leaderboard_noisy.md "
            "--out-tex results/tables/leaderboard_noisy.tex"
        ),
    )
    parser.add_argument(
        "--metrics", type=Path, nargs="+", required=True, help="metrics.csv of each run"
    )
    parser.add_argument("--scenario", required=True, help="scenario name (all rows must match)")
    parser.add_argument(
        "--skipped",
        nargs="*",
        default=[],
        metavar="'METHOD: REASON'",
        help="methods not run in this scenario and why, listed under the Markdown table",
    )
    parser.add_argument("--out-csv", type=Path, required=True, help="numeric leaderboard (.csv)")
    parser.add_argument("--out-md", type=Path, required=True, help="Markdown leaderboard (.md)")
    parser.add_argument("--out-tex", type=Path, required=True, help="LaTeX leaderboard (.tex)")
    parser.set_defaults(handler=_run)


def read_metrics(paths: Sequence[Path], scenario: str) -> list[pd.DataFrame]:
    """Read metrics.csv files, one DataFrame each, checking their columns and scenario.

    Raises:
        DataFileError: for a missing or unreadable file, missing columns, no rows, or rows of
            another scenario (naming the file).
    """
    from ssibench.report import METRICS_COLUMNS

    frames = []
    for path in paths:
        frame = read_table(path, "metrics")
        missing = [column for column in METRICS_COLUMNS if column not in frame.columns]
        if missing or frame.empty:
            what = f"no column(s) {', '.join(missing)}" if missing else "no rows"
            raise DataFileError(f"{path}: {what}; rebuild it with snakemake {path}")
        others = sorted(set(frame["scenario"].astype(str)) - {scenario})
        if others:
            raise DataFileError(
                f"{path}: rows of scenario(s) {', '.join(others)}, expected only {scenario!r}"
            )
        frames.append(frame)
    return frames


def parse_skipped(notes: Sequence[str]) -> list[tuple[str, str]]:
    """Turn ``'method: reason'`` strings into (method, reason) pairs.

    Raises:
        ConfigError: for a note without ``:``.
    """
    pairs = []
    for note in notes:
        method, colon, reason = note.partition(":")
        if not colon or not method.strip():
            raise ConfigError(f"--skipped: expected 'METHOD: REASON', got {note!r}")
        pairs.append((method.strip(), reason.strip()))
    return pairs


def _run(args: argparse.Namespace) -> None:
    from ssibench.report import build_leaderboard, scenario_latex, scenario_markdown

    skipped = parse_skipped(args.skipped)
    frames = read_metrics(args.metrics, args.scenario)
    table = build_leaderboard(pd.concat(frames, ignore_index=True), args.scenario)
    with atomic_path(args.out_csv) as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(args.out_md, scenario_markdown(table, args.scenario, skipped))
    atomic_write_text(args.out_tex, scenario_latex(table, args.scenario))
    print(f"wrote {args.out_csv}, {args.out_md} and {args.out_tex}", file=sys.stderr)
