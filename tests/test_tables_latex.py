"""Journal-ready text tables: bold per column, true minus signs, groups without blank rows, and
LaTeX that is well formed and fits the page.

A structural check in pure Python always runs (balanced braces, ``$`` and environments, a row's
cells spanning exactly the tabular's columns, the shrink-only width guard around every tabular);
where ``pdflatex`` is installed the tables are also compiled in a minimal article with 2 cm margins
and the log must not report an overfull box.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report_data import PSNR, SCENARIO, make_metrics, with_provenance, write_metrics, write_store
from ssibench.cli import main
from ssibench.methods import METHODS
from ssibench.report import (
    EXTERNAL_LABEL,
    build_leaderboard,
    combined_latex,
    combined_markdown,
    scenario_latex,
    scenario_markdown,
)
from ssibench.report.cells import signed_text, ssim_text
from ssibench.report.latex import FIT_CLOSE, FIT_OPEN

#: The scenarios of the paper's leaderboards (their published numbers fill the paper columns).
PAPER_SCENARIOS = ("single-coil", "noisy", "single-operator", "multicoil", "sequential")
#: An external run's label with characters LaTeX must escape.
ODD_LABEL = "MC (their ckpt_v2 & 10% more)"
PREAMBLE = r"\documentclass{article}\usepackage[margin=2cm]{geometry}\usepackage{booktabs,graphicx}"


def _every_method(scenario: str, seeds: int = 1, external: bool = False) -> pd.DataFrame:
    """Leaderboard of ``scenario`` with every registered method (the widest labels) on 3 slices.

    PSNR rises with the registry order (8 to 30 dB, below the paper: negative Δ), SSIM falls with
    it, so the best PSNR and the best SSIM are on different rows.
    """
    psnr = {
        (name, seed): [8.0 + index + 0.1 * seed + 0.01 * s for s in range(3)]
        for index, name in enumerate(METHODS)
        for seed in range(seeds)
    }
    frame = make_metrics(psnr, fastmri=False)
    frame["ssim"] = 1.2 - frame["psnr"] / 30
    if external:
        theirs = frame[frame["method"] == "mc"].assign(method="theirs", psnr=lambda f: f.psnr + 30)
        frame = pd.concat([frame, theirs.assign(**{EXTERNAL_LABEL: ODD_LABEL})], ignore_index=True)
    return build_leaderboard(frame.assign(scenario=scenario), scenario)


# ---------------------------------------------------------------- structure, in pure Python


def _unescaped(char: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\\){re.escape(char)}")


def _strip_comments(text: str) -> str:
    return "\n".join(_unescaped("%").split(line)[0] for line in text.splitlines())


def _cells_span(row: str) -> int:
    """Columns a tabular row covers: its cells, a ``\\multicolumn{n}`` counting n."""
    cells = _unescaped("&").split(row.removesuffix(r"\\"))
    spans = [re.match(r"\s*\\multicolumn\{(\d+)\}", cell) for cell in cells]
    return sum(int(span.group(1)) if span else 1 for span in spans)


def check_structure(tex: str) -> None:
    """Fail on what would break ``tex`` in pdflatex or let it overflow (module docstring)."""
    assert tex.isascii(), "pdflatex without unicode packages: every special character escaped"
    code = _strip_comments(tex)
    depth = 0
    for char in re.sub(r"\\[{}]", "", code):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a } closes no {"
    assert depth == 0, "unbalanced braces"
    for line in code.splitlines():
        assert len(_unescaped("$").findall(line)) % 2 == 0, f"unbalanced $ in {line!r}"
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", code):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack, f"\\end{{{name}}} without a \\begin"
            assert stack.pop() == name, f"\\end{{{name}}} closes another environment"
    assert not stack, f"unclosed environment(s) {stack}"
    lines, raw = code.splitlines(), tex.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(r"\begin{tabular}"))
    spec = re.match(r"\\begin\{tabular\}\{([^}]*)\}", lines[start]).group(1)
    n_columns = len(re.findall(r"[lrc]", spec))
    end = lines.index(r"\end{tabular}")  # the trailing % was stripped with the comments
    assert raw[end] == r"\end{tabular}%", "no space may widen the guarded box"
    assert raw[start - 1] == FIT_OPEN, "the tabular is not in the width guard"
    assert raw[end + 1] == FIT_CLOSE
    rows = [line for line in lines[start + 1 : end] if line.endswith(r"\\")]
    assert rows, "a tabular without rows"
    for row in rows:
        assert _cells_span(row) == n_columns, f"{row!r} does not span the {n_columns} columns"
        multi = sum(_cells_span(c) - 1 for c in _unescaped("&").split(row.removesuffix(r"\\")))
        assert row.count("&") - row.count(r"\&") == n_columns - 1 - multi
    assert sum(r"\begin{tabular}" in line for line in lines) == 1


def _tables() -> dict[str, str]:
    """The LaTeX tables the tests look at: one seed, three seeds, an external run; combined."""
    boards = {s: _every_method(s) for s in PAPER_SCENARIOS}
    many = {f"scenario-{i}": _every_method(f"scenario-{i}") for i in range(8)}
    return {
        "scenario": scenario_latex(boards["noisy"], "noisy"),
        "seeds": scenario_latex(_every_method("sc", seeds=3), "sc"),
        "external": scenario_latex(_every_method("sc", external=True), "sc"),
        "combined": combined_latex(boards),
        "combined-8": combined_latex(many),
    }


@pytest.fixture(scope="module")
def tables() -> dict[str, str]:
    return _tables()


@pytest.mark.parametrize("name", ["scenario", "seeds", "external", "combined", "combined-8"])
def test_latex_tables_are_well_formed_and_guarded(tables: dict[str, str], name: str) -> None:
    check_structure(tables[name])


def test_structure_check_catches_broken_tables(tables: dict[str, str]) -> None:
    good = tables["scenario"]
    lines = good.splitlines()
    row = lines[lines.index(r"\midrule") + 1]
    broken = {
        "a missing cell": good.replace(row, row.rsplit(" & ", 1)[0] + r" \\"),
        "an unclosed brace": good.replace(r"\textbf{", r"\textbf{{", 1),
        "an unclosed $": good.replace("$-$", "$-", 1),
        "no width guard": good.replace(FIT_OPEN + "\n", "").replace(
            "\\end{tabular}%\n" + FIT_CLOSE + "\n", "\\end{tabular}%\n"
        ),
        "an unclosed table": good.replace(r"\end{table}", ""),
    }
    for what, tex in broken.items():
        assert tex != good, what
        with pytest.raises(AssertionError):
            check_structure(tex)


def test_scenario_table_for_one_column_and_combined_for_the_page(tables: dict[str, str]) -> None:
    assert r"\begin{table}[t]" in tables["scenario"]
    assert r"\begin{table*}[t]" in tables["combined"]
    assert tables["scenario"].startswith("% ssibench leaderboard of scenario noisy. Needs ")
    assert r"\usepackage{booktabs,graphicx}" in tables["combined"].splitlines()[0]
    assert r"\multicolumn{3}{c}{Ours} & \multicolumn{2}{c}{Seed std}" in tables["seeds"]
    assert r"MC (their ckpt\_v2 \& 10\% more)$^\S$" in tables["external"]  # escaped, then marked


def test_latex_bold_goes_per_column_and_minus_signs_are_true(tables: dict[str, str]) -> None:
    board = _every_method("noisy")
    tex = scenario_latex(board, "noisy")
    self_supervised = board[board["trains"] & ~board["supervised"]]
    best_psnr = self_supervised.loc[self_supervised["psnr_mean"].idxmax(), "label"]
    best_ssim = self_supervised.loc[self_supervised["ssim_mean"].idxmax(), "label"]
    assert best_psnr != best_ssim
    row = {line.split(" & ")[0]: line.split(" & ") for line in tex.splitlines() if " & " in line}
    assert row[best_psnr][1].startswith(r"\textbf{")  # PSNR
    assert not row[best_psnr][2].startswith(r"\textbf{")  # its lower SSIM is not bold
    assert row[best_ssim][2].startswith(r"\textbf{")
    assert not row[best_ssim][1].startswith(r"\textbf{")
    assert tex.count(r"\textbf{") == 3  # PSNR, SSIM, NMSE: one each, never the supervised row
    assert not any(cell.startswith(r"\textbf") for cell in row["(Supervised)"])
    zero_filled = row[METHODS["zero-filled"].label]
    assert zero_filled[5].startswith("$-$")  # Δ PSNR below the paper
    assert not re.search(r"(?<![\w$])-\d", tex)  # no hyphen before a number
    combined = tables["combined"]
    assert not re.search(r"(?<![\w$])-\d", combined)
    assert combined.count(r"\textbf{") == 2 * len(PAPER_SCENARIOS)


def test_rendering_leaves_the_numbers_of_the_csv_alone() -> None:
    board = _every_method("noisy")
    csv = board.to_csv(index=False)
    scenario_latex(board, "noisy")
    combined_latex({"noisy": board})
    assert board.to_csv(index=False) == csv
    assert "−" not in csv
    assert ",-16.3" in csv  # Δ of zero-filled, plain for machines


def test_ties_at_the_printed_precision_are_all_bold() -> None:
    psnr = {**PSNR, ("mc", 0): [30.001, 31.0, 32.0], ("mc", 1): [30.0, 31.0, 32.0]}
    board = build_leaderboard(make_metrics(psnr), SCENARIO)
    tex = scenario_latex(board, SCENARIO)
    bold_psnr = [line for line in tex.splitlines() if r"& \textbf{31.00" in line]
    assert {line.split(" & ")[0] for line in bold_psnr} == {"MC", "SSDU"}
    assert np.isclose(board.set_index("method").loc["mc", "psnr_mean"], 31.0, atol=1e-3)


# ---------------------------------------------------------------- Markdown


def _md_rows(text: str) -> list[list[str]]:
    """The header and rows of the Markdown table in ``text``, as lists of stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines if not line.startswith("| ---")]
    return [[cell.strip() for cell in cells] for cells in split]


def test_markdown_tables_parse_into_method_rows_under_italic_group_rows() -> None:
    table = build_leaderboard(make_metrics(), SCENARIO)
    labels = [METHODS[m].label for m in ("zero-filled", "mc", "ssdu", "sup")]
    for text in (scenario_markdown(table, SCENARIO), combined_markdown({SCENARIO: table})):
        header, *rows = _md_rows(text)
        assert all(len(row) == len(header) for row in rows)  # one GitHub table, no ragged row
        assert all(any(row) for row in rows)  # no blank separator rows
        group_rows = [row for row in rows if re.fullmatch(r"\*[^*]+\*", row[0])]
        assert [row[0] for row in group_rows] == [
            "*Baselines*",
            "*Self-supervised*",
            "*Supervised*",
        ]
        assert all(not any(row[1:]) for row in group_rows)
        methods = [row[0] for row in rows if row not in group_rows]
        assert sorted(methods) == sorted(labels)


def _bold_apart_metrics() -> pd.DataFrame:
    """SSDU has the best PSNR, MC the best SSIM; the supervised SSIM is higher still."""
    frame = make_metrics()
    frame.loc[frame["method"] == "mc", "ssim"] = 0.5
    frame.loc[frame["method"] == "sup", "ssim"] = 0.9
    return frame


def test_bold_marks_the_best_self_supervised_value_of_each_column() -> None:
    # observed: the whole best row was bold, a lower SSIM in bold beside a higher one
    table = build_leaderboard(_bold_apart_metrics(), SCENARIO)
    rows = {row[0]: row for row in _md_rows(scenario_markdown(table, SCENARIO))}
    assert rows["SSDU"][1] == "**31.00 ± 0.82**"
    assert rows["SSDU"][2] == ".3100 ± .0082"  # MC's SSIM is higher
    assert rows["SSDU"][3].startswith("**0.0323")  # lowest NMSE
    assert rows["MC"][1].startswith("12.50")
    assert rows["MC"][2] == "**.5000 ± .0000**"
    assert not any("**" in cell for cell in rows["(Supervised)"])  # higher SSIM, not eligible
    assert not any("**" in row[0] for row in rows.values())  # labels are never bold
    combined = {row[0]: row for row in _md_rows(combined_markdown({SCENARIO: table}))}
    assert combined["SSDU"][1] == "**31.00** / .3100"
    assert combined["MC"][1] == "12.50 / **.5000**"
    assert combined["(Supervised)"][1] == "26.00 / .9000 [30.19]"


def test_negative_numbers_print_a_true_minus_sign() -> None:
    assert signed_text(-4.339, 2) == "−4.34"
    assert signed_text(1.5, 2) == "+1.50"
    assert signed_text(-0.001, 2) == "0.00"  # no sign on what rounds to zero
    assert ssim_text(-0.05) == "−.0500"
    assert ssim_text(-0.00001) == ".0000"  # a negative zero is printed as zero
    table = build_leaderboard(make_metrics(), SCENARIO)
    markdown = scenario_markdown(table, SCENARIO)
    zero_filled = next(row for row in _md_rows(markdown) if row[0] == "Zero-filled")
    assert zero_filled[7] == "−4.34"  # Δ PSNR = 20 − 24.34
    assert not re.search(r"(?<![\w-])-\d", markdown)  # no hyphen as a minus sign
    assert "$-$4.34" in scenario_latex(table, SCENARIO)
    assert "−" not in table.to_csv(index=False)


#: The CSV ``ssibench tables`` and ``combined-table`` write from the hand-made metrics, pinned when
#: the Markdown and LaTeX tables were reworked: the figures read these files, so changing how the
#: text tables look must leave them byte for byte as they were (SHA-256 5d4e450e…d728).
EXPECTED_CSV = Path(__file__).parent / "data" / "leaderboard_hand_made.csv"


def _cells(text: str) -> list[str]:
    """``row <i> <column>: <value>`` per cell of a CSV text (naive split: no quoted commas)."""
    rows = [line.split(",") for line in text.splitlines()]
    header = rows[0] if rows else []
    return [
        f"row {i} {header[j] if j < len(header) else j}: {value}"
        for i, row in enumerate(rows)
        for j, value in enumerate(row)
    ]


def _diff(expected: str, got: str, name: str) -> str:
    """The cells that differ between two CSV texts, as a unified diff without context."""
    lines = difflib.unified_diff(
        _cells(expected), _cells(got), str(EXPECTED_CSV), name, n=0, lineterm=""
    )
    return "\n".join(lines)


def test_csv_outputs_are_byte_identical_to_before(tmp_path: Path) -> None:
    store = tmp_path / "store.h5"
    metrics = write_metrics(tmp_path / "runs", with_provenance(make_metrics(), write_store(store)))
    tables = ["tables", "--data", str(store), "--metrics", *map(str, metrics)]
    tables += ["--scenario", SCENARIO, "--out-csv", str(tmp_path / "b.csv")]
    assert (
        main([*tables, "--out-md", str(tmp_path / "b.md"), "--out-tex", str(tmp_path / "b.tex")])
        == 0
    )
    combined = ["combined-table", "--tables", str(tmp_path / "b.csv"), "--out-csv"]
    combined += [str(tmp_path / "all.csv"), "--out-md", str(tmp_path / "all.md")]
    assert main([*combined, "--out-tex", str(tmp_path / "all.tex")]) == 0
    expected = EXPECTED_CSV.read_text()
    for name in ("b.csv", "all.csv"):
        got = (tmp_path / name).read_text()
        assert got == expected, f"{name} changed (downstream figures read it):\n" + _diff(
            expected, got, name
        )


# ---------------------------------------------------------------- compiled, where pdflatex is


def _natural_width_probe(tex: str) -> str:
    r"""``tex`` with the guard replaced by a box whose natural width goes to the log."""
    box = tex.replace(FIT_OPEN, r"\setbox0\hbox{%")
    return box.replace(
        "\\end{tabular}%\n" + FIT_CLOSE + "\n",
        "\\end{tabular}%\n}\\typeout{NATURAL \\the\\wd0 \\space LINE \\the\\linewidth}\\box0\n",
    )


def _compile(folder: Path, documentclass: str, tables: dict[str, str]) -> str:
    body = []
    for name, tex in tables.items():
        (folder / f"{name}.tex").write_text(tex)
        body.append(rf"\input{{{name}.tex}}\clearpage")
    preamble = PREAMBLE.replace(r"\documentclass{article}", documentclass)
    source = "\n".join([preamble, r"\begin{document}", *body, r"\end{document}", ""])
    (folder / "doc.tex").write_text(source)
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = (folder / "doc.log").read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    assert (folder / "doc.pdf").exists()
    return log


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")


@needs_pdflatex
def test_tables_compile_without_overfull_boxes(tables: dict[str, str], tmp_path: Path) -> None:
    log = _compile(tmp_path, r"\documentclass{article}", tables)
    assert "Overfull \\hbox" not in log, log[log.find("Overfull") :][:500]
    assert "LaTeX Warning: Float too large" not in log


@needs_pdflatex
def test_combined_table_fits_a_two_column_page_too(tables: dict[str, str], tmp_path: Path) -> None:
    combined = {"combined": tables["combined"]}
    log = _compile(tmp_path, r"\documentclass[twocolumn]{article}", combined)
    assert "Overfull \\hbox" not in log, log[log.find("Overfull") :][:500]


@needs_pdflatex
def test_scenario_tables_fit_a_one_column_page_unscaled(
    tables: dict[str, str], tmp_path: Path
) -> None:
    probes = {name: _natural_width_probe(tables[name]) for name in ("scenario", "seeds")}
    probes["combined"] = _natural_width_probe(tables["combined"])
    log = _compile(tmp_path, r"\documentclass{article}", probes)
    widths = [tuple(map(float, m)) for m in re.findall(r"NATURAL ([\d.]+)pt LINE ([\d.]+)pt", log)]
    assert len(widths) == 3
    (scenario, line), (seeds, _), (combined, _) = widths
    assert scenario <= line  # no scaling needed: the font stays \small
    assert seeds <= line * 1.05  # the seed columns may make the guard shrink it a little
    assert combined > line  # the guard is what fits the five scenarios (51 pt too wide before)
