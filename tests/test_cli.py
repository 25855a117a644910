"""The ``ssibench`` command line: ``--version``, usage errors per subcommand, hints that work.

A hint names ``snakemake <path>`` only for a path the workflow writes; for any other path it says
what to pass instead and names a real target (``ssibench.errors.rebuild_hint``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ssibench
from ssibench.cli import main
from ssibench.errors import DataFileError, rebuild_hint, workflow_target
from ssibench.evaluation.evaluate import load_trained_model

SUBCOMMANDS = (
    "demo-data",
    "dataset",
    "extract",
    "simulate",
    "train",
    "evaluate",
    "tables",
    "combined-table",
    "figures",
)
STORE_TARGET = "snakemake --cores all data/measurements/<dataset>/<scenario>.h5"


def _train(data: str, out_dir: Path) -> list[str]:
    return ["train", "--data", data, "--out-dir", str(out_dir), "--method", "mc", "--device", "cpu"]


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``main(argv)``, which argparse ends with SystemExit."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    out, err = capsys.readouterr()
    return int(raised.value.code or 0), out, err


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(["--version"], capsys) == (0, f"ssibench {ssibench.__version__}\n", "")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_an_unknown_flag_shows_the_usage_of_its_subcommand(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _exit([command, "--bogus"], capsys)
    assert status == 2
    assert err.startswith(f"usage: ssibench {command} "), err
    assert f"ssibench {command}: error: " in err


def test_an_unknown_flag_after_every_required_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _exit([*_train("x.h5", tmp_path), "--bogus"], capsys)
    assert status == 2
    assert err.startswith("usage: ssibench train ")
    assert err.endswith("ssibench train: error: unrecognized arguments: --bogus\n")
    status, _, err = _exit(["figures", "samples", "--bogus"], capsys)  # a nested subcommand
    assert status == 2
    assert err.startswith("usage: ssibench figures samples ")


def test_an_unknown_flag_before_the_subcommand_shows_the_top_level_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _exit(["--bogus", *_train("x.h5", tmp_path)], capsys)
    assert status == 2
    assert err.startswith("usage: ssibench [-h]")
    assert "ssibench: error: unrecognized arguments: --bogus" in err


def test_a_missing_store_outside_the_workflow_names_a_real_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_train("nonexist.h5", tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "ssibench train: error: nonexist.h5: no such measurement store; " in err
    assert f"pass an existing one, or build one with `{STORE_TARGET}`" in err
    assert "snakemake --cores all nonexist.h5" not in err
    assert "--force nonexist.h5" not in err


def test_a_missing_workflow_store_is_built_by_its_own_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = "data/measurements/demo-32x32/noisy.h5"
    assert main(_train(store, tmp_path / "run")) == 2
    assert f"build it with `snakemake --cores all {store}`" in capsys.readouterr().err


def test_workflow_targets_are_paths_under_data_or_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for path in ("data/slices/demo-32x32.h5", "./results/demo-32x32/tables/leaderboard_all.csv"):
        assert workflow_target(path) == path.removeprefix("./")
    assert workflow_target(tmp_path / "data/measurements/d/s.h5") == "data/measurements/d/s.h5"
    for path in ("nonexist.h5", "elsewhere/data/slices/d.h5", "../results/x.csv", "data/x.h5"):
        assert workflow_target(path) is None, path
    assert workflow_target(tmp_path.parent / "results" / "x.csv") is None  # outside the workdir


def test_hints_force_an_existing_workflow_output_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    metrics = Path("results/demo-32x32/runs/noisy/mc/seed0/metrics.csv")
    assert rebuild_hint(metrics).startswith(f"build it with `snakemake --cores all {metrics}`")
    metrics.parent.mkdir(parents=True)
    metrics.touch()
    assert rebuild_hint(metrics).startswith(
        f"rebuild it with `snakemake --cores all --force {metrics}`"
    )
    assert rebuild_hint(tmp_path / metrics) == rebuild_hint(metrics)  # absolute, in the workdir


def test_hints_for_files_outside_the_workflow_never_name_them_as_targets(tmp_path: Path) -> None:
    run = "results/<dataset>/runs/<scenario>/<method>/seed<k>"
    mine = tmp_path / "mine.csv"
    assert rebuild_hint(mine) == "pass an existing one"
    mine.touch()
    assert rebuild_hint(mine) == "write it again with the `ssibench` step that made it"
    model = tmp_path / "model.pt"
    assert rebuild_hint(model).endswith(f"`snakemake --cores all {run}/model.pt`")
    model.touch()
    assert rebuild_hint(model).endswith(f"`snakemake --cores all --force {run}/model.pt`")
    assert str(tmp_path) not in rebuild_hint(model)


def test_a_run_folder_without_a_model_names_a_real_target(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no trained model") as raised:
        load_trained_model(tmp_path, "mc", 0, {}, torch.device("cpu"))
    assert f"snakemake {tmp_path}" not in str(raised.value)
    assert "snakemake --cores all results/<dataset>/runs/" in str(raised.value)
