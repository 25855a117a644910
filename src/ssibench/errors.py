"""Errors a user can fix, and the one hint every "rebuild this file" message gives.

All derive from ``ValueError`` (or ``OSError`` for writes) so library callers can catch them
generically; the CLI prints them as one line on stderr and exits with status 2 (anything else
keeps its traceback).

The hint (:func:`rebuild_hint`) names ``snakemake <path>`` only for a path the workflow writes
(:func:`workflow_target`); for any other path, e.g. a store passed by hand to ``ssibench train``,
Snakemake cannot build it, so the hint says what to pass instead and which target builds one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "CONFIG_HINT",
    "USER_ERRORS",
    "ConfigError",
    "DataFileError",
    "RunLockedError",
    "TrainingDivergedError",
    "WriteError",
    "closest_hint",
    "rebuild_hint",
    "workflow_target",
]


#: How every config error of the workflow's checks ends.
CONFIG_HINT = "fix it in the config file (or --config) and re-run"


class ConfigError(ValueError):
    """A configuration key has a bad value; the message names the dotted key, value and fix."""


class DataFileError(ValueError):
    """An input file is missing, unreadable or malformed. The message names the path and the fix."""


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss or gradient; nothing was written for the run."""


class RunLockedError(ValueError):
    """Another process holds the lock of a run folder (a second trainer on the same run)."""


class WriteError(OSError):
    """An output could not be written (disk full, permissions, ...); names the path and cause."""


#: The exceptions the CLI reports as one line with exit status 2.
USER_ERRORS = (ConfigError, DataFileError, TrainingDivergedError, RunLockedError, WriteError)


#: The folders the workflow writes, relative to its working directory (``PLAN`` paths).
_WORKFLOW_FOLDERS = re.compile(r"(?:data/(?:raw|slices|measurements)|results)/.")
#: A run folder of the workflow, with placeholders.
_RUN = "results/<dataset>/runs/<scenario>/<method>/seed<k>"
#: The workflow target that makes a file of this name, shown for a path outside the workflow.
_TARGET_OF_NAME = {
    name: f"{_RUN}/{name}"
    for name in ("model.pt", "run.json", "train_log.csv", "metrics.csv", "samples.npz")
}
_TARGET_OF_NAME["checkpoint.pt"] = f"{_RUN}/model.pt"  # written by the same train job
_MEASUREMENTS = "data/measurements/<dataset>/<scenario>.h5"
_SLICES = "data/slices/<dataset>.h5"


def workflow_target(path: Path | str) -> str | None:
    """``path`` as a Snakemake target if the workflow writes it, else None.

    A workflow output lies under ``data/raw``, ``data/slices``, ``data/measurements`` or
    ``results`` of the working directory; an absolute path is taken relative to the current
    directory (where Snakemake runs its jobs) when it lies inside it.
    """
    path = Path(path)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return None
    target = path.as_posix()
    if ".." in path.parts or not _WORKFLOW_FOLDERS.match(target):
        return None
    return target


def _build_command(name: str, force: bool) -> str | None:
    """The ``snakemake`` command that builds the workflow's file named like ``name``, if any."""
    flag = " --force" if force else ""
    if name.endswith(".h5"):  # a measurement store, or the slices store it is simulated from
        return f"`snakemake --cores all{flag} {_MEASUREMENTS}` (a slices store: {_SLICES})"
    target = _TARGET_OF_NAME.get(name)
    if target is None and name.startswith("leaderboard_"):
        target = f"results/<dataset>/tables/{name}"
    return None if target is None else f"`snakemake --cores all{flag} {target}`"


def rebuild_hint(path: Path | str) -> str:
    """What to do about the missing or broken file ``path``: the command that (re)builds it.

    For a workflow output (:func:`workflow_target`): ``snakemake --cores all --force <path>`` when
    the file exists, as ``--force`` reruns the job of the named target although its output is
    present (a plain ``snakemake <path>`` would answer "Nothing to be done" for a truncated file)
    and jobs downstream are then rerun because their input is newer; plain ``snakemake --cores
    all <path>`` when it is missing. Add the ``--configfile`` of the run.

    For any other path Snakemake has no rule: the hint says to pass an existing file (or to write
    this one again with the step that made it) and names the workflow target that builds one.
    """
    target, exists = workflow_target(path), Path(path).exists()
    if target is not None:
        verb, flag = ("rebuild", " --force") if exists else ("build", "")
        return f"{verb} it with `snakemake --cores all{flag} {target}` (and the run's --configfile)"
    command = _build_command(Path(path).name, force=exists)
    if exists:
        fix = "write it again with the `ssibench` step that made it"
        return fix if command is None else f"{fix}, or use the workflow's own: {command}"
    fix = "pass an existing one"  # callers have said what is missing ("no such store")
    return fix if command is None else f"{fix}, or build one with {command}"


def closest_hint(name: str, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to a misspelt ``name``, else ``""``.

    Example:
        >>> closest_hint("ssdo", ["ssdu", "ei"])
        " (did you mean 'ssdu'?)"
    """
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
