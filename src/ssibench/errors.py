"""Errors a user can fix: a bad configuration value or a bad input file.

Both derive from ``ValueError`` so library callers can catch them generically; the CLI prints them
as one line on stderr and exits with status 2 (anything else keeps its traceback).
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataFileError"]


class ConfigError(ValueError):
    """A configuration key has a bad value; the message names the dotted key, value and fix."""


class DataFileError(ValueError):
    """An input file is missing, unreadable or malformed. The message names the path and the fix."""
