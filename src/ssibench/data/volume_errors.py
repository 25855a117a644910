"""The error of one bad raw volume, shared by every reader of raw files.

Its own module so that the readers (:mod:`ssibench.data.fastmri`, :mod:`ssibench.data.kspace`,
:mod:`ssibench.data.images`) and the size checks they call (:mod:`ssibench.data.limits`) can all
raise it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from ssibench.errors import DataFileError

__all__ = ["BAD_VOLUME_FIX", "BadVolumeError"]

#: The fix every message about one bad raw volume ends with.
BAD_VOLUME_FIX = "re-download or regenerate it, or remove it from the raw-data folder"


class BadVolumeError(DataFileError):
    """A raw volume is unreadable or malformed; keeps ``path`` and ``reason`` for batch reports.

    ``str(error)`` is ``"<path>: <reason>; <fix>"``, the fix being :data:`BAD_VOLUME_FIX`;
    :func:`report_bad_volumes` lists the ``reason`` of every bad file at once.

    >>> error = BadVolumeError("raw/a.h5", "no dataset 'kspace' (found: nothing)")
    >>> (error.path.name, error.reason)
    ('a.h5', "no dataset 'kspace' (found: nothing)")
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}; {BAD_VOLUME_FIX}")

    def __reduce__(self) -> tuple[type[BadVolumeError], tuple[Path, str]]:
        """Pickle from (path, reason), the constructor's arguments, not from the message."""
        return (type(self), (self.path, self.reason))
