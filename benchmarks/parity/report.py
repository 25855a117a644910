"""Verdicts of the comparisons and the table (plain text or Markdown) with its summary line."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .common import TOL_GRAD, TOL_LOSS, Exact, Expectation

__all__ = ["Row", "format_table", "status", "summary", "verdict"]

EQUAL = "equal (float32)"
EXPECTATION = "equal in expectation"
EXPLAINED = "differs (documented)"
UNEXPLAINED = "differs (unexplained)"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    label: str
    counterpart: str
    outcome: Exact | Expectation
    seconds: float


def status(outcome: Exact | Expectation) -> str:
    """EQUAL, EXPECTATION, EXPLAINED or UNEXPLAINED."""
    if isinstance(outcome, Expectation):
        if outcome.equal:
            return EXPECTATION
        return EXPLAINED if outcome.known else UNEXPLAINED
    if outcome.equal:
        return EQUAL
    return EXPLAINED if outcome.known else UNEXPLAINED


def verdict(outcome: Exact | Expectation) -> str:
    """The verdict text of one comparison."""
    if isinstance(outcome, Expectation):
        if outcome.max_z is not None:
            z, threshold = outcome.max_z
            test = f"max |z| {z:.2f} {'<' if z <= threshold else '>'} {threshold:.2f}"
        else:
            inside = "∋" if outcome.low <= 0 <= outcome.high else "∌"
            test = f"95 % CI [{outcome.low:+.3g}, {outcome.high:+.3g}] {inside} 0"
        if outcome.equal:
            return f"{EXPECTATION} ({outcome.what}, {test}, n = {outcome.n})"
        return f"differs: {outcome.known or 'UNEXPLAINED'} ({test}, n = {outcome.n})"
    if outcome.equal:
        if outcome.tol_loss != TOL_LOSS or outcome.tol_grad != TOL_GRAD:
            return f"{EQUAL}, tolerance {max(outcome.tol_loss, outcome.tol_grad):.0e}"
        return EQUAL
    text = f"differs: {outcome.known or 'UNEXPLAINED'}"
    if outcome.adjusted is not None:
        removed, rel = outcome.adjusted
        agree = "equal" if outcome.explained else "still differs"
        text += f" [removing {removed}: {agree}, rel {rel:.1e}]"
    return text


def _number(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1e}"


def _cells(row: Row) -> list[str]:
    outcome = row.outcome
    grad = outcome.grad_rel if isinstance(outcome, Exact) else float("nan")
    return [
        row.label,
        row.counterpart,
        _number(outcome.abs_diff),
        _number(outcome.rel_diff),
        _number(grad),
        verdict(outcome),
    ]


HEADER = [
    "method",
    "DeepInverse counterpart",
    "|Δ loss|",
    "rel |Δ loss|",
    "max rel grad diff",
    "verdict",
]


def format_table(rows: list[Row], markdown: bool) -> str:
    """The comparison table, plain text (aligned columns) or Markdown."""
    cells = [_cells(row) for row in rows]
    if markdown:
        lines = [
            "| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
            for line in [HEADER, *cells]
        ]
        lines.insert(1, "|" + "---|" * len(HEADER))
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [HEADER, *cells]) for i in range(len(HEADER) - 1)]
    lines = []
    for line in [HEADER, *cells]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """The closing line: counts per status and the agreement ratio."""
    counts = Counter(status(row.outcome) for row in rows)
    agree = counts[EQUAL] + counts[EXPECTATION]
    return (
        f"summary: {len(rows)} comparisons against deepinv 0.5.0: {counts[EQUAL]} {EQUAL}, "
        f"{counts[EXPECTATION]} {EXPECTATION}, {counts[EXPLAINED]} {EXPLAINED}, "
        f"{counts[UNEXPLAINED]} {UNEXPLAINED}; agreement ratio {agree}/{len(rows)}, "
        f"explained ratio {agree + counts[EXPLAINED]}/{len(rows)}"
    )
