"""The Python front door (ssibench.api): the docs' notebook example, run twice; workflow parity."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

import ssibench
from ssibench.config import parse_model_config
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.evaluate import evaluate
from ssibench.losses import MCLoss
from ssibench.simulate import simulate
from ssibench.training import build_network, train
from test_trust import SCENARIO  # the tiny single-coil scenario of the run tests

ROOT = Path(__file__).resolve().parents[1]
MODEL_SPEC = {"num_iter": 1, "scales": 2, "width": 4}
TRAIN = {"epochs": 2, "batch_size": 2}
SPEC = {
    "model": MODEL_SPEC,
    "train": TRAIN,
    "method_options": {},
    "scenario": SCENARIO,
    "evaluate": {"n_samples": 1},
}
CPU = torch.device("cpu")
#: The columns that differ between two runs of the same network by construction.
RUN_COLUMNS = ["method", "code_hash"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_slices: Path) -> Path:
    """A finished workflow's layout: a store, and the zero-filled and MC runs scored on it."""
    root = tmp_path_factory.mktemp("workspace")
    store = root / "data/measurements/demo-40x40/single-coil.h5"
    store.parent.mkdir(parents=True)
    simulate(tiny_slices, store, "single-coil", SCENARIO, seed=0)
    runs = root / "results/demo-40x40/runs/single-coil"
    for method in ("zero-filled", "mc"):
        run = runs / method / "seed0"
        run.mkdir(parents=True)
        if method == "mc":
            train(store, run, method, 0, SPEC, CPU)
        evaluate(store, method, run, 0, SPEC, CPU, run / "metrics.csv", run / "samples.npz")
    return root


def notebook_example() -> str:
    """The first Python block of docs/extending.md's "From Python" section, as written."""
    text = (ROOT / "docs/extending.md").read_text()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_notebook_example_runs_twice_in_one_folder(workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    code = notebook_example()
    first: dict = {}
    exec(compile(code, "docs/extending.md", "exec"), first)
    err = capsys.readouterr().err
    assert "resuming" not in err
    table = first["table"]
    assert {"MC", "Zero-filled"} <= set(table["label"])
    mine = table[table["method"] == "mine (yours)"]
    assert len(mine) == 1
    assert mine["psnr_p_vs_run"].isna().all()  # the run against itself
    assert table.loc[table["method"] == "mc", "psnr_p_vs_run"].between(0, 1).all()
    assert len(first["scores"]) == 2 * 2  # both metric modes of the 2 test slices
    second: dict = {}
    exec(compile(code, "docs/extending.md", "exec"), second)
    err = capsys.readouterr().err
    assert "runs/mine/checkpoint.pt after epoch 5" in err  # resumed, not retrained
    assert "runs/ei/checkpoint.pt after epoch 5" in err
    pd.testing.assert_frame_equal(first["scores"], second["scores"])


def test_a_method_by_name_scores_as_the_workflows_metrics_csv(workspace, tmp_path):
    data = ssibench.load_store(workspace / "data/measurements/demo-40x40/single-coil.h5")
    run = ssibench.fit(
        "mc", data, out_dir=tmp_path / "mc", model_spec=MODEL_SPEC, device="cpu", **TRAIN
    )
    scores = ssibench.score(run, n_samples=1, device="cpu")
    workflow = pd.read_csv(
        workspace / "results/demo-40x40/runs/single-coil/mc/seed0/metrics.csv",
        dtype={"store_hash": str, "code_hash": str},
    )
    pd.testing.assert_frame_equal(scores, workflow)


def test_a_network_of_ones_own_on_mc_equals_the_mc_method(workspace, tmp_path):
    data = ssibench.load_store(workspace / "data/measurements/demo-40x40/single-coil.h5")
    network = build_network(parse_model_config(MODEL_SPEC), 0)  # the mc run's initial weights
    run = ssibench.fit(network, [MCLoss()], data, out_dir=tmp_path / "own", device="cpu", **TRAIN)
    scores = ssibench.score(run, n_samples=1, device="cpu")
    workflow = pd.read_csv(workspace / "results/demo-40x40/runs/single-coil/mc/seed0/metrics.csv")
    assert set(scores["method"]) == {"mine"}
    pd.testing.assert_frame_equal(
        scores.drop(columns=RUN_COLUMNS), workflow.drop(columns=RUN_COLUMNS)
    )
    assert (tmp_path / "own/weights.pt").is_file()
    assert (tmp_path / "own/run.json").is_file()


def test_another_setting_in_the_same_folder_says_why_it_starts_over(workspace, tmp_path, capsys):
    data = ssibench.load_store(workspace / "data/measurements/demo-40x40/single-coil.h5")
    network = build_network(parse_model_config(MODEL_SPEC), 0)
    ssibench.fit(network, [MCLoss()], data, out_dir=tmp_path / "run", device="cpu", epochs=1)
    capsys.readouterr()
    ssibench.fit(
        network, [MCLoss()], data, out_dir=tmp_path / "run", device="cpu", epochs=1, lr=0.01
    )
    err = capsys.readouterr().err
    assert "made with another configuration (train.lr: 0.001 → 0.01); training from scratch" in err


def test_misuse_is_one_clear_error(workspace, tmp_path):
    data = ssibench.load_store(workspace / "data/measurements/demo-40x40/single-coil.h5")
    network = build_network(parse_model_config(MODEL_SPEC), 0)
    with pytest.raises(ConfigError, match="pass the store second"):
        ssibench.fit("mc", [MCLoss()], data, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="pass the losses and a load_store"):
        ssibench.fit(network, data, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="name 'mc' is a method's"):
        ssibench.fit(network, [MCLoss()], data, out_dir=tmp_path, name="mc")
    with pytest.raises(ConfigError, match="train"):
        ssibench.fit(network, [MCLoss()], data, out_dir=tmp_path, batch_size=0)
    with pytest.raises(DataFileError, match=r"no metrics\.csv of any run"):
        ssibench.compare(pd.DataFrame({"method": ["x"]}), tmp_path / "results/none", "noisy")
    with pytest.raises(DataFileError, match=r"missing\.h5"):
        ssibench.load_store(tmp_path / "missing.h5")


def test_a_network_of_ones_own_gets_the_live_log_it_asks_for(workspace, tmp_path):
    pytest.importorskip("tensorboard")
    data = ssibench.load_store(workspace / "data/measurements/demo-40x40/single-coil.h5")
    network = build_network(parse_model_config(MODEL_SPEC), 0)
    out = tmp_path / "logged"
    ssibench.fit(
        network, [MCLoss()], data, out_dir=out, device="cpu", epochs=1, log_to=["tensorboard"]
    )
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
