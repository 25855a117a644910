"""Leaderboard statistics and ordering, the Markdown table, the sample figure, and their CLI."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ssibench.cli import main
from ssibench.methods import METHODS
from ssibench.report import RunSamples, build_leaderboard, leaderboard_table, sample_figure

SCENARIO = "noisy"
#: PSNR per (method, seed) over three test slices; sup is worse than ssdu on purpose (must still
#: be listed last), zero-filled sits between mc and ssdu.
PSNR = {
    ("mc", 0): [10.0, 12.0, 14.0],
    ("mc", 1): [11.0, 13.0, 15.0],
    ("zero-filled", 0): [20.0, 20.0, 20.0],
    ("zero-filled", 1): [20.0, 20.0, 20.0],
    ("ssdu", 0): [30.0, 31.0, 32.0],
    ("ssdu", 1): [30.0, 31.0, 32.0],
    ("sup", 0): [25.0, 25.0, 25.0],
    ("sup", 1): [27.0, 27.0, 27.0],
}


def _metrics(psnr: dict[tuple[str, int], list[float]] = PSNR, fastmri: bool = True) -> pd.DataFrame:
    """Hand-made metrics rows: SSIM = PSNR / 100, NMSE = 1 / PSNR, zf_psnr = 20 + sample."""
    rows = []
    modes = ("ssibench", "fastmri") if fastmri else ("ssibench",)
    for (method, seed), values in psnr.items():
        for sample, value in enumerate(values):
            for mode in modes:
                offset = 0.0 if mode == "ssibench" else 1.0
                rows.append(
                    {
                        "scenario": SCENARIO,
                        "method": method,
                        "seed": seed,
                        "sample": sample,
                        "mode": mode,
                        "psnr": value + offset,
                        "ssim": value / 100,
                        "nmse": 1 / value,
                        "zf_psnr": 20.0 + sample,
                        "zf_ssim": 0.2,
                        "zf_nmse": 0.05,
                    }
                )
    return pd.DataFrame(rows)


def test_leaderboard_statistics_are_exact() -> None:
    table = leaderboard_table(_metrics()).set_index("method")
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
    table = leaderboard_table(_metrics(one_seed, fastmri=False)).set_index("method")
    assert table.loc["mc", "psnr_mean"] == pytest.approx(12.0)
    assert np.isnan(table.loc["mc", "psnr_seed_std"])
    assert "fastmri_psnr_mean" not in table.columns


def test_leaderboard_sorted_by_psnr_with_supervised_last() -> None:
    table = leaderboard_table(_metrics())
    assert table["method"].tolist() == ["mc", "zero-filled", "ssdu", "sup"]
    assert table["label"].tolist()[-1] == METHODS["sup"].label == "(Supervised)"
    assert table["label"].tolist()[1] == METHODS["zero-filled"].label


def test_markdown_is_paper_style_with_skipped_note() -> None:
    board = build_leaderboard(
        _metrics(), SCENARIO, skipped=[("moi", "needs a test reason"), ("ei", "another reason")]
    )
    lines = board.markdown.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    labels = [row.split("|")[1].strip().strip("*") for row in rows]
    assert labels == [METHODS[m].label for m in ("mc", "zero-filled", "ssdu", "sup")]
    assert rows[0].split("|")[2].strip() == f"12.50 ± {math.sqrt(8 / 3):.2f}"
    assert rows[0].split("|")[3].strip().startswith(".1250 ± ")  # SSIM without the leading zero
    assert rows[2].startswith("| **SSDU**")  # best self-supervised method in bold
    assert "PSNR seed std" in lines[2]  # two seeds: seed spread shown
    note = next(line for line in lines if line.startswith("Skipped"))
    assert "needs a test reason" in note
    assert METHODS["moi"].label in note
    assert "another reason" in note
    assert (board.table["scenario"] == SCENARIO).all()


def test_markdown_says_when_nothing_was_skipped() -> None:
    board = build_leaderboard(_metrics(), SCENARIO)
    assert "Skipped in this scenario: none." in board.markdown


def test_leaderboard_rejects_other_scenarios_and_duplicates() -> None:
    metrics = _metrics()
    with pytest.raises(ValueError, match="scenario"):
        build_leaderboard(metrics.assign(scenario="multicoil"), SCENARIO)
    with pytest.raises(ValueError, match="given twice"):
        leaderboard_table(pd.concat([metrics, metrics.iloc[:1]]))


def _runs(size: int = 8, k: int = 3) -> list[RunSamples]:
    rng = np.random.default_rng(0)
    target = rng.random((k, size, size), dtype=np.float32)
    runs = []
    for method, seed in PSNR:
        recon = target + 0.1 * rng.random((k, size, size), dtype=np.float32)
        runs.append(RunSamples(method, seed, np.arange(k), target, recon, target * 0.5))
    return runs


def test_sample_figure_has_one_panel_per_trained_method_plus_two() -> None:
    figure = sample_figure(_runs(), _metrics(), SCENARIO, sample_index=1)
    assert isinstance(figure, Figure)
    trained = {method for method, _ in PSNR if METHODS[method].trains}
    assert len(figure.axes) == len(trained) + 2
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0].startswith("Ground truth")
    assert titles[1] == "Zero-filled\n21.00 dB"  # zf_psnr of sample 1
    # panels in leaderboard order; each titled with that slice's PSNR for the lowest seed
    assert titles[2] == f"{METHODS['mc'].label}\n12.00 dB"
    assert titles[-1] == f"{METHODS['sup'].label}\n25.00 dB"
    # one shared grey scale
    limits = {ax.images[0].get_clim() for ax in figure.axes}
    assert len(limits) == 1


def test_sample_figure_rejects_mismatched_rows() -> None:
    runs = _runs()
    runs[1] = replace(runs[1], indices=runs[1].indices + 5)
    with pytest.raises(ValueError, match="different test rows"):
        sample_figure(runs, _metrics(), SCENARIO, sample_index=0)


def _write_runs(root: Path) -> tuple[list[Path], list[Path]]:
    metrics, samples = [], []
    frame = _metrics()
    for run in _runs():
        folder = root / run.method / f"seed{run.seed}"
        folder.mkdir(parents=True)
        rows = frame[(frame["method"] == run.method) & (frame["seed"] == run.seed)]
        rows.to_csv(folder / "metrics.csv", index=False)
        np.savez(
            folder / "samples.npz",
            indices=run.indices,
            target=run.target,
            recon=run.recon,
            zero_filled=run.zero_filled,
        )
        metrics.append(folder / "metrics.csv")
        samples.append(folder / "samples.npz")
    return metrics, samples


def test_cli_writes_tables_and_figure(tmp_path: Path) -> None:
    metrics, samples = _write_runs(tmp_path / "runs")
    out = tmp_path / "out"
    status = main(
        [
            "tables",
            "--metrics",
            *map(str, metrics),
            "--scenario",
            SCENARIO,
            "--skipped",
            "moi: a reason",
            "--out-csv",
            str(out / "board.csv"),
            "--out-md",
            str(out / "board.md"),
        ]
    )
    assert status == 0
    table = pd.read_csv(out / "board.csv")
    assert table["method"].tolist() == ["mc", "zero-filled", "ssdu", "sup"]
    assert table["psnr_mean"].iloc[0] == pytest.approx(12.5)
    assert "a reason" in (out / "board.md").read_text()

    figure_args = ["figures", "--metrics", *map(str, metrics), "--samples", *map(str, samples)]
    figure_args += ["--scenario", SCENARIO, "--out", str(out / "samples.png")]
    assert main([*figure_args, "--sample-index", "2"]) == 0
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(path.name for path in out.iterdir()) == ["board.csv", "board.md", "samples.png"]


def test_cli_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics, samples = _write_runs(tmp_path / "runs")
    out = tmp_path / "out.png"
    args = ["figures", "--metrics", *map(str, metrics), "--samples", *map(str, samples)]
    assert main([*args, "--scenario", SCENARIO, "--out", str(out), "--sample-index", "3"]) == 2
    assert "--sample-index 3" in capsys.readouterr().err
    assert main([*args, "--scenario", "multicoil", "--out", str(out)]) == 2
    assert "expected only 'multicoil'" in capsys.readouterr().err
    bad = ["tables", "--metrics", str(metrics[0]), "--scenario", SCENARIO, "--skipped", "x"]
    bad += ["--out-csv", str(tmp_path / "a.csv"), "--out-md", str(tmp_path / "a.md")]
    assert main(bad) == 2
    assert "METHOD: REASON" in capsys.readouterr().err
    assert not out.exists()
