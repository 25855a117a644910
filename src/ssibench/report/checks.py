"""Checks that a run's ``metrics.csv`` may be tabulated: same store, every test slice, finite.

A leaderboard or figure refuses a run whose metrics were computed on another measurement store
(``store_hash`` differs from the store's ``content_hash``), that does not cover exactly the store's
test slices once per metric mode, or that holds a non-finite metric — a partial or diverged run
would otherwise become a bold "best" with ± 0.00. Runs made by other code than the installed one
are not refused but listed (:func:`stale_code_runs`), and the tables mark them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ssibench.data.identity import StoreIdentity
from ssibench.errors import DataFileError, rebuild_hint
from ssibench.evaluation.functional import METRIC_MODES

__all__ = ["check_metrics", "stale_code_runs"]

#: Metric columns that must be finite (the method's and the zero-filled baseline's).
FINITE_COLUMNS = ("psnr", "ssim", "nmse", "zf_psnr")
#: How many missing slice numbers a message lists before it stops.
LISTED_SLICES = 10


def _listed(values: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in values[:LISTED_SLICES])
    return shown + (f", … ({len(values)} in all)" if len(values) > LISTED_SLICES else "")


def _whole_numbers(frame: pd.DataFrame, column: str, path: Path, hint: str) -> pd.Series:
    """``frame[column]`` as int64, refusing text, blanks and fractions (a file made elsewhere).

    ``astype(int)`` would raise a traceback on text and silently truncate 1.5 to 1.
    """
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(values) & (values == np.round(values))))
    if bad.size:
        rows = [int(row) + 1 for row in bad]  # counted from 1, after the header
        value = frame[column].iloc[bad[0]]
        value = value.item() if isinstance(value, np.generic) else value
        shown = "an empty value" if pd.isna(value) else repr(value)
        raise DataFileError(
            f"{path}: column {column!r} holds {shown} (data row(s) {_listed(rows)}), expected "
            f"whole numbers; {hint}"
        )
    return pd.Series(values.astype(np.int64), index=frame.index)


def check_metrics(
    frame: pd.DataFrame, path: Path, store: StoreIdentity, hint: str | None = None
) -> None:
    """Raise ``DataFileError`` unless ``frame`` (one ``metrics.csv``) may be tabulated.

    Args:
        frame: the rows of ``path``, with the columns ``ssibench evaluate`` writes.
        path: the file, for messages.
        store: identity of the scenario's measurement store.
        hint: how to fix the file, ending each message (default: the command that rebuilds it,
            for a workflow output; a file made elsewhere needs another fix).

    Raises:
        DataFileError: naming ``path``, what is wrong (other store, a sample or seed that is not
            a whole number, missing or repeated slices, a missing metric mode, non-finite
            values) and the fix.
    """
    hint = rebuild_hint(path) if hint is None else hint
    if "store_hash" not in frame.columns:
        raise DataFileError(
            f"{path}: no column 'store_hash' (written by an older ssibench); {hint}"
        )
    hashes = sorted(set(frame["store_hash"].astype(str)))
    if hashes != [store.content_hash]:
        found = ", ".join(h[:12] for h in hashes)
        raise DataFileError(
            f"{path}: evaluated on another measurement store (content hash {found}), not on "
            f"{store.path} ({store.content_hash[:12]}); {hint}"
        )
    sample = _whole_numbers(frame, "sample", path, hint)
    _whole_numbers(frame, "seed", path, hint)  # the tables group and print runs by seed
    expected = set(range(store.n_test))
    for mode in METRIC_MODES:
        samples = sample[frame["mode"] == mode].tolist()
        missing = sorted(expected - set(samples))
        if missing:
            raise DataFileError(
                f"{path}: covers {len(expected) - len(missing)} of the {store.n_test} test slices "
                f"of {store.path} in metric mode {mode!r} (missing slice(s) {_listed(missing)}); "
                f"{hint}"
            )
        extra = sorted(set(samples) - expected)
        repeated = sorted({s for s in samples if samples.count(s) > 1})
        if extra or repeated:
            what = (
                f"slice(s) {_listed(extra)} beyond the test split"
                if extra
                else (f"slice(s) {_listed(repeated)} more than once")
            )
            raise DataFileError(f"{path}: metric mode {mode!r} has {what}; {hint}")
    for column in FINITE_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            slices = sorted(set(sample[bad].tolist()))
            raise DataFileError(
                f"{path}: {column} is not finite for test slice(s) {_listed(slices)} (a diverged "
                f"or broken run); {hint}"
            )


def stale_code_runs(
    frames: Sequence[pd.DataFrame], current: dict[str, str]
) -> list[tuple[str, int, str, str]]:
    """Runs whose recorded code hash differs from the code installed now.

    Args:
        frames: one metrics table per run.
        current: method → code hash of the installed package
            (:func:`ssibench.provenance.code_hash`).

    Returns:
        (method, seed, recorded hash, current hash) for each such run.
    """
    stale = []
    for frame in frames:
        for (method, seed, recorded), _ in frame.groupby(["method", "seed", "code_hash"]):
            now = current.get(str(method))
            if now is not None and str(recorded) != now:
                stale.append((str(method), int(seed), str(recorded), now))
    return stale
