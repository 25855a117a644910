"""``ssibench tables``: the leaderboard of one scenario as CSV, Markdown and LaTeX."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ssibench.cli.common import formatter
from ssibench.errors import ConfigError
from ssibench.io import atomic_path, atomic_write_text

if TYPE_CHECKING:  # pandas is imported by the commands that use it: ~0.7 s
    pass

__all__ = [
    "add_data_argument",
    "add_parser",
    "parse_skipped",
]


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
            "example: ssibench tables --data data/measurements/demo-40x40/noisy.h5 "
            "--metrics results/demo-40x40/runs/noisy/*/seed0/metrics.csv "
            "--scenario noisy --skipped 'ddssl: needs a noise level' "
            "--out-csv results/demo-40x40/tables/leaderboard_noisy.csv "
            "--out-md results/demo-40x40/tables/leaderboard_noisy.md "
            "--out-tex results/demo-40x40/tables/leaderboard_noisy.tex"
        ),
    )
    add_data_argument(parser)
    parser.add_argument(
        "--metrics", type=Path, nargs="+", required=True, help="metrics.csv of each run"
    )
    parser.add_argument("--scenario", required=True, help="scenario name (all rows must match)")
    parser.add_argument(
        "--records",
        type=Path,
        nargs="*",
        default=[],
        help="run.json of each trained run: the setup under the Markdown table is read from them",
    )
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


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--data``: the measurement store whose test split the metrics must cover."""
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="measurement store of the scenario: every run must cover exactly its test slices",
    )


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
    import pandas as pd

    from ssibench.data.identity import store_identity
    from ssibench.report.inputs import read_metrics, read_records, stale_code_notes, store_physics
    from ssibench.report.leaderboard import build_leaderboard
    from ssibench.report.render import scenario_latex, scenario_markdown, setup_note

    skipped = parse_skipped(args.skipped)
    frames = read_metrics(args.metrics, args.scenario, args.data)
    table = build_leaderboard(pd.concat(frames, ignore_index=True), args.scenario)
    with atomic_path(args.out_csv) as tmp:
        table.to_csv(tmp, index=False)
    markdown = scenario_markdown(table, args.scenario, skipped)
    records = read_records(args.records, args.data)
    if records:
        skipped_files = store_identity(args.data).skipped_files
        markdown += "\n" + setup_note(records, skipped_files) + "\n"
    stale = stale_code_notes(frames, records, store_physics(args.data))
    for note in stale:
        print(f"ssibench tables: warning: {note}", file=sys.stderr)
    if stale:
        markdown += "\n" + "\n".join(f"‡ {note}." for note in stale) + "\n"
    atomic_write_text(args.out_md, markdown)
    atomic_write_text(args.out_tex, scenario_latex(table, args.scenario))
    print(f"wrote {args.out_csv}, {args.out_md} and {args.out_tex}", file=sys.stderr)
