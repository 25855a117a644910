r"""Leaderboards as LaTeX tables with booktabs rules, per scenario and combined.

The cells are those of the Markdown tables (:mod:`ssibench.report.cells`): bold per column, ``†``
after the bold text, a true minus (``$-$``) in negative numbers; the groups are separated by
``\midrule``. The output is plain ASCII: pdflatex sets it with
``\usepackage{booktabs,graphicx}`` and no other package.

Fitting the page: each ``tabular`` sits in a shrink-only ``\resizebox`` (:data:`FIT_OPEN`), which
scales it down to ``\linewidth`` when it is wider and leaves it as it is otherwise. That was chosen
over a smaller font or ``\tabcolsep``: the combined table's width grows with the number of
scenarios and a scenario table's with the seed columns and the labels of external runs, all of
which the config decides, so no fixed font size fits every run, while the guard fits any without
enlarging a narrow table. A scenario table is a ``table`` for a one-column page: with one seed it
fits the text width of a page with 2 cm margins as it is, and the seed columns or an external run's
long label make the guard shrink it by a few percent; in a two-column document use ``table*``.
The combined table is a ``table*``, page-wide in either layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ssibench.report.cells import (
    DAGGER,
    DASH,
    EXTERNAL_MARK,
    MINUS,
    Cell,
    bold_rows,
    combined_cells,
    combined_groups,
    combined_note,
    footnote,
    groups,
    row_label,
    row_of,
    scenario_cells,
    scenario_header,
)

__all__ = ["FIT_CLOSE", "FIT_OPEN", "combined_latex", "scenario_latex", "tex"]

#: Characters LaTeX would misread, or that pdflatex cannot set in text mode.
_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "\\": r"\textbackslash{}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"$<$",
    ">": r"$>$",
    DASH: "--",
    MINUS: "$-$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    DAGGER: r"$^\dagger$",
    EXTERNAL_MARK: r"$^\S$",
}
#: The shrink-only width guard around every tabular (graphicx): inside ``\resizebox``'s size
#: argument ``\width`` is the natural width of the tabular, so it is scaled to ``\linewidth`` only
#: when wider. The tabular ends with ``%`` so that no space widens the box.
FIT_OPEN = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"
FIT_CLOSE = "}"
#: The LaTeX header of a scenario's table: (group over the columns, the columns' names).
_SCENARIO_GROUPS = (("Ours", ("PSNR (dB)", "SSIM", "NMSE")), ("Paper", ("PSNR", "Δ PSNR", "SSIM")))
_SEED_GROUP = ("Seed std", ("PSNR", "SSIM"))
#: What the comment atop each table says the preamble needs.
_PREAMBLE = r"Needs \usepackage{booktabs,graphicx}."


def tex(text: str) -> str:
    """``text`` with the characters of :data:`_LATEX_SPECIAL` escaped for text mode."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def _tex_cell(cell: Cell) -> str:
    text = tex(cell.text)
    return (rf"\textbf{{{text}}}" if cell.bold else text) + tex(cell.mark)


def _row(cells: Sequence[str]) -> str:
    return " & ".join(cells) + r" \\"


def _grouped_head(first: str, spans: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    r"""Two header rows: group names over their columns (``\cmidrule`` under each), then names."""
    tops, rules, names, column = [], [], [first], 2
    for name, columns in spans:
        tops.append(rf"\multicolumn{{{len(columns)}}}{{c}}{{{name}}}")
        rules.append(rf"\cmidrule(lr){{{column}-{column + len(columns) - 1}}}")
        names += [tex(c) for c in columns]
        column += len(columns)
    return [_row(["", *tops]), " ".join(rules), _row(names)]


def _float(
    environment: str, comment: str, caption: str, name: str, spec: str, body: Sequence[str]
) -> str:
    """A booktabs tabular of column ``spec`` in the width guard, in a float with its caption."""
    lines = [
        *(f"% {line}" for line in comment.splitlines()),
        rf"\begin{{{environment}}}[t]",
        r"\centering\small",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:leaderboard-{name}}}",
        FIT_OPEN,
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        *body,
        r"\bottomrule",
        r"\end{tabular}%",
        FIT_CLOSE,
        rf"\end{{{environment}}}",
    ]
    return "\n".join(lines) + "\n"


def scenario_latex(table: pd.DataFrame, scenario: str) -> str:
    r"""One scenario's leaderboard as a LaTeX ``table`` for a one-column page.

    The columns of :func:`~ssibench.report.render.scenario_markdown` under a two-level header
    (ours, the seed spread, the paper's); the groups are separated by ``\midrule``; the tabular
    is shrunk to the line width only when wider (see the module docstring).
    """
    multi_seed = bool((table["n_seeds"] > 1).any())
    spans = list(_SCENARIO_GROUPS)
    if multi_seed:
        spans.insert(1, _SEED_GROUP)
    n_columns = len(scenario_header(multi_seed))  # as many as the spans name, the method first
    bold = bold_rows(table)
    body = _grouped_head("Method", spans)
    for _, group in groups(table):
        body.append(r"\midrule")
        for _, row in group.iterrows():
            body.append(_row([_tex_cell(cell) for cell in scenario_cells(row, multi_seed, bold)]))
    comment = (
        f"ssibench leaderboard of scenario {scenario}. {_PREAMBLE}\n"
        "A table for a one-column page (in a two-column document use table*); the tabular is "
        "shrunk to \\linewidth only when wider."
    )
    caption = rf"Scenario \texttt{{{tex(scenario)}}}. {tex(footnote(table))}"
    return _float("table", comment, caption, scenario, "l" + "r" * (n_columns - 1), body)


def _combined_tex_cells(row: pd.Series | None, bold: Mapping[str, set]) -> list[str]:
    """PSNR (paper PSNR after it, small, in brackets) and SSIM of a method in one scenario."""
    if row is None:
        return [tex(DASH), tex(DASH)]
    psnr, ssim, paper = combined_cells(row, bold)
    paper_text = rf"\,{{\scriptsize[{tex(paper)}]}}" if paper else ""
    return [_tex_cell(psnr) + paper_text, _tex_cell(ssim)]


def combined_latex(tables: Mapping[str, pd.DataFrame]) -> str:
    """All scenarios side by side as a booktabs ``table*``: PSNR and SSIM columns per scenario.

    The tabular is shrunk to the page width only when wider (see the module docstring).
    """
    scenarios = list(tables)
    spans = [(rf"\texttt{{{tex(s)}}}", ("PSNR", "SSIM")) for s in scenarios]
    bold = {scenario: bold_rows(table) for scenario, table in tables.items()}
    body = _grouped_head("Method", spans)
    for _, group in combined_groups(list(tables.values())):
        body.append(r"\midrule")
        for _, representative in group.iterrows():
            cells = [tex(row_label(representative))]
            for scenario in scenarios:
                row = row_of(tables[scenario], representative["method"])
                cells += _combined_tex_cells(row, bold[scenario])
            body.append(_row(cells))
    comment = (
        f"ssibench leaderboard of every scenario. {_PREAMBLE}\n"
        "A page-wide table*; the tabular is shrunk to \\linewidth only when wider."
    )
    caption = tex(combined_note(list(tables.values())))
    return _float("table*", comment, caption, "all", "l" + "rr" * len(scenarios), body)
