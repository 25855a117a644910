"""``ssibench tables``: the leaderboard of one scenario as CSV, Markdown and LaTeX."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssibench.cli.common import formatter, read_table
from ssibench.errors import ConfigError, DataFileError, rebuild_hint
from ssibench.io import atomic_path, atomic_write_text

if TYPE_CHECKING:  # pandas is imported by the commands that use it: ~0.7 s
    import pandas as pd

__all__ = [
    "add_data_argument",
    "add_parser",
    "parse_skipped",
    "read_metrics",
    "read_records",
    "stale_code_notes",
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


def read_metrics(
    paths: Sequence[Path], scenario: str, data: Path, hint: str | None = None
) -> list[pd.DataFrame]:
    """Read metrics.csv files, one DataFrame each, checked against the store ``data``.

    Each file must have the columns ``ssibench evaluate`` writes, rows of ``scenario`` only, and
    pass :func:`ssibench.report.checks.check_metrics` (same store, exactly its test slices, finite).
    An external run's file also has the column ``external_label``
    (:data:`ssibench.report.leaderboard.EXTERNAL_LABEL`).

    Args:
        paths: the files.
        scenario: the scenario every row must belong to.
        data: the scenario's measurement store.
        hint: the fix that ends each message (default: the command that rebuilds the file).

    Raises:
        DataFileError: naming the file, what is wrong and the fix.
    """
    from ssibench.data.identity import store_identity
    from ssibench.report import EXTERNAL_LABEL, METRICS_COLUMNS
    from ssibench.report.checks import check_metrics

    store = store_identity(data)
    frames = []
    for path in paths:
        fix = rebuild_hint(path) if hint is None else hint
        text_columns = {"store_hash": str, "code_hash": str, EXTERNAL_LABEL: str}
        frame = read_table(path, "metrics", fix, dtype=text_columns)
        missing = [column for column in METRICS_COLUMNS if column not in frame.columns]
        if missing or frame.empty:
            what = f"no column(s) {', '.join(missing)}" if missing else "no rows"
            raise DataFileError(f"{path}: {what}; {fix}")
        others = sorted(set(frame["scenario"].astype(str)) - {scenario})
        if others:
            raise DataFileError(
                f"{path}: rows of scenario(s) {', '.join(others)}, expected only {scenario!r}; "
                f"{fix}"
            )
        check_metrics(frame, path, store, fix)
        frames.append(frame)
    return frames


def stale_code_notes(
    frames: Sequence[pd.DataFrame],
    records: Sequence[Mapping[str, Any]] = (),
    physics: str | None = None,
) -> list[str]:
    """One note per run whose recorded code hash differs from the installed code's.

    The installed hash of a trained method covers the plugin model and physics its run record
    names (:func:`ssibench.provenance.component_modules`); a method without a record (no network)
    is hashed with the scenario's ``physics``. External runs are left out: their code is not the
    installed one by definition.
    """
    from ssibench.methods import get_method
    from ssibench.provenance import SHORT_HASH, code_hash, component_modules
    from ssibench.report import EXTERNAL_LABEL
    from ssibench.report.checks import stale_code_runs

    frames = [frame for frame in frames if EXTERNAL_LABEL not in frame.columns]
    methods = {str(m) for frame in frames for m in frame["method"].unique()}
    recorded_specs = {str(r.get("method")): r.get("config", {}) for r in records}
    current = {}
    for method in methods:
        spec = recorded_specs.get(method, {"scenario": {"physics": physics}})
        trains = method in recorded_specs and get_method(method).trains
        current[method] = code_hash(method, component_modules(spec, trains=trains))
    return [
        f"{method} seed {seed}: made by other code than the installed one (code hash "
        f"{recorded[:SHORT_HASH]}, installed {now[:SHORT_HASH]}); rerun it to compare like "
        "with like"
        for method, seed, recorded, now in stale_code_runs(frames, current)
    ]


def read_records(paths: Sequence[Path], data: Path) -> list[dict]:
    """Read the run records (``run.json``) of a scenario's trained runs, checked against ``data``.

    Raises:
        DataFileError: for an unreadable record, or one of a run trained on another store.
    """
    import json

    from ssibench.data.identity import store_identity

    store = store_identity(data)
    records = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise DataFileError(
                f"{path}: cannot read the run record ({error}); {rebuild_hint(path)}"
            ) from error
        trained_on = record.get("data", {}).get("training_hash")
        if trained_on != store.training_hash:
            raise DataFileError(
                f"{path}: the run was trained on other data (training hash {str(trained_on)[:12]}),"
                f" not on {data} ({store.training_hash[:12]}); {rebuild_hint(path)}"
            )
        records.append(record)
    return records


def _store_physics(path: Path) -> str | None:
    """The physics kind a measurement store was simulated with (its ``physics`` attribute)."""
    from ssibench.data.identity import open_store

    with open_store(path) as handle:
        value = handle.attrs.get("physics")
    return None if value is None else (value.decode() if isinstance(value, bytes) else str(value))


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
    from ssibench.report import build_leaderboard, scenario_latex, scenario_markdown
    from ssibench.report.render import setup_note

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
    stale = stale_code_notes(frames, records, _store_physics(args.data))
    for note in stale:
        print(f"ssibench tables: warning: {note}", file=sys.stderr)
    if stale:
        markdown += "\n" + "\n".join(f"‡ {note}." for note in stale) + "\n"
    atomic_write_text(args.out_md, markdown)
    atomic_write_text(args.out_tex, scenario_latex(table, args.scenario))
    print(f"wrote {args.out_csv}, {args.out_md} and {args.out_tex}", file=sys.stderr)
