"""``ssibench combined-table``: every scenario's leaderboard side by side (CSV, Markdown, LaTeX)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ssibench.cli.common import formatter
from ssibench.errors import DataFileError, rebuild_hint
from ssibench.io import atomic_path, atomic_write_text

if TYPE_CHECKING:  # pandas is imported by the commands that use it: ~0.7 s
    import pandas as pd

__all__ = ["add_parser", "read_leaderboards"]

#: Columns a leaderboard CSV (written by ``ssibench tables``) must have for the combined table.
LEADERBOARD_COLUMNS = (
    "scenario",
    "method",
    "label",
    "supervised",
    "trains",
    "psnr_mean",
    "ssim_mean",
    "best",
    "differs_from_best",
    "psnr_published",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``combined-table`` subcommand."""
    parser = subparsers.add_parser(
        "combined-table",
        help="all scenarios' leaderboards side by side (CSV + Markdown + LaTeX)",
        description=(
            "Join the leaderboard CSVs of several scenarios (written by `ssibench tables`) into "
            "one table: a row per method, PSNR / SSIM per scenario, the paper's PSNR beside ours, "
            "the best self-supervised PSNR and SSIM of each scenario in bold. The LaTeX table is a "
            "page-wide table* (\\usepackage{booktabs,graphicx}), shrunk to the page width only "
            "when wider; the CSV is every scenario's leaderboard CSV, concatenated."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench combined-table --tables "
            "results/demo-40x40/tables/leaderboard_*.csv "
            "--out-csv results/demo-40x40/tables/leaderboard_all.csv "
            "--out-md results/demo-40x40/tables/leaderboard_all.md "
            "--out-tex results/demo-40x40/tables/leaderboard_all.tex"
        ),
    )
    parser.add_argument(
        "--tables", type=Path, nargs="+", required=True, help="leaderboard CSV of each scenario"
    )
    parser.add_argument("--out-csv", type=Path, required=True, help="all rows, long format (.csv)")
    parser.add_argument("--out-md", type=Path, required=True, help="Markdown table (.md)")
    parser.add_argument("--out-tex", type=Path, required=True, help="LaTeX table (.tex)")
    parser.set_defaults(handler=_run)


def read_leaderboards(paths: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """Read leaderboard CSVs into scenario → table, in the order given.

    Raises:
        DataFileError: for an unreadable file, missing columns, several scenarios in one file or
            one scenario in several files (naming the file).
    """
    from ssibench.report.inputs import read_table

    tables: dict[str, pd.DataFrame] = {}
    for path in paths:
        table = read_table(path, "leaderboard")
        missing = [c for c in LEADERBOARD_COLUMNS if c not in table.columns]
        scenarios = table["scenario"].astype(str).unique() if "scenario" in table else []
        if missing or len(scenarios) != 1:
            what = f"no column(s) {', '.join(missing)}" if missing else "not one scenario"
            raise DataFileError(f"{path}: {what}; {rebuild_hint(path)}")
        if scenarios[0] in tables:
            raise DataFileError(f"{path}: scenario {scenarios[0]!r} was already given by a file")
        tables[str(scenarios[0])] = table
    return tables


def _run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ssibench.report.render import combined_latex, combined_markdown

    tables = read_leaderboards(args.tables)
    with atomic_path(args.out_csv) as tmp:
        pd.concat(tables.values(), ignore_index=True).to_csv(tmp, index=False)
    atomic_write_text(args.out_md, combined_markdown(tables))
    atomic_write_text(args.out_tex, combined_latex(tables))
    print(f"wrote {args.out_csv}, {args.out_md} and {args.out_tex}", file=sys.stderr)
