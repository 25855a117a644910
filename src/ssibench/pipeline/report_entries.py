"""How ``snakemake --report`` shows each table and figure, and the sample figure's zoom option.

:func:`figure_entry` and :func:`table_entry` give the arguments of Snakemake's ``report()`` flag
for one output of a report rule: its path, its caption (a file of ``workflow/report/``, relative
to the rule files), the category and subcategory it is filed under and its labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssibench.pipeline.plan import FIGURES

__all__ = ["TABLE_FORMATS", "figure_entry", "table_entry", "zoom_option"]

#: Leaderboard file formats, by extension, as the report labels them.
TABLE_FORMATS = {"csv": "CSV", "md": "Markdown", "tex": "LaTeX"}

Entry = tuple[str, dict[str, Any]]


def figure_entry(results: str, kind: str) -> Entry:
    """(path, ``report()`` keywords) of the PNG of figure ``kind``, filed under its scenario.

    Example:
        >>> path, keywords = figure_entry("results/demo-40x40", "curves")
        >>> path, keywords["category"]
        ('results/demo-40x40/figures/curves_{scenario}.png', 'Scenario {scenario}')
    """
    return f"{results}/figures/{kind}_{{scenario}}.png", {
        "caption": f"../report/{kind}.rst",
        "category": "Scenario {scenario}",
        "subcategory": FIGURES[kind],
        "labels": {"figure": FIGURES[kind]},
    }


def table_entry(results: str, table: str, extension: str) -> Entry:
    """(path, ``report()`` keywords) of leaderboard ``table`` (``{scenario}`` or ``all``)."""
    path = f"{results}/tables/leaderboard_{table}.{extension}"
    label = {"format": TABLE_FORMATS[extension]}
    if table == "all":
        return path, {
            "caption": "../report/leaderboard_all.rst",
            "category": "All scenarios",
            "labels": {"table": "all scenarios", **label},
        }
    return path, {
        "caption": "../report/leaderboard.rst",
        "category": "Scenario {scenario}",
        "subcategory": "Leaderboard",
        "labels": {"table": "leaderboard", **label},
    }


def zoom_option(config: Mapping[str, Any]) -> str:
    """``--zoom ROW COL SIZE`` from ``report.zoom``, or nothing (the figure picks its region).

    Example:
        >>> zoom_option({"report": {"zoom": [0.2, 0.3, 0.25]}})
        '--zoom 0.2 0.3 0.25'
    """
    zoom = config["report"]["zoom"]
    return "" if zoom is None else "--zoom " + " ".join(str(value) for value in zoom)
