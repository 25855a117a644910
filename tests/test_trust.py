"""Results you can trust: the observations of the provenance issue, replayed.

Each test replays one way a run could silently report wrong numbers (new data with an old model,
fewer epochs with a longer-trained model, divergence, a second trainer, a model evaluated on
another store) and checks that ssibench now retrains or stops with one clear message.
"""

import json

import pandas as pd
import pytest
import torch

from ssibench.data.demo import write_demo_volumes
from ssibench.data.identity import store_identity
from ssibench.data.slices import extract_slices
from ssibench.errors import DataFileError, RunLockedError, TrainingDivergedError
from ssibench.evaluation.evaluate import evaluate
from ssibench.locks import run_lock
from ssibench.provenance import code_hash
from ssibench.simulate import simulate
from ssibench.training import CHECKPOINT, MODEL, RUN_RECORD, TRAIN_LOG, train

SIZE = 16
SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
CPU = torch.device("cpu")


def _spec(epochs: int, lr: float = 1e-3) -> dict:
    return {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": epochs, "batch_size": 2, "lr": lr},
        "method_options": {},
        "scenario": SCENARIO,
        "evaluate": {"n_samples": 1},
    }


def _store(root, seed: int, split=(0.5, 0.25, 0.25)):
    write_demo_volumes(
        root / "raw", n_volumes=8, n_slices=1, height=SIZE, width=SIZE, n_coils=2, seed=0
    )
    extract_slices(root / "raw", root / f"slices{seed}.h5", (SIZE, SIZE), split, seed=seed)
    return simulate(root / f"slices{seed}.h5", root / f"store{seed}.h5", "sc", SCENARIO, seed=seed)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two stores of the same volumes: master seeds 0 and 1 (another split, masks and noise)."""
    root = tmp_path_factory.mktemp("trust")
    return {seed: _store(root, seed) for seed in (0, 1)}


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_store_hashes_identify_training_data_and_the_whole_store(stores, tmp_path):
    a, b = store_identity(stores[0]), store_identity(stores[1])
    assert a.training_hash != b.training_hash
    assert a.content_hash != b.content_hash
    slices = stores[0].parent / "slices0.h5"
    again = simulate(slices, tmp_path / "again.h5", "sc", SCENARIO, seed=0)
    assert store_identity(again).content_hash == a.content_hash  # a content hash, not a path
    assert a.n_test == 2


def test_new_data_retrains_instead_of_resuming(stores, tmp_path, capfd):
    # observed: a new master seed rebuilt the store, but training resumed "after epoch 12"
    run = tmp_path / "run"
    train(stores[0], run, "mc", 0, _spec(2), CPU)
    (run / MODEL).unlink()
    train(stores[1], run, "mc", 0, _spec(2), CPU)
    assert "trained on other data" in capfd.readouterr().err
    train(stores[1], tmp_path / "fresh", "mc", 0, _spec(2), CPU)
    assert _same(_weights(run / MODEL), _weights(tmp_path / "fresh" / MODEL))
    record = json.loads((run / RUN_RECORD).read_text())
    assert record["data"]["training_hash"] == store_identity(stores[1]).training_hash
    assert record["resumed_after_epoch"] == 0


def test_fewer_epochs_retrain_instead_of_reusing_a_longer_run(stores, tmp_path, capfd):
    # observed: 4 epochs requested after a 12-epoch run wrote the 12-epoch weights
    run = tmp_path / "run"
    train(stores[0], run, "mc", 0, _spec(3), CPU)
    train(stores[0], run, "mc", 0, _spec(1), CPU)
    assert "trained for 3 epochs, more than the 1 requested" in capfd.readouterr().err
    train(stores[0], tmp_path / "fresh", "mc", 0, _spec(1), CPU)
    assert _same(_weights(run / MODEL), _weights(tmp_path / "fresh" / MODEL))
    assert pd.read_csv(run / TRAIN_LOG)["epoch"].tolist() == [1]


def test_more_epochs_continue_the_run(stores, tmp_path, capfd):
    run = tmp_path / "run"
    train(stores[0], run, "mc", 0, _spec(1), CPU)
    train(stores[0], run, "mc", 0, _spec(2), CPU)
    assert f"resuming {run / CHECKPOINT} after epoch 1" in capfd.readouterr().err
    train(stores[0], tmp_path / "straight", "mc", 0, _spec(2), CPU)
    assert _same(_weights(run / MODEL), _weights(tmp_path / "straight" / MODEL))


def test_a_changed_setting_is_named_when_training_starts_over(stores, tmp_path, capfd):
    run = tmp_path / "run"
    train(stores[0], run, "mc", 0, _spec(1), CPU)
    train(stores[0], run, "mc", 0, _spec(1, lr=2e-3), CPU)
    assert "made with another configuration (train.lr: 0.001 → 0.002)" in capfd.readouterr().err


def test_divergence_stops_training_and_writes_nothing(stores, tmp_path):
    # observed: lr 1000 trained every epoch on NaN and wrote a NaN model.pt and metrics.csv
    with pytest.raises(TrainingDivergedError) as raised:
        train(stores[0], tmp_path, "mc", 0, _spec(3, lr=1e30), CPU)
    message = str(raised.value)
    assert message.startswith("mc: training diverged at epoch ")
    assert ", step " in message
    assert "(lr 1e+30)" in message
    assert "train.lr, or method_train.mc.lr" in message
    assert not (tmp_path / MODEL).exists()
    assert not (tmp_path / RUN_RECORD).exists()


def test_a_second_trainer_of_the_same_run_fails_at_once(stores, tmp_path):
    with run_lock(tmp_path / "run"), pytest.raises(RunLockedError, match="another trainer"):
        train(stores[0], tmp_path / "run", "mc", 0, _spec(1), CPU)


def test_evaluation_refuses_a_model_of_another_store_or_configuration(stores, tmp_path):
    run = tmp_path / "run"
    train(stores[0], run, "mc", 0, _spec(1), CPU)
    outputs = (tmp_path / "m.csv", tmp_path / "s.npz")
    with pytest.raises(DataFileError, match="trained on other data") as raised:
        evaluate(stores[1], "mc", run, 0, _spec(1), CPU, *outputs)
    assert "snakemake --cores all --force results/<dataset>/runs/" in str(raised.value)
    assert f"snakemake --cores all --force {run / MODEL}" not in str(raised.value)  # no rule for it
    with pytest.raises(DataFileError, match=r"another configuration \(train.epochs: 1 → 4\)"):
        evaluate(stores[0], "mc", run, 0, _spec(4), CPU, *outputs)
    assert not outputs[0].exists()
    metrics = evaluate(stores[0], "mc", run, 0, _spec(1), CPU, *outputs)
    assert set(metrics["store_hash"]) == {store_identity(stores[0]).content_hash}
    assert set(metrics["code_hash"]) == {code_hash("mc")}


def test_an_empty_validation_split_is_not_replaced_by_the_test_split(tmp_path, capfd):
    # observed: with no validation split, training silently validated on the test images
    store = _store(tmp_path, 0, split=(0.75, 0.0, 0.25))
    train(store, tmp_path / "run", "mc", 0, _spec(1), CPU)
    assert "no validation split (data.split.val is 0): validation is skipped" in (
        capfd.readouterr().err
    )
    assert "val_psnr" not in pd.read_csv(tmp_path / "run" / TRAIN_LOG).columns


def test_run_record_holds_the_resolved_configuration(stores, tmp_path):
    train(stores[0], tmp_path, "ssdu", 0, _spec(1), CPU)
    record = json.loads((tmp_path / RUN_RECORD).read_text())
    assert record["config"]["method_options"] == {"split_ratio": 0.6, "eval_n_samples": 1}
    assert record["config"]["train"]["epochs"] == 1
    assert record["config"]["model"]["width"] == 4
    assert record["config"]["model"]["step_order"] == "dc-first"  # a default, filled in
    assert record["code"]["hash"] == code_hash("ssdu")
    assert "ssibench.losses.splitting" in record["code"]["modules"]
    assert record["data"]["n_train"] == 4
    saved = torch.load(tmp_path / MODEL, weights_only=True)
    assert saved["record"] == record
