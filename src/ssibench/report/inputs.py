"""The inputs of the tables and figures, read and checked: metrics files, run records, tables.

What ``ssibench tables``, ``figures``, ``combined-table`` and ``import-metrics`` read goes through
here, so the checks are library code (and inputs of the rules that run those commands): a
``metrics.csv`` must have the columns ``ssibench evaluate`` writes and cover exactly the store's
test slices (:func:`read_metrics`), a ``run.json`` must belong to a run trained on the store
(:func:`read_records`), and a run made by other code than the installed one is named
(:func:`stale_code_notes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssibench.errors import DataFileError, rebuild_hint

if TYPE_CHECKING:  # pandas is imported by the functions that use it: ~0.7 s
    import pandas as pd

    from ssibench.data.identity import StoreIdentity

__all__ = [
    "check_metrics_table",
    "read_metrics",
    "read_records",
    "read_table",
    "stale_code_notes",
    "store_physics",
]


def read_table(path: Path, what: str, hint: str | None = None, **options: Any) -> Any:
    """Read a CSV/TSV written by a workflow step as a DataFrame (``options`` go to read_csv).

    ``hint`` ends the message (default: the command that rebuilds ``path``; a file made outside
    the workflow needs another fix).

    Raises:
        DataFileError: for a missing, empty, unparsable or non-UTF-8 file, naming it and the fix.
    """
    import pandas as pd  # here, not at module level: `ssibench --help` stays fast

    hint = rebuild_hint(path) if hint is None else hint
    try:
        return pd.read_csv(path, **options)
    except UnicodeDecodeError as error:  # e.g. saved as Latin-1 by a spreadsheet
        raise DataFileError(
            f"{path}: cannot read the {what}: not UTF-8 text ({error}); save it as UTF-8, or {hint}"
        ) from error
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataFileError(f"{path}: cannot read the {what} ({error}); {hint}") from error


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
    from ssibench.report.leaderboard import EXTERNAL_LABEL

    store = store_identity(data)
    frames = []
    for path in paths:
        fix = rebuild_hint(path) if hint is None else hint
        text_columns = {"store_hash": str, "code_hash": str, EXTERNAL_LABEL: str}
        frame = read_table(path, "metrics", fix, dtype=text_columns)
        check_metrics_table(frame, path, scenario, store, fix)
        frames.append(frame)
    return frames


def check_metrics_table(
    frame: pd.DataFrame, path: Path, scenario: str, store: StoreIdentity, fix: str
) -> None:
    """The checks of :func:`read_metrics` on one table, read or in memory (``path`` names it).

    Raises:
        DataFileError: missing columns, no rows, rows of another scenario, or what
            :func:`ssibench.report.checks.check_metrics` refuses; the message ends with ``fix``.
    """
    from ssibench.report.checks import check_metrics
    from ssibench.report.leaderboard import METRICS_COLUMNS

    missing = [column for column in METRICS_COLUMNS if column not in frame.columns]
    if missing or frame.empty:
        what = f"no column(s) {', '.join(missing)}" if missing else "no rows"
        raise DataFileError(f"{path}: {what}; {fix}")
    others = sorted(set(frame["scenario"].astype(str)) - {scenario})
    if others:
        raise DataFileError(
            f"{path}: rows of scenario(s) {', '.join(others)}, expected only {scenario!r}; {fix}"
        )
    check_metrics(frame, path, store, fix)


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
    from ssibench.report.checks import stale_code_runs
    from ssibench.report.leaderboard import EXTERNAL_LABEL

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


def store_physics(path: Path) -> str | None:
    """The physics kind a measurement store was simulated with (its ``physics`` attribute)."""
    from ssibench.data.identity import open_store

    with open_store(path) as handle:
        value = handle.attrs.get("physics")
    return None if value is None else (value.decode() if isinstance(value, bytes) else str(value))
