"""The text of the leaderboards' cells, shared by the Markdown and the LaTeX tables.

Layout of every table, as in the paper: the untrained baselines (zero-filled) first, then the
self-supervised methods by ascending PSNR, then the supervised upper bound in parentheses
(:func:`groups`). ``†`` marks a method whose per-slice PSNR differs from the best self-supervised
method's (paired Wilcoxon signed-rank test, p < 0.05); ``§`` marks an external run (config
``external_runs``), explained under the table only when one is present.

Numbers: PSNR with 2 decimals, SSIM with 4 and no leading zero (.7862), NMSE with 4; a negative
number starts with a true minus sign (:data:`MINUS`, U+2212, which LaTeX sets as ``$-$``), never a
hyphen; a missing one is an en dash. Bold (:func:`bold_rows`) goes column by column: the highest
PSNR, the highest SSIM and the lowest NMSE among the self-supervised methods, each on its own, so
the best PSNR and the best SSIM may sit on different rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ssibench.methods import METHODS
from ssibench.report.published import PUBLISHED_SOURCE
from ssibench.report.stats import SIGNIFICANCE_LEVEL

__all__ = [
    "BOLD_NOTE",
    "DAGGER",
    "DASH",
    "EXTERNAL_MARK",
    "EXTERNAL_NOTE",
    "GROUP_NAMES",
    "MINUS",
    "Cell",
    "bold_rows",
    "combined_cells",
    "combined_groups",
    "combined_note",
    "external_note",
    "footnote",
    "groups",
    "missing",
    "nmse_text",
    "psnr_text",
    "row_label",
    "row_of",
    "scenario_cells",
    "scenario_header",
    "signed_text",
    "ssim_text",
]

DAGGER = "†"
#: Mark of an external run's label, and the note explaining it.
EXTERNAL_MARK = "§"
EXTERNAL_NOTE = (
    f"{EXTERNAL_MARK}: external run (config external_runs): made outside this workflow, or "
    "trained on another scenario's data (transfer)."
)
#: The minus sign of negative numbers (U+2212); the CSVs keep plain ``-``.
MINUS = "−"
#: The text of a missing number.
DASH = "–"
#: Group names, in table order (:func:`groups`); Markdown prints them as group rows.
GROUP_NAMES = ("Baselines", "Self-supervised", "Supervised")
#: Metrics printed in bold where they are best: column → (decimals, whether higher is better).
BOLD_METRICS = {"psnr_mean": (2, True), "ssim_mean": (4, True), "nmse_mean": (4, False)}
#: What bold means, for the notes under the tables.
BOLD_NOTE = (
    "Bold: best self-supervised value of each column (highest PSNR and SSIM, lowest NMSE; "
    "ties at the printed precision all bold)."
)


@dataclass(frozen=True)
class Cell:
    """One table cell: plain text, whether it is bold, and a mark set after the bold text."""

    text: str
    bold: bool = False
    mark: str = ""


def missing(value: object) -> bool:
    """Whether ``value`` is a missing number (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _minus(text: str) -> str:
    """A printed number with :data:`MINUS` for its leading hyphen; a negative zero loses it."""
    if not text.startswith("-"):
        return text
    return text[1:] if float(text) == 0 else MINUS + text[1:]


def psnr_text(value: float) -> str:
    """PSNR with 2 decimals, ``–`` for NaN."""
    return DASH if missing(value) else _minus(f"{value:.2f}")


def ssim_text(value: float) -> str:
    """SSIM as the paper prints it: 4 decimals without the leading zero (.7862); ``–`` for NaN."""
    return DASH if missing(value) else _minus(re.sub(r"^(-?)0\.", r"\1.", f"{value:.4f}"))


def nmse_text(value: float) -> str:
    """NMSE with 4 decimals, ``–`` for NaN."""
    return DASH if missing(value) else _minus(f"{value:.4f}")


def signed_text(value: float, digits: int) -> str:
    """A difference with its sign (+1.20, −3.40), unsigned when it rounds to zero; ``–`` for NaN."""
    if missing(value):
        return DASH
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else _minus(text)  # "+0.00" and "-0.00" print "0.00"


def _is_external(value: object) -> bool:
    """An ``external`` cell: True, False, or NaN in a scenario without external runs."""
    return not missing(value) and bool(value)


def row_label(row: pd.Series) -> str:
    """The row's label, marked when it is an external run (the column exists only then)."""
    return str(row["label"]) + (EXTERNAL_MARK if _is_external(row.get("external")) else "")


def external_note(tables: Sequence[pd.DataFrame]) -> str:
    """A space and :data:`EXTERNAL_NOTE` when a table has an external run, else ``""``."""
    external = any(_is_external(v) for table in tables for v in table.get("external", ()))
    return f" {EXTERNAL_NOTE}" if external else ""


def _self_supervised(table: pd.DataFrame) -> pd.Series:
    return table["trains"].astype(bool) & ~table["supervised"].astype(bool)


def groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(name, rows) of the untrained baselines, the self-supervised and the supervised methods.

    Names are those of :data:`GROUP_NAMES`; empty groups are left out.
    """
    baselines = table[~table["trains"].astype(bool)]
    supervised = table[table["supervised"].astype(bool)]
    parts = (baselines, table[_self_supervised(table)], supervised)
    return [(name, part) for name, part in zip(GROUP_NAMES, parts, strict=True) if not part.empty]


def bold_rows(table: pd.DataFrame) -> dict[str, set[Hashable]]:
    """Index labels of the bold cells of each :data:`BOLD_METRICS` column.

    The scope is that of the paper's bold row, the best self-supervised method
    (:func:`~ssibench.report.leaderboard.best_self_supervised`): trained, unsupervised methods.
    Each column is judged on its own, at the precision it is printed with, so every method tied
    with the best is bold; a column with no value, or a table without self-supervised methods,
    has none.
    """
    candidates = table[_self_supervised(table)]
    bold: dict[str, set[Hashable]] = {}
    for column, (digits, higher) in BOLD_METRICS.items():
        values = candidates[column].dropna() if column in candidates else pd.Series(dtype=float)
        printed = {index: float(f"{value:.{digits}f}") for index, value in values.items()}
        best = (max if higher else min)(printed.values(), default=None)
        bold[column] = {index for index, value in printed.items() if value == best}
    return bold


def footnote(table: pd.DataFrame) -> str:
    """The note under a scenario's table: statistics, bold, ``†``, the paper's source and Δ."""
    n_slices = " / ".join(map(str, sorted(set(table["n_slices"].tolist()))))
    seeds = sorted(set(table["n_seeds"].tolist()))
    best = table[table["best"].astype(bool)]
    test = (
        f" {DAGGER}: differs from {best['label'].iloc[0]} in PSNR (paired Wilcoxon signed-rank "
        f"test over test slices, p < {SIGNIFICANCE_LEVEL:g})."
        if not best.empty
        else ""
    )
    return (
        f"Mean ± standard deviation over {n_slices} test slices (SSIBench metric mode), "
        f"{' / '.join(map(str, seeds))} training seed{'' if seeds == [1] else 's'}"
        f"{' (± over seeds in the seed columns)' if max(seeds) > 1 else ''}. {BOLD_NOTE}"
        f"{test} Paper: {PUBLISHED_SOURCE}; Δ = ours − paper." + external_note([table])
    )


def scenario_header(multi_seed: bool) -> list[str]:
    """Column names of a scenario's table (the seed columns only with several seeds)."""
    header = ["Method", "PSNR (dB)", "SSIM", "NMSE", "Paper PSNR", "Δ PSNR", "Paper SSIM"]
    if multi_seed:
        header[4:4] = ["PSNR seed std", "SSIM seed std"]
    return header


def scenario_cells(
    row: pd.Series, multi_seed: bool, bold: Mapping[str, set[Hashable]]
) -> list[Cell]:
    """The cells of one leaderboard row; the PSNR cell is marked † when it differs from the best.

    Args:
        row: a row of :func:`~ssibench.report.leaderboard.build_leaderboard`'s table.
        multi_seed: whether the table has the seed columns.
        bold: :func:`bold_rows` of the table.
    """

    def is_bold(column: str) -> bool:
        return row.name in bold.get(column, set())

    cells = [
        Cell(row_label(row)),
        Cell(
            f"{psnr_text(row['psnr_mean'])} ± {psnr_text(row['psnr_std'])}",
            is_bold("psnr_mean"),
            DAGGER if row["differs_from_best"] else "",
        ),
        Cell(f"{ssim_text(row['ssim_mean'])} ± {ssim_text(row['ssim_std'])}", is_bold("ssim_mean")),
        Cell(f"{nmse_text(row['nmse_mean'])} ± {nmse_text(row['nmse_std'])}", is_bold("nmse_mean")),
        Cell(psnr_text(row["psnr_published"])),
        Cell(signed_text(row["psnr_diff"], 2)),
        Cell(ssim_text(row["ssim_published"])),
    ]
    if multi_seed:
        seed_cells = [Cell(DASH), Cell(DASH)]
        if row["n_seeds"] > 1:
            seed_cells = [
                Cell(psnr_text(row["psnr_seed_std"])),
                Cell(ssim_text(row["ssim_seed_std"])),
            ]
        cells[4:4] = seed_cells
    return cells


def combined_groups(tables: Sequence[pd.DataFrame]) -> list[tuple[str, pd.DataFrame]]:
    """One row per method over all scenarios, grouped as :func:`groups`, in registry order."""
    union = pd.concat(tables, ignore_index=True).drop_duplicates("method")
    order = {name: index for index, name in enumerate(METHODS)}
    union = union.assign(order=union["method"].map(order).fillna(len(order)))
    return groups(union.sort_values("order", kind="stable"))


def row_of(table: pd.DataFrame, method: str) -> pd.Series | None:
    """The row of ``method`` in ``table`` (its index label kept as ``name``), None if absent."""
    rows = table[table["method"] == method]
    return None if rows.empty else rows.iloc[0]


def combined_cells(row: pd.Series, bold: Mapping[str, set[Hashable]]) -> tuple[Cell, Cell, str]:
    """PSNR (marked † when it differs from the best), SSIM and paper PSNR (``""`` if none).

    Args:
        row: a method's row of one scenario's table (:func:`row_of`).
        bold: :func:`bold_rows` of that table.
    """
    psnr = Cell(
        psnr_text(row["psnr_mean"]),
        row.name in bold["psnr_mean"],
        DAGGER if row["differs_from_best"] else "",
    )
    ssim = Cell(ssim_text(row["ssim_mean"]), row.name in bold["ssim_mean"])
    paper = "" if missing(row["psnr_published"]) else psnr_text(row["psnr_published"])
    return psnr, ssim, paper


def combined_note(tables: Sequence[pd.DataFrame]) -> str:
    """The note under (or caption of) the combined table of the scenarios' ``tables``."""
    return (
        "Test-set mean PSNR (dB) and SSIM (SSIBench metric mode) of each method in each scenario, "
        "paper PSNR in brackets. Bold: best self-supervised PSNR and, on its own, best "
        "self-supervised SSIM of each scenario (ties at the printed precision all bold); "
        f"{DAGGER}: differs in PSNR from the scenario's best self-supervised method (paired "
        f"Wilcoxon signed-rank test over test slices, p < {SIGNIFICANCE_LEVEL:g}); {DASH}: not "
        f"run in the scenario. Paper: {PUBLISHED_SOURCE}." + external_note(tables)
    )
