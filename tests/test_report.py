"""Leaderboard statistics and ordering, Wilcoxon marks, published columns, text tables, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report_data import (
    PSNR,
    SCENARIO,
    make_metrics,
    with_provenance,
    write_metrics,
    write_store,
)
from ssibench.cli import main
from ssibench.methods import METHODS
from ssibench.report import (
    build_leaderboard,
    combined_latex,
    combined_markdown,
    leaderboard_table,
    scenario_latex,
    scenario_markdown,
)
from ssibench.report.published import published_leaderboards


def test_leaderboard_statistics_are_exact() -> None:
    table = leaderboard_table(make_metrics()).set_index("method")
    mc = table.loc["mc"]
    # seed means 12 and 13; population std over slices √(8/3) for both seeds
    assert mc["psnr_mean"] == pytest.approx(12.5)
    assert mc["psnr_std"] == pytest.approx(math.sqrt(8 / 3))
    assert mc["psnr_seed_std"] == pytest.approx(np.std([12.0, 13.0], ddof=1))
    assert mc["ssim_mean"] == pytest.approx(0.125)
    assert mc["ssim_std"] == pytest.approx(math.sqrt(8 / 3) / 100)
    assert mc["n_seeds"] == 2
    assert mc["n_slices"] == 3
    sup = table.loc["sup"]
    assert sup["psnr_mean"] == pytest.approx(26.0)
    assert sup["psnr_std"] == pytest.approx(0.0)
    assert sup["psnr_seed_std"] == pytest.approx(math.sqrt(2.0))
    # the fastMRI-mode rows are summarised separately (+1 dB in the fixture)
    assert mc["fastmri_psnr_mean"] == pytest.approx(13.5)


def test_single_seed_has_undefined_seed_std() -> None:
    one_seed = {key: value for key, value in PSNR.items() if key[1] == 0}
    table = leaderboard_table(make_metrics(one_seed, fastmri=False)).set_index("method")
    assert table.loc["mc", "psnr_mean"] == pytest.approx(12.0)
    assert np.isnan(table.loc["mc", "psnr_seed_std"])
    assert "fastmri_psnr_mean" not in table.columns


def test_leaderboard_sorted_by_psnr_with_supervised_last() -> None:
    table = leaderboard_table(make_metrics())
    assert table["method"].tolist() == ["mc", "zero-filled", "ssdu", "sup"]
    assert table["label"].tolist()[-1] == METHODS["sup"].label == "(Supervised)"
    assert table["label"].tolist()[1] == METHODS["zero-filled"].label


def test_best_self_supervised_and_wilcoxon_marks() -> None:
    table = leaderboard_table(make_metrics()).set_index("method")
    assert table["best"].tolist() == [False, False, True, False]  # ssdu; sup is not eligible
    # 3 slices, every difference to ssdu negative: smallest exact two-sided p = 2/2³ = 0.25
    assert table.loc["mc", "psnr_p_value"] == pytest.approx(0.25)
    assert np.isnan(table.loc["ssdu", "psnr_p_value"])
    assert not table["differs_from_best"].any()  # 0.25 ≥ 0.05 with only three slices


def test_markdown_is_paper_style_with_groups_marks_and_skipped_note() -> None:
    table = build_leaderboard(make_metrics(), SCENARIO)
    text = scenario_markdown(
        table, SCENARIO, skipped=[("moi", "needs a test reason"), ("ei", "another reason")]
    )
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    labels = [row.split("|")[1].strip() for row in rows]
    # zero-filled first, self-supervised by PSNR, supervised last; an italic row opens each group
    assert labels == [
        "*Baselines*",
        METHODS["zero-filled"].label,
        "*Self-supervised*",
        "MC",
        "SSDU",
        "*Supervised*",
        "(Supervised)",
    ]
    assert all(row.count("|") == lines[2].count("|") for row in rows)  # no cell more or less
    mc = rows[3].split("|")
    assert mc[2].strip() == f"12.50 ± {math.sqrt(8 / 3):.2f}"
    assert mc[3].strip().startswith(".1250 ± ")  # SSIM without the leading zero
    assert rows[4].startswith("| SSDU | **31.00 ± 0.82** | **.3100")  # best values in bold
    assert "PSNR seed std" in lines[2]  # two seeds: seed spread shown
    note = next(line for line in lines if line.startswith("Skipped"))
    assert "needs a test reason" in note
    assert METHODS["moi"].label in note
    assert "another reason" in note
    assert (table["scenario"] == SCENARIO).all()
    assert "Skipped in this scenario: none." in scenario_markdown(table, SCENARIO)


def test_significant_difference_is_marked_with_a_dagger() -> None:
    ten = {
        ("mc", 0): [10.0 + i for i in range(10)],
        ("ssdu", 0): [30.0 + i for i in range(10)],
        ("sup", 0): [40.0] * 10,
    }
    table = build_leaderboard(make_metrics(ten, fastmri=False), SCENARIO).set_index("method")
    # ten negative differences: exact two-sided p = 2 / 2¹⁰
    assert table.loc["mc", "psnr_p_value"] == pytest.approx(2 / 1024)
    assert table.loc["mc", "differs_from_best"]
    text = scenario_markdown(table.reset_index(), SCENARIO)
    assert next(line for line in text.splitlines() if line.startswith("| MC")).count("†") == 1
    assert "† " not in next(line for line in text.splitlines() if "SSDU" in line)


def test_published_numbers_and_difference() -> None:
    table = build_leaderboard(make_metrics(), SCENARIO).set_index("method")
    # paper, scenario noisy: zero-filled 24.34 / .4428, supervised 30.19; no MC or SSDU row
    assert table.loc["zero-filled", "psnr_published"] == pytest.approx(24.34)
    assert table.loc["zero-filled", "psnr_diff"] == pytest.approx(20.0 - 24.34)
    assert table.loc["sup", "ssim_published"] == pytest.approx(0.8411)
    assert np.isnan(table.loc["mc", "psnr_published"])
    unknown = build_leaderboard(make_metrics().assign(scenario="mine"), "mine")
    assert unknown["psnr_published"].isna().all()


def test_published_data_cover_the_four_scenarios_of_the_paper() -> None:
    data = published_leaderboards()
    counts = data.groupby("scenario").size().to_dict()
    assert counts == {"single-coil": 14, "noisy": 10, "single-operator": 14, "multicoil": 14}
    assert set(data["method"]) <= set(METHODS)
    assert not data.duplicated(["scenario", "method"]).any()
    best = data[data["method"] != "sup"].loc[lambda d: d.groupby("scenario")["psnr"].idxmax()]
    assert dict(zip(best["scenario"], best["method"], strict=True)) == {
        "multicoil": "weighted-ssdu",
        "noisy": "robust-mo-ei",
        "single-coil": "mo-ei",
        "single-operator": "ei",
    }
    assert data.set_index(["scenario", "method"]).loc[("single-coil", "mo-ei"), "psnr"] == 32.14


def test_latex_has_booktabs_rules_bold_best_and_escaped_labels() -> None:
    table = build_leaderboard(make_metrics(), SCENARIO)
    tex = scenario_latex(table, SCENARIO)
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1
    assert tex.count(r"\midrule") == 3  # header | zero-filled | self-supervised | supervised
    assert r"\textbf{31.00 $\pm$ 0.82}" in tex  # the best values, not the label
    assert r"\textbf{SSDU}" not in tex
    assert r"$\pm$" in tex
    assert tex.isascii()  # pdflatex sets it without unicode packages (±, Δ, †, − are escaped)
    body = [line for line in tex.splitlines() if line.endswith("\\\\")][1:]  # below the groups
    assert all(line.count("&") == body[0].count("&") for line in body)


def test_combined_table_lists_every_method_once_per_scenario() -> None:
    noisy = build_leaderboard(make_metrics(), SCENARIO)
    other_rows = {key: value for key, value in PSNR.items() if key[0] != "mc"}
    single = build_leaderboard(
        make_metrics(other_rows).assign(scenario="single-coil"), "single-coil"
    )
    text = combined_markdown({"noisy": noisy, "single-coil": single})
    rows = [line for line in text.splitlines() if line.startswith("| MC")]
    assert len(rows) == 1
    assert rows[0].split("|")[3].strip() == "–"  # MC not run in single-coil
    zf = next(
        line for line in text.splitlines() if line.startswith(f"| {METHODS['zero-filled'].label}")
    )
    assert "[24.34]" in zf
    assert "[27.67]" in zf  # paper PSNR of each scenario in brackets
    tex = combined_latex({"noisy": noisy, "single-coil": single})
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert body[0].count(r"\multicolumn{2}") == 2  # a PSNR + SSIM group per scenario
    assert all(line.count("&") == 4 for line in body[1:])


def test_leaderboard_rejects_other_scenarios_and_duplicates() -> None:
    metrics = make_metrics()
    with pytest.raises(ValueError, match="scenario"):
        build_leaderboard(metrics.assign(scenario="multicoil"), SCENARIO)
    with pytest.raises(ValueError, match="given twice"):
        leaderboard_table(pd.concat([metrics, metrics.iloc[:1]]))


def _store_and_metrics(tmp_path: Path, frame: pd.DataFrame | None = None) -> tuple[Path, list]:
    store = tmp_path / "store.h5"
    frame = make_metrics() if frame is None else frame
    return store, write_metrics(tmp_path / "runs", with_provenance(frame, write_store(store)))


def test_cli_writes_scenario_and_combined_tables(tmp_path: Path) -> None:
    store, metrics = _store_and_metrics(tmp_path)
    out = tmp_path / "out"
    args = ["tables", "--data", str(store), "--metrics", *map(str, metrics), "--scenario", SCENARIO]
    args += ["--skipped", "moi: a reason", "--out-csv", str(out / "board.csv")]
    assert main([*args, "--out-md", str(out / "board.md"), "--out-tex", str(out / "b.tex")]) == 0
    table = pd.read_csv(out / "board.csv")
    assert table["method"].tolist() == ["mc", "zero-filled", "ssdu", "sup"]
    assert table["psnr_mean"].iloc[0] == pytest.approx(12.5)
    assert "a reason" in (out / "board.md").read_text()
    assert r"\begin{tabular}" in (out / "b.tex").read_text()

    combined = ["combined-table", "--tables", str(out / "board.csv"), "--out-csv"]
    combined += [str(out / "all.csv"), "--out-md", str(out / "all.md")]
    assert main([*combined, "--out-tex", str(out / "all.tex")]) == 0
    assert pd.read_csv(out / "all.csv").equals(table)
    assert "### All scenarios" in (out / "all.md").read_text()


def test_cli_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, metrics = _store_and_metrics(tmp_path)
    bad = ["tables", "--data", str(store), "--metrics", str(metrics[0]), "--scenario", SCENARIO]
    bad += ["--skipped", "x"]
    bad += ["--out-csv", str(tmp_path / "a.csv"), "--out-md", str(tmp_path / "a.md")]
    assert main([*bad, "--out-tex", str(tmp_path / "a.tex")]) == 2
    assert "METHOD: REASON" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()  # nothing written on a bad argument
    other = ["tables", "--data", str(store), "--metrics", str(metrics[0])]
    other += ["--scenario", "multicoil"]
    other += ["--out-csv", str(tmp_path / "b.csv"), "--out-md", str(tmp_path / "b.md")]
    assert main([*other, "--out-tex", str(tmp_path / "b.tex")]) == 2
    assert "expected only 'multicoil'" in capsys.readouterr().err
    (tmp_path / "broken.csv").write_text("scenario,method\nnoisy,mc\n")
    combined = ["combined-table", "--tables", str(tmp_path / "broken.csv"), "--out-csv"]
    combined += [str(tmp_path / "c.csv"), "--out-md", str(tmp_path / "c.md")]
    assert main([*combined, "--out-tex", str(tmp_path / "c.tex")]) == 2
    assert "broken.csv: no column(s)" in capsys.readouterr().err


def test_wilcoxon_p_values_match_hand_counts() -> None:
    from ssibench.report.stats import paired_p_values

    values = pd.DataFrame(
        {
            "best": [10.0, 10.0, 10.0, 10.0, 10.0],
            # differences −1, +2, −3, −4, −5: W⁺ = 2, and 3 of the 32 sign patterns have
            # W⁺ ≤ 2 ({}, {1}, {2}): two-sided p = 2·3/32
            "a": [9.0, 12.0, 7.0, 6.0, 5.0],
            "same": [10.0] * 5,
        }
    )
    p = paired_p_values(values, "best")
    assert p["a"] == pytest.approx(2 * 3 / 32)
    assert p["same"] == 1.0  # no difference at all: no evidence against the best
    assert np.isnan(p["best"])
    with pytest.raises(ValueError, match="same slices"):
        paired_p_values(values.assign(a=[9.0, np.nan, 7.0, 6.0, 5.0]), "best")


def _tables(store: Path, metrics: list, out: Path) -> list[str]:
    args = ["tables", "--data", str(store), "--metrics", *map(str, metrics), "--scenario", SCENARIO]
    args += ["--out-csv", str(out / "b.csv"), "--out-md", str(out / "b.md")]
    return [*args, "--out-tex", str(out / "b.tex")]


def test_tables_refuse_metrics_cut_to_part_of_the_test_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # observed: mc cut to 1 of 3 slices became bold "best" with ± 0.00
    store, metrics = _store_and_metrics(tmp_path)
    cut = pd.read_csv(metrics[0])
    cut[cut["sample"] == 0].to_csv(metrics[0], index=False)
    assert main(_tables(store, metrics, tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{metrics[0]}: covers 1 of the 3 test slices" in err
    assert "missing slice(s) 1, 2" in err
    assert "snakemake --cores all --force results/<dataset>/runs/" in err  # not a workflow path
    assert not (tmp_path / "b.csv").exists()


def test_tables_refuse_metrics_of_another_store_and_non_finite_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, metrics = _store_and_metrics(tmp_path)
    frame = pd.read_csv(metrics[1])
    frame.assign(store_hash="f" * 64).to_csv(metrics[1], index=False)
    assert main(_tables(store, metrics, tmp_path)) == 2
    assert f"{metrics[1]}: evaluated on another measurement store" in capsys.readouterr().err
    frame.assign(psnr=float("nan")).to_csv(metrics[1], index=False)
    assert main(_tables(store, metrics, tmp_path)) == 2
    assert "psnr is not finite for test slice(s) 0, 1, 2" in capsys.readouterr().err


def test_tables_refuse_metrics_beyond_the_store_and_repeated_slices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "small.h5"
    content = write_store(store, n_test=2)
    metrics = write_metrics(tmp_path / "runs", with_provenance(make_metrics(), content))
    assert main(_tables(store, metrics, tmp_path)) == 2
    assert "slice(s) 2 beyond the test split" in capsys.readouterr().err


def test_tables_mark_runs_made_by_other_code(tmp_path: Path) -> None:
    from ssibench.provenance import code_hash

    frame = make_metrics()
    store = tmp_path / "store.h5"
    content = write_store(store)
    current = frame["method"].map(code_hash)
    frame = frame.assign(store_hash=content, code_hash=current)
    frame.loc[frame["method"] == "ssdu", "code_hash"] = "a" * 64
    metrics = write_metrics(tmp_path / "runs", frame)
    assert main(_tables(store, metrics, tmp_path)) == 0
    markdown = (tmp_path / "b.md").read_text()
    assert "‡ ssdu seed 0: made by other code than the installed one (code hash aaaaaaaaaaaa" in (
        markdown
    )
    assert "‡ mc" not in markdown


def _record(method: str, seed: int, content: str, training: str, epochs: int) -> dict:
    return {
        "method": method,
        "seed": seed,
        "config": {
            "model": {"num_iter": 2, "step_order": "dc-first", "scales": 2, "width": 8},
            "train": {"epochs": epochs, "batch_size": 4, "lr": 0.003, "amp": "none"},
        },
        "data": {
            "training_hash": training,
            "content_hash": content,
            "n_train": 2,
            "n_val": 1,
            "n_test": 3,
        },
        "ssibench_version": "0.1.0",
    }


def test_setup_under_the_table_comes_from_the_run_records(tmp_path: Path) -> None:
    # observed: the report described the command line's config (14 epochs) for 2-epoch results
    from ssibench.data.identity import store_identity

    store, metrics = _store_and_metrics(tmp_path)
    identity = store_identity(store)
    records = []
    for method, seed, epochs in (("mc", 0, 2), ("mc", 1, 2), ("ssdu", 0, 2), ("sup", 0, 20)):
        path = tmp_path / f"{method}{seed}.json"
        record = _record(method, seed, identity.content_hash, identity.training_hash, epochs)
        path.write_text(json.dumps(record))
        records.append(str(path))
    assert main([*_tables(store, metrics, tmp_path), "--records", *records]) == 0
    lines = (tmp_path / "b.md").read_text().splitlines()
    setup = next(line for line in lines if line.startswith("Setup"))
    assert setup.startswith("Setup, from the runs' records (`run.json`): MoDL iterations 2,")
    assert "epochs 2 (sup seed 0: 20)" in setup
    assert "train slices 2, val slices 1, test slices 3" in setup
    assert f"measurement store `{identity.content_hash[:12]}`" in setup


def test_tables_refuse_a_record_of_a_run_trained_on_other_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, metrics = _store_and_metrics(tmp_path)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_record("mc", 0, "c" * 64, "d" * 64, 2)))
    assert main([*_tables(store, metrics, tmp_path), "--records", str(path)]) == 2
    assert f"{path}: the run was trained on other data" in capsys.readouterr().err


def test_setup_names_raw_files_skipped_at_extraction(tmp_path: Path) -> None:
    import h5py

    from ssibench.data.identity import store_identity

    store, metrics = _store_and_metrics(tmp_path)
    with h5py.File(store, "a") as handle:
        handle.attrs["skipped_files"] = json.dumps([{"file": "bad.h5", "reason": "truncated"}])
    identity = store_identity(store)
    assert identity.skipped_files == ("bad.h5",)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_record("mc", 0, identity.content_hash, identity.training_hash, 2)))
    assert main([*_tables(store, metrics, tmp_path), "--records", str(path)]) == 0
    assert "1 bad raw file(s) skipped at extraction: bad.h5." in (tmp_path / "b.md").read_text()
