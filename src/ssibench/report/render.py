r"""Leaderboards as text: paper-style Markdown here, LaTeX (booktabs) in :mod:`.latex`.

The cells, their groups and which of them are bold come from :mod:`ssibench.report.cells`: the
untrained baselines first, then the self-supervised methods by ascending PSNR, then the supervised
upper bound; in each column the best self-supervised value is bold (the best PSNR and the best
SSIM independently); ``†`` marks a PSNR that differs from the best self-supervised method's;
negative numbers have a true minus sign (U+2212). In Markdown each group opens with a row naming
it in italics (every row has the header's number of cells, so the table stays one GitHub table);
the LaTeX tables separate the groups with ``\midrule``. Published values follow ours, with the
difference. The setup note under a scenario's table is read from the runs' records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.cells import (
    DAGGER,
    DASH,
    EXTERNAL_MARK,
    EXTERNAL_NOTE,
    Cell,
    bold_rows,
    combined_cells,
    combined_groups,
    combined_note,
    footnote,
    groups,
    nmse_text,
    psnr_text,
    row_label,
    row_of,
    scenario_cells,
    scenario_header,
    ssim_text,
)
from ssibench.report.latex import combined_latex, scenario_latex

__all__ = [
    "DAGGER",
    "EXTERNAL_MARK",
    "EXTERNAL_NOTE",
    "combined_latex",
    "combined_markdown",
    "nmse_text",
    "psnr_text",
    "scenario_latex",
    "scenario_markdown",
    "setup_note",
    "ssim_text",
]


def _md_text(text: str) -> str:
    """``text`` safe in a Markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _md_cell(cell: Cell) -> str:
    text = _md_text(cell.text)
    return (f"**{text}**" if cell.bold else text) + cell.mark


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table_head(header: Sequence[str]) -> list[str]:
    return [_md_row(header), _md_row(["---"] * len(header))]


def _md_group_row(name: str, n_columns: int) -> str:
    """The row opening a group: its name in italics, the other cells empty."""
    return f"| *{name}* |" + " |" * (n_columns - 1)


def _skipped_note(skipped: Sequence[tuple[str, str]], methods: Mapping[str, MethodSpec]) -> str:
    if not skipped:
        return "Skipped in this scenario: none."
    notes = "; ".join(
        f"{methods[m].label if m in methods else m} (`{m}`): {reason}" for m, reason in skipped
    )
    return f"Skipped in this scenario: {notes}."


def scenario_markdown(
    table: pd.DataFrame,
    scenario: str,
    skipped: Sequence[tuple[str, str]] = (),
    methods: Mapping[str, MethodSpec] = METHODS,
) -> str:
    """One scenario's leaderboard as a Markdown table (see the module docstring for the layout).

    Args:
        table: output of :func:`~ssibench.report.leaderboard.build_leaderboard`.
        scenario: scenario name for the heading.
        skipped: (method, reason) pairs not run in this scenario, listed under the table.
        methods: registry giving labels of the skipped methods.

    Returns:
        Markdown text ending with a newline.
    """
    multi_seed = bool((table["n_seeds"] > 1).any())
    header = scenario_header(multi_seed)
    bold = bold_rows(table)
    lines = [f"### Scenario `{scenario}`", "", *_md_table_head(header)]
    for name, group in groups(table):
        lines.append(_md_group_row(name, len(header)))
        for _, row in group.iterrows():
            cells = scenario_cells(row, multi_seed, bold)
            lines.append(_md_row([_md_cell(cell) for cell in cells]))
    lines += ["", footnote(table), _skipped_note(skipped, methods)]
    return "\n".join(lines) + "\n"


def _combined_md_cell(row: pd.Series | None, bold: Mapping[str, set]) -> str:
    """``PSNR / SSIM [paper PSNR]`` of a method in one scenario, ``–`` when it was not run."""
    if row is None:
        return DASH
    psnr, ssim, paper = combined_cells(row, bold)
    return f"{_md_cell(psnr)} / {_md_cell(ssim)}" + (f" [{paper}]" if paper else "")


def combined_markdown(tables: Mapping[str, pd.DataFrame]) -> str:
    """All scenarios side by side: ``PSNR / SSIM [paper PSNR]`` per method and scenario.

    Args:
        tables: scenario name → output of :func:`~ssibench.report.leaderboard.build_leaderboard`.
    """
    scenarios = list(tables)
    header = ["Method", *[f"`{s}`" for s in scenarios]]
    bold = {scenario: bold_rows(table) for scenario, table in tables.items()}
    lines = ["### All scenarios", "", *_md_table_head(header)]
    for name, group in combined_groups(list(tables.values())):
        lines.append(_md_group_row(name, len(header)))
        for _, representative in group.iterrows():
            cells = [_md_text(row_label(representative))]
            for scenario in scenarios:
                row = row_of(tables[scenario], representative["method"])
                cells.append(_combined_md_cell(row, bold[scenario]))
            lines.append(_md_row(cells))
    lines += ["", combined_note(list(tables.values()))]
    return "\n".join(lines) + "\n"


#: (label, path in a run record) of the settings the setup note reports.
SETUP_FIELDS = (
    ("MoDL iterations", ("config", "model", "num_iter")),
    ("step order", ("config", "model", "step_order")),
    ("U-Net scales", ("config", "model", "scales")),
    ("width", ("config", "model", "width")),
    ("epochs", ("config", "train", "epochs")),
    ("batch", ("config", "train", "batch_size")),
    ("lr", ("config", "train", "lr")),
    ("amp", ("config", "train", "amp")),
    ("train slices", ("data", "n_train")),
    ("val slices", ("data", "n_val")),
    ("test slices", ("data", "n_test")),
    ("ssibench", ("ssibench_version",)),
)


def _field(record: Mapping, path: Sequence[str]) -> object:
    value: object = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def setup_note(records: Sequence[Mapping], skipped_files: Sequence[str] = ()) -> str:
    """One Markdown line: the setup the runs were made with, read from their records.

    Each setting shows the value most runs share, then the runs that differ, e.g.
    ``epochs 14 (sup seed 0: 20)``. The store is named by its content hash.

    Args:
        records: ``run.json`` contents of the trained runs (at least one).
        skipped_files: raw files extraction left out (``data.on_bad_file: skip``), named too.
    """
    parts = []
    for label, path in SETUP_FIELDS:
        values = [_field(record, path) for record in records]
        common = max(set(map(repr, values)), key=[repr(v) for v in values].count)
        others = [
            f"{record.get('method')} seed {record.get('seed')}: {value}"
            for record, value in zip(records, values, strict=True)
            if repr(value) != common
        ]
        main = next(v for v in values if repr(v) == common)
        parts.append(f"{label} {main}" + (f" ({'; '.join(others)})" if others else ""))
    stores = sorted({str(_field(r, ("data", "content_hash")))[:12] for r in records})
    skipped = (
        f"; {len(skipped_files)} bad raw file(s) skipped at extraction: {', '.join(skipped_files)}"
        if skipped_files
        else ""
    )
    return (
        "Setup, from the runs' records (`run.json`): "
        + ", ".join(parts)
        + f"; measurement store {', '.join(f'`{s}`' for s in stores)}{skipped}."
    )
