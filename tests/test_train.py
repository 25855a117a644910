import pandas as pd
import pytest
import torch

from ssibench.data.demo import write_demo_volumes
from ssibench.data.slices import extract_slices
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.evaluate import evaluate
from ssibench.methods import METHODS, skip_reason
from ssibench.simulate import simulate, simulate_scenario
from ssibench.training import CHECKPOINT, MODEL, TRAIN_LOG, train

SIZE = 32
SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
MODEL_SPEC = {"num_iter": 2, "step_order": "dc-first", "scales": 2, "width": 8}


def _spec(epochs, **scenario):
    return {
        "model": MODEL_SPEC,
        "train": {"epochs": epochs, "batch_size": 4, "lr": 1e-3},
        "method_options": {},
        "scenario": {**SCENARIO, **scenario},
        "evaluate": {"n_samples": 2},
    }


@pytest.fixture(scope="module")
def measurements(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    write_demo_volumes(
        root / "raw", n_volumes=20, n_slices=1, height=SIZE, width=SIZE, n_coils=2, seed=0
    )
    extract_slices(root / "raw", root / "slices.h5", (SIZE, SIZE), (0.6, 0.2, 0.2), seed=0)
    stores = {}
    for name, extra in {
        "single-coil": {},
        "multicoil": {"physics": "multicoil", "n_coils": 2},
    }.items():
        stores[name] = simulate(
            root / "slices.h5", root / f"{name}.h5", name, {**SCENARIO, **extra}, seed=0
        )
    return stores


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_interrupted_training_resumes_and_ends_with_identical_weights(measurements, tmp_path):
    data = measurements["single-coil"]
    cpu = torch.device("cpu")
    train(data, tmp_path / "straight", "ei", 0, _spec(3), cpu)
    # "killed" after the first epoch: a 1-epoch run leaves the same checkpoint as epoch 1 of 3
    train(data, tmp_path / "resumed", "ei", 0, _spec(1), cpu)
    checkpoint = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 1
    (tmp_path / "resumed" / MODEL).unlink()
    train(data, tmp_path / "resumed", "ei", 0, _spec(3), cpu)
    straight, resumed = _state(tmp_path / "straight" / MODEL), _state(tmp_path / "resumed" / MODEL)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    log = pd.read_csv(tmp_path / "resumed" / TRAIN_LOG)
    assert log["epoch"].tolist() == [1, 2, 3]
    assert {"loss_total", "loss_mc", "loss_ei", "val_psnr", "val_ssim", "lr", "time_s"} <= set(
        log.columns
    )
    assert log["loss_total"].tolist() == pytest.approx(
        pd.read_csv(tmp_path / "straight" / TRAIN_LOG)["loss_total"].tolist()
    )


def test_training_is_deterministic_for_a_seed_and_differs_between_seeds(measurements, tmp_path):
    data = measurements["single-coil"]
    cpu = torch.device("cpu")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(data, tmp_path / name, "ssdu", seed, _spec(1), cpu)
    a, b, c = (_state(tmp_path / name / MODEL) for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


TINY_SCENARIOS = {
    "single-coil": {},
    "noisy": {"sigma": 0.05},
    "single-operator": {"shared_mask": True},
    "multicoil": {"physics": "multicoil", "n_coils": 2},
    "sequential": {"physics": "sequential", "n_frames": 4, "frame_partition": "random"},
}


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_demo_volumes(
        root / "raw", n_volumes=6, n_slices=1, height=16, width=16, n_coils=2, seed=0
    )
    extract_slices(root / "raw", root / "slices.h5", (16, 16), (0.5, 0.25, 0.25), seed=0)
    stores = {}
    for name, extra in TINY_SCENARIOS.items():
        spec = {**SCENARIO, **extra}
        out = simulate_scenario(root / "slices.h5", root / f"{name}.h5", name, spec, seed=0)
        stores[name] = (out, spec)
    return stores


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("scenario", sorted(TINY_SCENARIOS))
def test_every_method_trains_and_evaluates_where_it_applies(
    tiny_stores, tmp_path, method, scenario
):
    data, scenario_spec = tiny_stores[scenario]
    if skip_reason(method, scenario_spec) is not None:
        pytest.skip(skip_reason(method, scenario_spec))
    options = {"d_dim": 4, "d_blocks": 2} if METHODS[method].adversarial else {}
    spec = {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3},
        "method_options": options,
        "scenario": scenario_spec,
        "evaluate": {"n_samples": 1},
    }
    if METHODS[method].trains:
        train(data, tmp_path, method, 0, spec, torch.device("cpu"))
        log = pd.read_csv(tmp_path / TRAIN_LOG)
        assert log.filter(like="loss_").notna().all().all()
    metrics = evaluate(
        data, method, tmp_path, 0, spec, torch.device("cpu"), tmp_path / "m.csv", tmp_path / "s.npz"
    )
    assert metrics[["psnr", "ssim", "nmse", "zf_psnr"]].notna().all().all()


@pytest.mark.parametrize("method", ["sup", "mc", "noise2inverse", "moi"])
def test_methods_train_and_evaluate_on_multicoil(measurements, tmp_path, method):
    data = measurements["multicoil"]
    spec = _spec(1, physics="multicoil", n_coils=2)
    train(data, tmp_path, method, 0, spec, torch.device("cpu"))
    metrics = evaluate(
        data, method, tmp_path, 0, spec, torch.device("cpu"), tmp_path / "m.csv", tmp_path / "s.npz"
    )
    assert set(metrics["mode"]) == {"ssibench", "fastmri"}
    assert metrics[["psnr", "ssim", "nmse", "zf_psnr"]].notna().all().all()


def test_zero_filled_evaluation_equals_its_own_baseline(measurements, tmp_path):
    import numpy as np

    data = measurements["single-coil"]
    metrics = evaluate(
        data,
        "zero-filled",
        tmp_path,
        0,
        _spec(0),
        torch.device("cpu"),
        tmp_path / "metrics.csv",
        tmp_path / "samples.npz",
    )
    assert (metrics["psnr"] == metrics["zf_psnr"]).all()
    assert len(metrics) == 2 * metrics["sample"].nunique()
    samples = np.load(tmp_path / "samples.npz")
    assert samples["target"].shape == (2, SIZE, SIZE)
    assert np.array_equal(samples["recon"], samples["zero_filled"])
    assert samples["target"].max() == pytest.approx(1.0, abs=1e-6) or samples["target"].max() <= 1.0


def test_supervised_learning_beats_zero_filled(measurements, tmp_path):
    data = measurements["single-coil"]
    spec = _spec(80)
    train(data, tmp_path, "sup", 0, spec, torch.device("cpu"))
    metrics = evaluate(
        data, "sup", tmp_path, 0, spec, torch.device("cpu"), tmp_path / "m.csv", tmp_path / "s.npz"
    )
    ours = metrics[metrics["mode"] == "ssibench"]
    assert ours["psnr"].mean() > ours["zf_psnr"].mean() + 1.0


def test_bad_inputs_are_clear_errors(measurements, tmp_path):
    with pytest.raises(ConfigError, match=r"train: unknown key\(s\) epoch"):
        train(
            measurements["single-coil"],
            tmp_path,
            "mc",
            0,
            {**_spec(1), "train": {"epoch": 1}},
            torch.device("cpu"),
        )
    with pytest.raises(DataFileError, match="no trained model"):
        evaluate(
            measurements["single-coil"],
            "mc",
            tmp_path / "none",
            0,
            _spec(1),
            torch.device("cpu"),
            tmp_path / "m.csv",
            tmp_path / "s.npz",
        )
    train(measurements["single-coil"], tmp_path / "run", "mc", 0, _spec(1), torch.device("cpu"))
    with pytest.raises(DataFileError, match="checkpoint of method 'mc' seed 0, not 'ei' seed 0"):
        train(measurements["single-coil"], tmp_path / "run", "ei", 0, _spec(2), torch.device("cpu"))


def test_a_killed_training_process_resumes_from_its_checkpoint(measurements, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    spec = _spec(20)
    command = [
        sys.executable,
        "-m",
        "ssibench.cli",
        "train",
        "--data",
        str(measurements["single-coil"]),
        "--out-dir",
        str(tmp_path),
        "--method",
        "mc",
        "--seed",
        "0",
        "--spec",
        json.dumps(spec),
        "--device",
        "cpu",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (tmp_path / CHECKPOINT).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (tmp_path / CHECKPOINT).exists()
    assert not (tmp_path / MODEL).exists()
    done = torch.load(tmp_path / CHECKPOINT, weights_only=True)["epoch"]
    assert 1 <= done < 20
    subprocess.run(command, check=True, capture_output=True)
    log = pd.read_csv(tmp_path / TRAIN_LOG)
    assert log["epoch"].tolist() == list(range(1, 21))
    assert (tmp_path / MODEL).exists()


def test_a_checkpoint_of_another_configuration_is_not_resumed(measurements, tmp_path, capfd):
    data = measurements["single-coil"]
    cpu = torch.device("cpu")
    train(data, tmp_path / "run", "mc", 0, _spec(1), cpu)
    changed = _spec(2)
    changed["train"]["lr"] = 5e-3
    train(data, tmp_path / "run", "mc", 0, changed, cpu)
    assert "training from scratch" in capfd.readouterr().err
    train(data, tmp_path / "fresh", "mc", 0, changed, cpu)
    assert pd.read_csv(tmp_path / "run" / TRAIN_LOG)["epoch"].tolist() == [1, 2]
    fresh, rerun = _state(tmp_path / "fresh" / MODEL), _state(tmp_path / "run" / MODEL)
    assert all(torch.equal(fresh[k], rerun[k]) for k in fresh)
