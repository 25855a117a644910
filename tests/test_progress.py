"""Progress lines on stderr (training, simulation, evaluation) and ``ssibench --quiet``.

Workflow jobs write stderr to a log file, where a tqdm bar shows nothing: these lines must appear
whether or not stderr is a terminal (pytest's capture is not one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ssibench.cli import main
from ssibench.evaluation.evaluate import evaluate
from ssibench.progress import format_duration, is_quiet, progress, set_quiet
from ssibench.simulate import simulate
from ssibench.training.loop import epoch_line

SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
EPOCHS = 3
SPEC = {
    "model": {"num_iter": 1, "step_order": "dc-first", "scales": 2, "width": 4},
    "train": {"epochs": EPOCHS, "batch_size": 2, "lr": 1e-3},
    "method_options": {},
    "scenario": SCENARIO,
    "evaluate": {"n_samples": 1},
}
#: One line of a finished epoch of EI (its terms: measurement consistency and equivariance).
EPOCH_LINE = re.compile(
    rf"epoch (\d+)/{EPOCHS}  loss_mc \S+  loss_ei \S+(?:  val_psnr \d+\.\d\d)?"
    r"  \S+ s/epoch  ETA \d+:\d\d:\d\d"
)


@pytest.fixture(autouse=True)
def _shown() -> Iterator[None]:
    """Every test starts and ends with progress shown (the switch is process-wide)."""
    set_quiet(False)
    yield
    set_quiet(False)


@pytest.fixture(scope="module")
def slices(tiny_slices: Path) -> Path:
    return tiny_slices


@pytest.fixture(scope="module")
def store(slices: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("progress") / "single-coil.h5"
    return simulate(slices, out, "single-coil", SCENARIO, seed=0)


def _train_args(store: Path, out_dir: Path) -> list[str]:
    return [
        "train",
        *("--data", str(store), "--out-dir", str(out_dir), "--method", "ei"),
        *("--spec", json.dumps(SPEC), "--device", "cpu"),
    ]


def test_progress_writes_one_flushed_line_unless_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    progress("simulate noisy: train 64/320 slices")
    assert capsys.readouterr().err == "simulate noisy: train 64/320 slices\n"
    set_quiet(True)
    assert is_quiet()
    progress("not shown")
    assert capsys.readouterr().err == ""


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert format_duration(0) == "0:00:00"
    assert format_duration(1780.4) == "0:29:40"
    assert format_duration(5 * 3600 + 61) == "5:01:01"
    assert format_duration(-3) == "0:00:00"


def test_epoch_line_names_each_term_validation_pace_and_eta() -> None:
    row = {"epoch": 3, "loss_total": 0.0579, "loss_mc": 0.0123, "loss_ei": 0.0456}
    row |= {"val_psnr": 31.2, "val_ssim": 0.9, "lr": 1e-3, "time_s": 12.0}
    assert epoch_line(row, 150, 12.3) == (
        "epoch 3/150  loss_mc 0.0123  loss_ei 0.0456  val_psnr 31.20  12.3 s/epoch  ETA 0:30:08"
    )
    del row["val_psnr"]  # an epoch without validation
    assert "val_psnr" not in epoch_line(row, 150, 12.3)
    assert epoch_line({**row, "epoch": 150}, 150, 12.3).endswith("ETA 0:00:00")


def test_training_prints_one_line_per_epoch_and_quiet_none(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train_args(store, tmp_path / "shown")) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == EPOCHS, err
    matches = [EPOCH_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert [int(match[1]) for match in matches if match] == list(range(1, EPOCHS + 1))
    assert all("val_psnr" in line for line in lines)  # val_every defaults to 1
    assert lines[-1].endswith("ETA 0:00:00")

    assert main(["--quiet", *_train_args(store, tmp_path / "quiet")]) == 0
    err = capsys.readouterr().err
    assert not [line for line in err.splitlines() if line.startswith("epoch ")], err
    assert "ssibench: device cpu" in err  # not a progress line: still shown
    assert (tmp_path / "quiet" / "model.pt").exists()


def test_quiet_keeps_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quiet", *_train_args(tmp_path / "absent.h5", tmp_path / "run")]) == 2
    assert "ssibench train: error: " in capsys.readouterr().err


def test_simulation_prints_one_line_per_chunk_of_each_split(
    slices: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulate(slices, tmp_path / "noisy.h5", "noisy", {**SCENARIO, "sigma": 0.05}, seed=0)
    lines = capsys.readouterr().err.splitlines()
    assert lines, "no progress"
    assert all(re.fullmatch(r"simulate noisy: (train|val|test) \d+/\d+ slices", x) for x in lines)
    ends = {line.split()[2]: line.split()[3] for line in lines}  # the last line of each split
    assert set(ends) == {"train", "val", "test"}
    assert all(end.split("/")[0] == end.split("/")[1] for end in ends.values())


def test_evaluation_prints_at_most_ten_lines_ending_with_every_slice(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {**SPEC, "train": {"batch_size": 1}}
    outputs = (tmp_path / "m.csv", tmp_path / "s.npz")
    metrics = evaluate(store, "zero-filled", tmp_path, 0, spec, torch.device("cpu"), *outputs)
    n_test = metrics["sample"].nunique()
    lines = capsys.readouterr().err.splitlines()
    assert 1 <= len(lines) <= 10
    assert all(re.fullmatch(r"evaluate zero-filled: \d+/\d+ test slices", x) for x in lines)
    assert lines[-1] == f"evaluate zero-filled: {n_test}/{n_test} test slices"


def test_a_loop_reports_each_tenth_once(capsys) -> None:
    from ssibench.progress import counted

    assert list(counted(list(range(25)), "extract raw", "volumes")) == list(range(25))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[0] == "extract raw: 2/25 volumes"
    assert lines[-1] == "extract raw: 25/25 volumes"
    list(counted([1, 2, 3], "read", "files"))
    assert capsys.readouterr().err.splitlines() == [f"read: {k}/3 files" for k in (1, 2, 3)]
