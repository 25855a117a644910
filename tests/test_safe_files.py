"""Files from anywhere are data: a crafted checkpoint runs nothing, a lock or sweep nothing else.

Each test replays one finding of the safe-inputs review with a crafted file made here, and
checks the one clear error a user now sees and that nothing was executed, written or deleted.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.torch_version import TorchVersion

from ssibench import device as device_module
from ssibench.device import claim_gpu
from ssibench.errors import DataFileError, WriteError
from ssibench.evaluation.checkpoint import read_checkpoint
from ssibench.evaluation.evaluate import evaluate
from ssibench.io import sweep_temporaries
from ssibench.locks import LOCK_NAME, run_lock
from ssibench.safe_load import load_torch_file
from ssibench.training import CHECKPOINT, MODEL, train
from test_trust import _spec, _store

SPEC = _spec(1)
CPU = torch.device("cpu")


class _Payload:
    """Unpickling this object runs ``exec(code)``: what a crafted checkpoint can carry."""

    def __init__(self, marker):
        self.code = f"open({str(marker)!r}, 'w').write('executed')"

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny store (test_trust's) and a one-epoch mc run on it."""
    root = tmp_path_factory.mktemp("safe")
    store = _store(root, 0)
    train(store, root / "run", "mc", 0, SPEC, CPU)
    return {"store": store, "run": root / "run"}


def test_a_checkpoint_that_would_run_code_is_refused_before_anything_runs(trained, tmp_path):
    marker = tmp_path / "executed"
    crafted = tmp_path / "model.pt"
    saved = torch.load(trained["run"] / MODEL, weights_only=True)
    torch.save({**saved, "payload": _Payload(marker)}, crafted)
    with pytest.raises(DataFileError) as caught:
        read_checkpoint(crafted)
    message = str(caught.value)
    assert message.startswith(f"{crafted}: refused: the model contains builtins.exec")
    assert "never loads" in message
    assert not marker.exists()


def test_the_command_line_refuses_it_with_one_line_and_writes_nothing(trained, tmp_path):
    marker = tmp_path / "executed"
    crafted = tmp_path / "model.pt"
    torch.save(_Payload(marker), crafted)
    out = tmp_path / "metrics.csv"
    command = [sys.executable, "-m", "ssibench.cli", "evaluate", "--ckpt", str(crafted)]
    command += ["--data", str(trained["store"]), "--out-metrics", str(out)]
    command += ["--out-samples", str(tmp_path / "s.npz"), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{crafted}: refused: the model contains builtins.exec" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_crafted_model_in_a_run_folder_is_refused_by_evaluate(trained, tmp_path):
    marker = tmp_path / "executed"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": _Payload(marker)}, run / MODEL)
    with pytest.raises(DataFileError, match=r"refused: the model contains builtins\.exec"):
        evaluate(trained["store"], "mc", run, 0, SPEC, CPU, tmp_path / "m.csv", tmp_path / "s.npz")
    assert not marker.exists()
    assert not (tmp_path / "m.csv").exists()


def test_a_crafted_checkpoint_in_a_run_folder_is_refused_by_train(trained, tmp_path):
    marker = tmp_path / "executed"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"epoch": 1, "payload": _Payload(marker)}, run / CHECKPOINT)
    with pytest.raises(DataFileError) as caught:
        train(trained["store"], run, "mc", 0, SPEC, CPU)
    assert str(caught.value).startswith(f"{run / CHECKPOINT}: refused: the checkpoint contains")
    assert f"rm {run / CHECKPOINT}" in str(caught.value)
    assert not marker.exists()
    assert not (run / MODEL).exists()


def test_a_run_record_without_a_seed_is_one_message(trained, tmp_path):
    saved = torch.load(trained["run"] / MODEL, weights_only=True)
    broken = tmp_path / "model.pt"
    torch.save({**saved, "record": {**saved["record"], "seed": None}}, broken)
    with pytest.raises(DataFileError, match=r"names method 'mc' and seed None"):
        read_checkpoint(broken)


def test_a_checkpoint_with_missing_fields_is_one_message(trained, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"epoch": "1", "method": "mc", "seed": 0}, run / CHECKPOINT)
    with pytest.raises(
        DataFileError, match=r"not a checkpoint of `ssibench train` \('epoch' is str"
    ):
        train(trained["store"], run, "mc", 0, SPEC, CPU)


@pytest.mark.parametrize("older", ["no identity", "no scalers"])
def test_a_checkpoint_of_an_older_release_is_refused_naming_the_fix(trained, tmp_path, older):
    """No fill-in for checkpoints made before run identities or gradient scalers existed."""
    run = tmp_path / "run"
    train(trained["store"], run, "mc", 0, _spec(1), CPU)
    saved = torch.load(run / CHECKPOINT, weights_only=True)
    if older == "no identity":
        saved["identity"] = None
    else:
        del saved["state"]["scalers"]
    torch.save(saved, run / CHECKPOINT)
    with pytest.raises(DataFileError, match=r"checkpoint\.pt: .*; delete it \(rm .*\) to restart"):
        train(trained["store"], run, "mc", 0, _spec(2), CPU)


def test_older_files_with_a_torch_version_object_still_load(trained, tmp_path):
    # model.pt recorded torch.__version__ (a TorchVersion) before it was written as a str.
    saved = torch.load(trained["run"] / MODEL, weights_only=True)
    assert type(saved["record"]["torch_version"]) is str
    old = tmp_path / "model.pt"
    record = {**saved["record"], "torch_version": TorchVersion(torch.__version__)}
    torch.save({**saved, "record": record}, old)
    assert read_checkpoint(old).record["torch_version"] == torch.__version__
    assert load_torch_file(old, "hint")["method"] == "mc"


def test_numpy_values_are_not_trusted_either(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1), "scale": np.float64(2.0)}, path)
    with pytest.raises(DataFileError, match=r"refused: the file contains numpy"):
        load_torch_file(path, "re-save it")


def test_no_loader_in_the_package_allows_pickled_code():
    unsafe = re.compile(
        r"weights_only=False|allow_pickle=True|yaml\.(?:unsafe_)?load\(|pickle\.load"
    )
    root = Path(__file__).resolve().parents[1]
    found = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("src", "benchmarks", "examples", "workflow")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if unsafe.search(line)
    ]
    assert found == []


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_planted_run_lock_never_overwrites_its_target(tmp_path, kind):
    precious = tmp_path / "thesis.tex"
    precious.write_text("three years of work\n")
    run = tmp_path / "run"
    run.mkdir()
    (os.symlink if kind == "symlink" else os.link)(precious, run / LOCK_NAME)
    with pytest.raises(WriteError) as caught, run_lock(run):
        pass
    message = str(caught.value)
    assert message.startswith(f"{run / LOCK_NAME}: the lock file is a ")
    assert f"rm {run / LOCK_NAME}" in message
    assert precious.read_text() == "three years of work\n"


def test_a_planted_gpu_lock_never_overwrites_its_target(tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("mine\n")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.symlink(precious, locks / "gpu-0.lock")
    with pytest.raises(WriteError, match="the lock file is a symbolic link"):
        claim_gpu(1, locks, timeout_s=0.0)
    assert precious.read_text() == "mine\n"


def test_a_gpu_lock_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(locks).st_uid + 1)
    with pytest.raises(WriteError, match=r"owned by user id .*SSIBENCH_GPU_LOCK_DIR"):
        claim_gpu(1, locks, timeout_s=0.0)
    assert list(locks.iterdir()) == []


def test_a_gpu_lock_folder_others_may_write_is_refused(tmp_path):
    locks = tmp_path / "shared"
    locks.mkdir()
    locks.chmod(0o1777)
    with pytest.raises(WriteError, match=r"writable by other users \(mode 1777\)"):
        claim_gpu(1, locks, timeout_s=0.0)
    assert device_module._PROCESS_CLAIM == []


def test_a_shared_sticky_lock_folder_named_on_purpose_is_used(tmp_path, monkeypatch):
    locks = tmp_path / "shared"
    locks.mkdir()
    locks.chmod(0o1777)
    monkeypatch.setenv("SSIBENCH_GPU_LOCK_DIR", str(locks))
    claim = claim_gpu(1, locks, timeout_s=0.0)
    assert claim.path == locks / "gpu-0.lock"
    claim.release()


def test_the_sweep_leaves_a_users_file_of_the_old_temporary_shape(tmp_path):
    target = tmp_path / "metrics.csv"
    notes = tmp_path / ".metrics.my_notes.tmp.csv"
    notes.write_text("my notes\n")
    precious = tmp_path / "precious.csv"
    precious.write_text("keep\n")
    dead = _reaped_pid()
    link = tmp_path / f".metrics.{dead}.0123abcd.tmp.csv"
    os.symlink(precious, link)  # the name of a dead writer's temporary, but not a file of ours
    assert sweep_temporaries(target) == []
    assert notes.read_text() == "my notes\n"
    assert link.is_symlink()
    assert precious.read_text() == "keep\n"


def _reaped_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
