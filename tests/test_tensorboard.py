"""``train.log_to: [tensorboard]``: live curves that change nothing about the run.

The event files are read back with TensorBoard's own reader. A run with the sink off writes no
folder and trains exactly as one with it on; the sink is not part of the run's identity (a
checkpoint made without it is resumed with it); a resumed run appends without showing a step
twice; the per-step values add no host sync to the step (audited on the stand-in device).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssibench.config.records import LOG_SINKS, parse_train_config
from ssibench.data.demo import write_demo_volumes
from ssibench.data.identity import store_scenario
from ssibench.data.measurements import read_measurements
from ssibench.data.slices import extract_slices
from ssibench.errors import ConfigError
from ssibench.pipeline import plan_runs
from ssibench.simulate import simulate
from ssibench.standin.audit import DeviceAudit
from ssibench.standin.check import STANDIN
from ssibench.training import CHECKPOINT, MODEL, RUN_RECORD, TRAIN_LOG, resolved_config, train
from ssibench.training.loop import _magnitude, _validation_pass, divergence_guarded, run_epoch
from ssibench.training.run import SINKS, build_trainable
from ssibench.training.tensorboard import TENSORBOARD_DIR
from test_trust import SCENARIO  # the tiny single-coil scenario of the run tests

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16
#: 6 training slices in batches of 4: 2 steps per epoch, the second one smaller
STEPS_PER_EPOCH = 2
ON = {"log_to": ["tensorboard"]}
CPU = torch.device("cpu")
#: ei: two loss terms (loss_mc, loss_ei)
METHOD = "ei"
TERMS = ("loss_mc", "loss_ei")


def _spec(epochs: int, **train: object) -> dict:
    return {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": epochs, "batch_size": 4, "lr": 1e-3, **train},
        "method_options": {},
        "scenario": SCENARIO,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tensorboard")
    write_demo_volumes(root / "raw", 10, 1, SIZE, SIZE, 2, seed=0)
    extract_slices(root / "raw", root / "slices.h5", (SIZE, SIZE), (0.6, 0.2, 0.2), seed=0)
    return simulate(root / "slices.h5", root / "single-coil.h5", "single-coil", SCENARIO, seed=0)


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory):
    """The same 2-epoch run with the sink on and off."""
    root = tmp_path_factory.mktemp("runs")
    train(store, root / "on", METHOD, 0, _spec(2, **ON), CPU)
    train(store, root / "off", METHOD, 0, _spec(2), CPU)
    return root / "on", root / "off"


def _events(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    events.Reload()
    return events


def _steps(events: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


def test_every_loss_term_lr_score_and_an_image_are_logged(runs) -> None:
    on, _ = runs
    events = _events(on)
    log = pd.read_csv(on / TRAIN_LOG)
    step_tags = [f"train_step/{name}" for name in ("loss_total", *TERMS)]
    epoch_tags = {f"train/{column}": column for column in log.columns if column[:4] != "val_"}
    epoch_tags |= {"val/psnr": "val_psnr", "val/ssim": "val_ssim"}
    assert {*step_tags, *epoch_tags, "train/lr"} <= set(events.Tags()["scalars"])
    for tag in step_tags:
        assert _steps(events, tag) == list(range(1, 2 * STEPS_PER_EPOCH + 1)), tag
    epoch_ends = [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    for tag, column in epoch_tags.items():
        assert _steps(events, tag) == epoch_ends, tag
        values = [event.value for event in events.Scalars(tag)]
        assert values == pytest.approx(log[column].tolist(), rel=1e-6), tag  # float32 in events
    # the epoch mean is the batch-size-weighted mean of its steps (batches of 4 and 2)
    steps = [event.value for event in events.Scalars("train_step/loss_ei")]
    assert (4 * steps[0] + 2 * steps[1]) / 6 == pytest.approx(log["loss_ei"][0], rel=1e-5)
    assert {"val/reconstruction", "val/target"} <= set(events.Tags()["images"])
    reconstructions = events.Images("val/reconstruction")
    assert [image.step for image in reconstructions] == epoch_ends
    assert (reconstructions[0].height, reconstructions[0].width) == (SIZE, SIZE)
    assert len(events.Images("val/target")) == 1


def test_a_run_without_the_sink_writes_nothing_and_trains_the_same(runs) -> None:
    on, off = runs
    assert not (off / TENSORBOARD_DIR).exists()
    model_on = torch.load(on / MODEL, weights_only=True)
    model_off = torch.load(off / MODEL, weights_only=True)
    assert model_on["model"].keys() == model_off["model"].keys()
    assert all(torch.equal(model_on["model"][k], model_off["model"][k]) for k in model_on["model"])
    # the weights, the log (but wall times), the record (but timestamps) and the stored spec
    log_on, log_off = (pd.read_csv(run / TRAIN_LOG).drop(columns="time_s") for run in runs)
    pd.testing.assert_frame_equal(log_on, log_off)
    records = [json.loads((run / RUN_RECORD).read_text()) for run in runs]
    for record in records:
        del record["started"], record["finished"]
        assert "log_to" not in record["config"]["train"]
    assert records[0] == records[1]
    assert model_on["spec"] == model_off["spec"]
    checkpoints = [torch.load(run / CHECKPOINT, weights_only=True)["identity"] for run in runs]
    assert checkpoints[0] == checkpoints[1]


def test_the_sink_is_not_part_of_the_resolved_configuration() -> None:
    assert resolved_config(_spec(2, **ON), METHOD) == resolved_config(_spec(2), METHOD)


def _job_specs(**train: object) -> tuple[dict, dict]:
    """The train and evaluate specs (Snakemake params) of one run of config.yaml + ``train``."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, {"train": train})
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    plan = plan_runs(config)
    scenario = next(iter(config["scenarios"]))
    return (
        json.loads(plan.train_spec(scenario, METHOD)),
        json.loads(plan.evaluate_spec(scenario, METHOD)),
    )


def test_the_jobs_params_carry_the_sink_only_to_training_and_only_when_on() -> None:
    """Off (the default), no job's params change; on, only the train jobs' do."""
    train_off, evaluate_off = _job_specs()
    assert "log_to" not in train_off["train"]
    train_on, evaluate_on = _job_specs(**ON)
    assert train_on["train"]["log_to"] == ["tensorboard"]
    assert evaluate_on == evaluate_off
    with pytest.raises(WorkflowError, match="tensorbord"):  # the schema's enum
        _job_specs(log_to=["tensorbord"])


def _next_second() -> None:
    """Wait for the clock's next second: event files are ordered by the second in their name."""
    second = int(time.time())
    while int(time.time()) == second:
        time.sleep(0.05)


def test_a_resumed_run_appends_without_showing_a_step_twice(store, tmp_path, capfd) -> None:
    run = tmp_path / "run"
    # a checkpoint made without the sink is resumed with it: logging is not the run's identity
    train(store, run, METHOD, 0, _spec(1), CPU)
    after_one = tmp_path / "after_one.pt"
    shutil.copy(run / CHECKPOINT, after_one)
    assert not (run / TENSORBOARD_DIR).exists()
    train(store, run, METHOD, 0, _spec(2, **ON), CPU)
    assert "after epoch 1" in capfd.readouterr().err
    assert _steps(_events(run), "train/loss_total") == [2 * STEPS_PER_EPOCH]
    # back to the epoch-1 state (as a run that starts over goes back to step 1): epoch 2 again
    shutil.copy(after_one, run / CHECKPOINT)
    (run / MODEL).unlink()
    _next_second()
    train(store, run, METHOD, 0, _spec(3, **ON), CPU)
    assert len(list((run / TENSORBOARD_DIR).iterdir())) == 2  # one event file per process
    events = _events(run)
    assert _steps(events, "train/loss_total") == [2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH]
    assert _steps(events, "train_step/loss_mc") == list(
        range(STEPS_PER_EPOCH + 1, 3 * STEPS_PER_EPOCH + 1)
    )
    log = pd.read_csv(run / TRAIN_LOG)
    values = [event.value for event in events.Scalars("train/loss_total")]
    assert values == pytest.approx(log["loss_total"][1:].tolist(), rel=1e-6)


def test_every_sink_name_has_a_writer() -> None:
    assert set(SINKS) == set(LOG_SINKS)


@pytest.mark.parametrize(
    ("log_to", "message"),
    [
        (["tensorbord"], "unknown sink 'tensorbord' (did you mean 'tensorboard'?); valid: "),
        ("tensorboard", "expected a list of sink names"),
        ([1], "expected a list of sink names"),
    ],
)
def test_an_unknown_sink_is_refused(store, tmp_path, log_to, message) -> None:
    with pytest.raises(ConfigError, match=r"train\.log_to: .*" + re.escape(message)):
        parse_train_config({"log_to": log_to})
    with pytest.raises(ConfigError, match=r"train\.log_to"):
        train(store, tmp_path / "run", METHOD, 0, _spec(1, log_to=log_to), CPU)
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_without_the_package_training_stops_before_it_starts(store, tmp_path, monkeypatch) -> None:
    # a missing package: `import tensorboard` fails, so does torch's module that needs it
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'ssibench\[tensorboard\]'"):
        train(store, tmp_path / "run", METHOD, 0, _spec(1, **ON), CPU)
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    assert not (tmp_path / "run" / TENSORBOARD_DIR).exists()


def test_the_recorded_steps_and_the_image_add_no_host_sync(store) -> None:
    """On the stand-in device, under the audit that names any host sync or CPU tensor."""
    spec = {**_spec(1), "scenario": store_scenario(store)}
    resolved = resolved_config(spec, METHOD)
    config = parse_train_config(resolved["train"])
    data = read_measurements(store, "train").to(STANDIN)
    run = build_trainable(METHOD, 0, resolved, data, config, STANDIN)
    step_terms = torch.zeros(STEPS_PER_EPOCH, len(TERMS), device=STANDIN)
    with DeviceAudit("an epoch recording its steps"):
        run_epoch(run, data, config.batch_size, 0, divergence_guarded(run, config), step_terms)
    val = read_measurements(store, "val").to(STANDIN)
    with DeviceAudit("a validation keeping its first image"):
        _, first = _validation_pass(run.model, val, config.batch_size, first_image=True)
    assert first is not None
    assert first.shape == (2, SIZE, SIZE)


def test_the_image_of_a_time_series_is_its_first_frame() -> None:
    x = torch.zeros(2, 3, 4, 5)  # (2, T, H, W)
    x[0, 0] = 3.0
    x[1, 0] = 4.0
    x[0, 1:] = 1.0
    magnitude = _magnitude(x)
    assert magnitude.shape == (4, 5)
    assert torch.equal(magnitude, torch.full((4, 5), 5.0))
