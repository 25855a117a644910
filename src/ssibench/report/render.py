"""Leaderboards as text: paper-style Markdown and LaTeX (booktabs), per scenario and combined.

Layout of every table, as in the paper: the zero-filled baseline first, then the self-supervised
methods by ascending PSNR, then the supervised upper bound in parentheses, each group set apart
(a rule in LaTeX, a blank-labelled group in Markdown). The best self-supervised method is bold;
``†`` marks a method whose per-slice PSNR differs from the best one's (paired Wilcoxon
signed-rank test, p < 0.05). Published values follow ours in brackets with the difference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import pandas as pd

from ssibench.methods import METHODS, MethodSpec
from ssibench.report.published import PUBLISHED_SOURCE
from ssibench.report.stats import SIGNIFICANCE_LEVEL

__all__ = [
    "combined_latex",
    "combined_markdown",
    "scenario_latex",
    "scenario_markdown",
    "setup_note",
]

DAGGER = "†"
#: Characters LaTeX would misread, or that pdflatex cannot set in text mode.
_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "<": r"$<$",
    ">": r"$>$",
    "–": "--",
    "−": "$-$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    DAGGER: r"$^\dagger$",
}


def psnr_text(value: float) -> str:
    """PSNR with 2 decimals, ``–`` for NaN."""
    return "–" if _missing(value) else f"{value:.2f}"


def ssim_text(value: float) -> str:
    """SSIM as the paper prints it: 4 decimals without the leading zero (.7862); ``–`` for NaN."""
    return "–" if _missing(value) else re.sub(r"^(-?)0\.", r"\1.", f"{value:.4f}")


def _signed(value: float, digits: int) -> str:
    return "–" if _missing(value) else f"{value:+.{digits}f}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _groups(table: pd.DataFrame) -> list[pd.DataFrame]:
    """Rows split into [zero-filled and other untrained baselines, self-supervised, supervised]."""
    baselines = table[~table["trains"]]
    self_supervised = table[table["trains"] & ~table["supervised"]]
    supervised = table[table["supervised"]]
    return [group for group in (baselines, self_supervised, supervised) if not group.empty]


def _skipped_note(skipped: Sequence[tuple[str, str]], methods: Mapping[str, MethodSpec]) -> str:
    if not skipped:
        return "Skipped in this scenario: none."
    notes = "; ".join(
        f"{methods[m].label if m in methods else m} (`{m}`): {reason}" for m, reason in skipped
    )
    return f"Skipped in this scenario: {notes}."


def _footnote(table: pd.DataFrame) -> str:
    n_slices = " / ".join(map(str, sorted(set(table["n_slices"].tolist()))))
    seeds = sorted(set(table["n_seeds"].tolist()))
    best = table[table["best"]]
    test = (
        f"{DAGGER}: differs from {best['label'].iloc[0]} (paired Wilcoxon signed-rank test over "
        f"test slices, p < {SIGNIFICANCE_LEVEL:g})."
        if not best.empty
        else ""
    )
    return (
        f"Mean ± standard deviation over {n_slices} test slices (SSIBench metric mode), "
        f"{' / '.join(map(str, seeds))} training seed{'' if seeds == [1] else 's'}"
        f"{' (± over seeds in the seed columns)' if max(seeds) > 1 else ''}. Bold: best "
        f"self-supervised method. {test} Paper: {PUBLISHED_SOURCE}; Δ = ours − paper."
    )


def nmse_text(value: float) -> str:
    """NMSE with 4 decimals, ``–`` for NaN."""
    return "–" if _missing(value) else f"{value:.4f}"


def _scenario_header(multi_seed: bool) -> list[str]:
    header = ["Method", "PSNR (dB)", "SSIM", "NMSE", "Paper PSNR", "Δ PSNR", "Paper SSIM"]
    if multi_seed:
        header[4:4] = ["PSNR seed std", "SSIM seed std"]
    return header


def _scenario_cells(row: pd.Series, multi_seed: bool) -> list[str]:
    """Plain-text cells of one leaderboard row; the PSNR cell ends with † if it differs."""
    cells = [
        str(row["label"]),
        f"{psnr_text(row['psnr_mean'])} ± {psnr_text(row['psnr_std'])}"
        + (DAGGER if row["differs_from_best"] else ""),
        f"{ssim_text(row['ssim_mean'])} ± {ssim_text(row['ssim_std'])}",
        f"{nmse_text(row['nmse_mean'])} ± {nmse_text(row['nmse_std'])}",
        psnr_text(row["psnr_published"]),
        _signed(row["psnr_diff"], 2),
        ssim_text(row["ssim_published"]),
    ]
    if multi_seed:
        seed_cells = ["–", "–"]
        if row["n_seeds"] > 1:
            seed_cells = [psnr_text(row["psnr_seed_std"]), ssim_text(row["ssim_seed_std"])]
        cells[4:4] = seed_cells
    return cells


#: Cells set in bold on the best row: method, PSNR, SSIM, NMSE.
_BOLD_CELLS = 4


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
    header = _scenario_header(multi_seed)
    lines = [
        f"### Scenario `{scenario}`",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * len(header)) + " |",
    ]
    for group_index, group in enumerate(_groups(table)):
        if group_index:
            lines.append("| " + " | ".join([" "] * len(header)) + " |")
        for _, row in group.iterrows():
            cells = _scenario_cells(row, multi_seed)
            if row["best"]:
                cells[:_BOLD_CELLS] = [f"**{cell}**" for cell in cells[:_BOLD_CELLS]]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _footnote(table), _skipped_note(skipped, methods)]
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def _tex_cell(text: str, bold: bool) -> str:
    if not bold:
        return _tex(text)
    mark = DAGGER if text.endswith(DAGGER) else ""  # the mark stays outside the bold text
    return rf"\textbf{{{_tex(text.removesuffix(DAGGER))}}}" + _tex(mark)


def scenario_latex(table: pd.DataFrame, scenario: str) -> str:
    r"""One scenario's leaderboard as a LaTeX ``table`` with booktabs rules (needs ``booktabs``).

    The columns of :func:`scenario_markdown`; groups of :func:`_groups` are separated by
    ``\midrule``.
    """
    multi_seed = bool((table["n_seeds"] > 1).any())
    header = _scenario_header(multi_seed)
    lines = [
        r"\begin{table}[t]",
        r"\centering\small",
        rf"\caption{{Scenario \texttt{{{_tex(scenario)}}}. {_tex(_footnote(table))}}}",
        rf"\label{{tab:leaderboard-{scenario}}}",
        rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}",
        r"\toprule",
        " & ".join(_tex(cell) for cell in header) + r" \\",
    ]
    for group in _groups(table):
        lines.append(r"\midrule")
        for _, row in group.iterrows():
            cells = _scenario_cells(row, multi_seed)
            bold = [bool(row["best"]) and i < _BOLD_CELLS for i in range(len(cells))]
            lines.append(" & ".join(map(_tex_cell, cells, bold)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _combined_groups(tables: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """One row per method over all scenarios, grouped as :func:`_groups`, in registry order."""
    union = pd.concat(tables, ignore_index=True).drop_duplicates("method")
    order = {name: index for index, name in enumerate(METHODS)}
    union = union.assign(order=union["method"].map(order).fillna(len(order)))
    return _groups(union.sort_values("order", kind="stable"))


def _row_of(table: pd.DataFrame, method: str) -> pd.Series | None:
    rows = table[table["method"] == method]
    return None if rows.empty else rows.iloc[0]


def _combined_cell(row: pd.Series) -> str:
    mark = DAGGER if row["differs_from_best"] else ""
    text = f"{psnr_text(row['psnr_mean'])}{mark} / {ssim_text(row['ssim_mean'])}"
    if not _missing(row["psnr_published"]):
        text += f" [{psnr_text(row['psnr_published'])}]"
    return text


def combined_markdown(tables: Mapping[str, pd.DataFrame]) -> str:
    """All scenarios side by side: ``PSNR / SSIM [paper PSNR]`` per method and scenario.

    Args:
        tables: scenario name → output of :func:`~ssibench.report.leaderboard.build_leaderboard`.
    """
    scenarios = list(tables)
    header = ["Method", *[f"`{s}`" for s in scenarios]]
    lines = [
        "### All scenarios",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * len(header)) + " |",
    ]
    for group_index, group in enumerate(_combined_groups(list(tables.values()))):
        if group_index:
            lines.append("| " + " | ".join([" "] * len(header)) + " |")
        for _, representative in group.iterrows():
            cells = [str(representative["label"])]
            for scenario in scenarios:
                row = _row_of(tables[scenario], representative["method"])
                if row is None:
                    cells.append("–")
                else:
                    text = _combined_cell(row)
                    cells.append(f"**{text}**" if row["best"] else text)
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Test-set mean PSNR (dB) / SSIM (SSIBench metric mode), paper PSNR in brackets. Bold: best "
        f"self-supervised method of the scenario; {DAGGER}: differs from it (paired Wilcoxon "
        f"signed-rank test over test slices, p < {SIGNIFICANCE_LEVEL:g}). Paper: "
        f"{PUBLISHED_SOURCE}.",
    ]
    return "\n".join(lines) + "\n"


def combined_latex(tables: Mapping[str, pd.DataFrame]) -> str:
    """All scenarios side by side as a booktabs ``table*``: PSNR and SSIM columns per scenario."""
    scenarios = list(tables)
    column_spec = "l" + "rr" * len(scenarios)
    groups = " & ".join(rf"\multicolumn{{2}}{{c}}{{\texttt{{{_tex(s)}}}}}" for s in scenarios)
    rules = " ".join(rf"\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(scenarios)))
    lines = [
        r"\begin{table*}[t]",
        r"\centering\small",
        r"\caption{Test-set PSNR (dB) and SSIM of every method in every scenario; paper PSNR in "
        r"brackets. Bold: best self-supervised method; $^\dagger$: differs from it (paired "
        rf"Wilcoxon signed-rank test, $p < {SIGNIFICANCE_LEVEL:g}$). "
        rf"Paper: {_tex(PUBLISHED_SOURCE)}.}}",
        r"\label{tab:leaderboard-all}",
        rf"\begin{{tabular}}{{{column_spec}}}",
        r"\toprule",
        rf"Method & {groups} \\",
        rules,
        " & ".join(["", *["PSNR & SSIM"] * len(scenarios)]) + r" \\",
    ]
    for group in _combined_groups(list(tables.values())):
        lines.append(r"\midrule")
        for _, representative in group.iterrows():
            cells = [_tex(representative["label"])]
            for scenario in scenarios:
                row = _row_of(tables[scenario], representative["method"])
                if row is None:
                    cells += [_tex("–"), _tex("–")]
                    continue
                psnr = _tex_cell(psnr_text(row["psnr_mean"]), row["best"])
                if row["differs_from_best"]:
                    psnr += _tex(DAGGER)
                if not _missing(row["psnr_published"]):
                    psnr += rf"\,{{\scriptsize[{psnr_text(row['psnr_published'])}]}}"
                cells += [psnr, _tex_cell(ssim_text(row["ssim_mean"]), row["best"])]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
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
