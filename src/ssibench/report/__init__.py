"""Paper-grade outputs: leaderboards (CSV, Markdown, LaTeX) and figures from per-run results.

Modules: :mod:`~ssibench.report.leaderboard` (statistics), :mod:`~ssibench.report.stats`
(paired tests), :mod:`~ssibench.report.published` (the paper's numbers),
:mod:`~ssibench.report.render` (text tables), :mod:`~ssibench.report.style` and one ``fig_*``
module per figure, so that editing one figure's code reruns only that figure's rule.
"""

from ssibench.report.fig_samples import RunSamples, sample_figure
from ssibench.report.leaderboard import (
    EXTERNAL_LABEL,
    METRICS_COLUMNS,
    build_leaderboard,
    leaderboard_table,
    with_external,
)
from ssibench.report.published import published_leaderboards, with_published
from ssibench.report.render import (
    combined_latex,
    combined_markdown,
    scenario_latex,
    scenario_markdown,
)

__all__ = [
    "EXTERNAL_LABEL",
    "METRICS_COLUMNS",
    "RunSamples",
    "build_leaderboard",
    "combined_latex",
    "combined_markdown",
    "leaderboard_table",
    "published_leaderboards",
    "sample_figure",
    "scenario_latex",
    "scenario_markdown",
    "with_external",
    "with_published",
]
