"""Progress lines on stderr: one line per epoch, simulated chunk or tenth of the evaluated slices.

A bar that redraws itself (tqdm) turns itself off when stderr is not a terminal, which is the
case for every workflow job (stderr goes to ``logs/…``): a long job then gives no sign of life.
These lines are plain text, flushed at once, so a log file shows them as they happen and a
terminal shows the same. ``ssibench --quiet`` silences them (:func:`set_quiet`); errors and
warnings are printed with ``print`` and never go through here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["counted", "format_duration", "is_quiet", "progress", "set_quiet"]

_Item = TypeVar("_Item")
#: Progress lines a loop over items prints at most (one per tenth).
LINES_PER_LOOP = 10

#: Whether progress lines are silenced; one switch for the whole process (the CLI sets it once).
_quiet = False


def set_quiet(flag: bool) -> None:
    """Silence (``True``) or show (``False``) the progress lines of this process."""
    global _quiet
    _quiet = bool(flag)


def is_quiet() -> bool:
    """Whether progress lines are silenced."""
    return _quiet


def progress(message: str) -> None:
    """Write ``message`` as one line to stderr and flush it, unless silenced.

    ``sys.stderr`` is looked up at each call, so redirections made after import (pytest's capture,
    ``contextlib.redirect_stderr``) see the lines.
    """
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


def counted(items: Sequence[_Item], label: str, unit: str) -> Iterator[_Item]:
    """Yield ``items``, writing ``<label>: k/n <unit>`` each time another tenth is done."""
    total = len(items)
    marks = {
        max(1, round(total * tenth / LINES_PER_LOOP)) for tenth in range(1, LINES_PER_LOOP + 1)
    }
    for done, item in enumerate(items, start=1):
        yield item
        if done in marks:
            progress(f"{label}: {done}/{total} {unit}")


def format_duration(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS`` (e.g. ``0:29:40``), rounded to the second; never negative."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
