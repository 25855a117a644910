"""The code of the table and figure rules: the report modules each command runs, as rule inputs.

As inputs they make Snakemake redo a table or figure (and nothing upstream) when its code is
edited. :func:`report_modules` derives them from the command's own imports (the ``ssibench.cli``
module, followed through ``ssibench.report``), so a check that moves between modules stays an
input; a figure rule keeps only its own plotting module out of the figure modules the ``figures``
command imports, so editing one figure redoes that figure alone.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

__all__ = ["FIGURE_MODULES", "report_files", "report_modules"]

REPORT = "ssibench.report"
#: Figure kind → its plotting module in :mod:`ssibench.report`.
FIGURE_MODULES = {
    "samples": "fig_samples",
    "distributions": "fig_distributions",
    "curves": "fig_curves",
    "published": "fig_published",
    "cost": "fig_cost",
}


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"no source for module {module!r}")
    return Path(spec.origin)


@functools.cache
def _report_stems() -> frozenset[str]:
    """The module names of the ``ssibench.report`` package (its ``*.py`` files)."""
    package = _source(REPORT).parent
    return frozenset(path.stem for path in package.glob("*.py") if path.stem != "__init__")


def _report_imports(module: str) -> set[str]:
    """The ``ssibench.report`` modules ``module`` imports anywhere (function bodies included).

    ``from ssibench.report import x`` counts ``ssibench.report`` (whose ``__init__`` re-exports)
    and, when ``x`` is a module, ``ssibench.report.x``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source(module).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] != REPORT.split("."):
                continue
            if len(parts) == 2:
                found.add(REPORT)
            elif parts[2] in _report_stems():
                found.add(f"{REPORT}.{parts[2]}")
    return found


@functools.cache
def report_modules(command: str) -> tuple[str, ...]:
    """Short names of the report modules ``ssibench <command>`` runs, e.g. ``("cells", ...)``.

    The closure of the ``ssibench.cli.<command>`` module's imports within ``ssibench.report``;
    the package ``__init__`` is followed (it re-exports) but not listed.
    """
    todo = [f"ssibench.cli.{command.replace('-', '_')}"]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_report_imports(module) - seen)
    return tuple(sorted(m.rpartition(".")[2] for m in seen if m.startswith(REPORT + ".")))


def report_files(command: str, figure: str | None = None) -> list[str]:
    """Source files of :func:`report_modules` for a rule; a figure rule drops the other figures.

    Args:
        command: ``tables``, ``combined-table`` or ``figures``.
        figure: with ``figures``, the figure kind of the rule (a key of :data:`FIGURE_MODULES`).
    """
    modules = report_modules(command)
    if figure is not None:
        others = set(FIGURE_MODULES.values()) - {FIGURE_MODULES[figure]}
        modules = tuple(m for m in modules if m not in others)
    return [str(_source(f"{REPORT}.{module}")) for module in modules]
