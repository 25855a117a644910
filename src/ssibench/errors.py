"""Errors a user can fix, and the one hint every "rebuild this file" message gives.

All derive from ``ValueError`` (or ``OSError`` for writes) so library callers can catch them
generically; the CLI prints them as one line on stderr and exits with status 2 (anything else
keeps its traceback).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "USER_ERRORS",
    "ConfigError",
    "DataFileError",
    "RunLockedError",
    "TrainingDivergedError",
    "WriteError",
    "rebuild_hint",
]


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


def rebuild_hint(path: Path | str) -> str:
    """The command that rebuilds the workflow output ``path`` even though the file exists.

    ``--force`` reruns the job of the named target although its output is present (a plain
    ``snakemake <path>`` would answer "Nothing to be done" for a truncated file); jobs downstream
    are then rerun because their input is newer. Add the ``--configfile`` of the run.
    """
    return f"rebuild it with `snakemake --cores all --force {path}` (and the run's --configfile)"
