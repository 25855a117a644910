"""Package attributes imported on first use (PEP 562), for the packages whose imports are heavy."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: dict[str, Any], table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` that import each name of ``table`` on first use.

    Args:
        namespace: the module's ``globals()``; a name, once imported, is cached there.
        table: public name → the module that defines it.

    Example:
        >>> namespace = {"__name__": "demo"}
        >>> getattr_, _ = lazy_attributes(namespace, {"sqrt": "math"})
        >>> getattr_("sqrt")(4.0), "sqrt" in namespace
        (2.0, True)
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__
