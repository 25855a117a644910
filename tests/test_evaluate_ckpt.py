"""``ssibench evaluate --ckpt``: a copied model.pt evaluates as its run; clear one-line errors.

Before ``--ckpt``, evaluating a model.pt outside its run folder needed the run's exact ``--spec``
(without it: "trained with another configuration", with a rebuild hint that does not apply), and
a plain state_dict could not be evaluated at all ("no run record"). Both are replayed first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from ssibench.cli import main
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.checkpoint import read_checkpoint
from ssibench.evaluation.evaluate import evaluate, evaluate_checkpoint
from ssibench.simulate import simulate
from ssibench.training import MODEL, train

SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
MODEL_SPEC = {"num_iter": 1, "scales": 2, "width": 4}
SPEC = {
    "model": MODEL_SPEC,
    "train": {"epochs": 1, "batch_size": 2},
    "method_options": {},
    "scenario": SCENARIO,
    "evaluate": {"n_samples": 1},
}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_slices: Path) -> dict[str, Path]:
    """A tiny store, an ``mc`` run trained on it, its workflow metrics and a plain state_dict."""
    root = tmp_path_factory.mktemp("ckpt")
    store = simulate(tiny_slices, root / "store.h5", "sc", SCENARIO, seed=0)
    run = root / "run"
    train(store, run, "mc", 0, SPEC, CPU)
    evaluate(store, "mc", run, 0, SPEC, CPU, run / "metrics.csv", run / "samples.npz")
    plain = root / "plain.pt"
    torch.save(torch.load(run / MODEL, weights_only=True)["model"], plain)
    return {"store": store, "run": run, "plain": plain}


def _cli(capsys, *args: str | Path) -> tuple[int, str]:
    status = main(["evaluate", "--device", "cpu", *map(str, args)])
    return status, capsys.readouterr().err


def _outputs(folder: Path) -> list[str]:
    return ["--out-metrics", str(folder / "metrics.csv"), "--out-samples", str(folder / "s.npz")]


def _one_line_error(err: str, *parts: str) -> str:
    """The CLI's error line; fails if there is a traceback or a part is missing."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ssibench evaluate: error:")]
    assert len(lines) == 1, err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def test_before_ckpt_a_copied_model_needed_the_runs_exact_spec(trained, capsys, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(trained["run"] / MODEL, copy / MODEL)
    status, err = _cli(
        capsys, "--data", trained["store"], "--method", "mc", "--run-dir", copy, *_outputs(copy)
    )
    assert status == 2
    _one_line_error(err, "trained with another configuration (model.num_iter: 1 → 3")
    shutil.copy(trained["plain"], copy / MODEL)
    status, err = _cli(
        capsys, "--data", trained["store"], "--method", "mc", "--run-dir", copy, *_outputs(copy)
    )
    assert status == 2
    _one_line_error(err, "no run record")


def test_a_copied_model_pt_reproduces_its_runs_metrics(trained, capsys, tmp_path):
    elsewhere = tmp_path / "downloads" / "any-name.pt"
    elsewhere.parent.mkdir()
    shutil.copy(trained["run"] / MODEL, elsewhere)
    out = tmp_path / "eval"
    status, err = _cli(capsys, "--data", trained["store"], "--ckpt", elsewhere, *_outputs(out))
    assert status == 0, err
    assert (out / "metrics.csv").read_bytes() == (trained["run"] / "metrics.csv").read_bytes()
    # a --spec slice updates the stored one: n_samples changes, not the metrics
    status, err = _cli(
        capsys,
        *["--data", trained["store"], "--ckpt", elsewhere],
        *["--spec", '{"evaluate": {"n_samples": 2}}', *_outputs(tmp_path / "two")],
    )
    assert status == 0, err
    assert (tmp_path / "two" / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()


def test_a_plain_state_dict_needs_its_model_spec(trained, capsys, tmp_path):
    base = ["--data", trained["store"], "--ckpt", trained["plain"], *_outputs(tmp_path)]
    status, err = _cli(capsys, *base, "--method", "mc")
    assert status == 2
    line = _one_line_error(err, str(trained["plain"]), "a plain state_dict", "pass --model-spec")
    assert "e.g. --model-spec" in line
    status, err = _cli(capsys, *base, "--model-spec", json.dumps(MODEL_SPEC))
    assert status == 2
    _one_line_error(err, "does not name its method; pass --method")

    wrong = {**MODEL_SPEC, "width": 8}
    status, err = _cli(capsys, *base, "--method", "mc", "--model-spec", json.dumps(wrong))
    assert status == 2
    _one_line_error(
        err,
        f"{trained['plain']}: layer denoiser.encoders.0.0.weight has shape (4, 2, 3, 3) in the "
        "checkpoint, (8, 2, 3, 3) in the model built from spec",
        '"width": 8',
        "pass the model spec of the run that trained it",
    )
    status, err = _cli(capsys, *base, "--method", "mc", "--model-spec", '{"widht": 4}')
    assert status == 2
    _one_line_error(err, "--model-spec: model: unknown key(s) widht")

    status, err = _cli(capsys, *base, "--method", "mc", "--model-spec", json.dumps(MODEL_SPEC))
    assert status == 0, err
    ours = pd.read_csv(tmp_path / "metrics.csv")
    run = pd.read_csv(trained["run"] / "metrics.csv")
    assert set(ours["code_hash"]) == {"unrecorded"}  # no record says which code trained it
    pd.testing.assert_frame_equal(ours.drop(columns="code_hash"), run.drop(columns="code_hash"))


def test_a_model_pt_refuses_what_contradicts_it(trained, capsys, tmp_path):
    base = ["--data", trained["store"], "--ckpt", trained["run"] / MODEL, *_outputs(tmp_path)]
    status, err = _cli(capsys, *base, "--method", "ei")
    assert status == 2
    _one_line_error(err, "holds the model of method 'mc' seed 0, not 'ei' seed 0; leave out")
    status, err = _cli(capsys, *base, "--seed", "3")
    assert status == 2
    _one_line_error(err, "not 'mc' seed 3")
    status, err = _cli(capsys, *base, "--model-spec", json.dumps(MODEL_SPEC))
    assert status == 2
    _one_line_error(err, "records its own model spec; leave out --model-spec")
    status, err = _cli(capsys, *base, "--spec", '{"train": {"epochs": 3}}')
    assert status == 2
    _one_line_error(err, "trained with another configuration (train.epochs: 1 → 3)")
    assert not (tmp_path / "metrics.csv").exists()


def test_unusable_files_and_arguments_are_one_line_errors(trained, capsys, tmp_path):
    junk, foreign = tmp_path / "junk.pt", tmp_path / "foreign.pt"
    junk.write_bytes(b"not a checkpoint")
    torch.save({"weights": [1, 2], "epoch": 3}, foreign)
    for path, message in (
        (tmp_path / "missing.pt", "no such checkpoint"),
        (junk, "cannot read the model"),
        (foreign, "neither a model.pt written by `ssibench train`"),
    ):
        status, err = _cli(capsys, "--data", trained["store"], "--ckpt", path, *_outputs(tmp_path))
        assert status == 2
        _one_line_error(err, str(path), message)
    status, err = _cli(
        capsys, "--data", trained["store"], "--run-dir", tmp_path, *_outputs(tmp_path)
    )
    assert status == 2
    _one_line_error(err, "--method: required with --run-dir")


def test_the_library_call_matches_the_workflow_path(trained, tmp_path):
    checkpoint = read_checkpoint(trained["run"] / MODEL)
    assert (checkpoint.method, checkpoint.seed, checkpoint.record is not None) == ("mc", 0, True)
    metrics = evaluate_checkpoint(
        trained["store"], checkpoint, CPU, tmp_path / "m.csv", tmp_path / "s.npz"
    )
    pd.testing.assert_frame_equal(metrics, pd.read_csv(trained["run"] / "metrics.csv"))
    zero_filled = read_checkpoint(trained["plain"], method="zero-filled", model_spec=MODEL_SPEC)
    with pytest.raises(ConfigError, match="has no network; evaluate it without --ckpt"):
        evaluate_checkpoint(trained["store"], zero_filled, CPU, tmp_path / "z.csv", tmp_path / "z")
    with pytest.raises(DataFileError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "none.pt")
