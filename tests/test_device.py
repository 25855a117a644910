import multiprocessing
import os
import signal
import socket
import threading
import time

import pytest
import torch

from ssibench import device as device_module
from ssibench.cli.common import resolve_device as cli_resolve_device
from ssibench.device import (
    GPU_WAIT_ENV,
    GPU_WAIT_S,
    LOCK_DIR_ENV,
    claim_gpu,
    default_lock_dir,
    device_log_line,
    gpu_wait_s,
    resolve_device,
)
from ssibench.errors import ConfigError, RunLockedError

# Fork keeps the child cheap (no re-import of torch); the children only use os/fcntl.
FORK = multiprocessing.get_context("fork")


def _hold_claim(n_devices, lock_dir, report, release):
    """Child process: claim a GPU, report its index, hold it until ``release`` is set."""
    claim = claim_gpu(n_devices, lock_dir, timeout_s=5.0, poll_s=0.01)
    report.put(claim.index)
    release.wait(10.0)


def _start_holder(n_devices, lock_dir):
    report, release = FORK.Queue(), FORK.Event()
    process = FORK.Process(target=_hold_claim, args=(n_devices, lock_dir, report, release))
    process.start()
    return process, report.get(timeout=10.0), release


def test_claims_in_one_process_get_different_gpus_and_the_extra_one_times_out(tmp_path):
    first = claim_gpu(2, tmp_path)
    second = claim_gpu(2, tmp_path)
    assert (first.index, second.index) == (0, 1)
    messages = []
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="all 2 visible GPUs stayed claimed"):
        claim_gpu(2, tmp_path, timeout_s=0.2, poll_s=0.02, log=messages.append)
    assert time.monotonic() - started >= 0.2
    assert len(messages) == 1  # said once, not on every retry
    assert "waiting" in messages[0]
    first.release()
    second.release()


def test_concurrent_processes_get_different_gpus(tmp_path):
    process, child_index, release = _start_holder(2, tmp_path)
    try:
        mine = claim_gpu(2, tmp_path, timeout_s=0.0)
        assert {child_index, mine.index} == {0, 1}
        with pytest.raises(TimeoutError):
            claim_gpu(2, tmp_path, timeout_s=0.0)
        mine.release()
    finally:
        release.set()
        process.join(10.0)
    assert process.exitcode == 0


def test_a_released_lock_is_reusable_and_release_is_idempotent(tmp_path):
    claim = claim_gpu(3, tmp_path)
    assert claim.index == 0
    claim.release()
    claim.release()
    again = claim_gpu(3, tmp_path)
    assert again.index == 0
    again.release()


def test_the_lock_of_a_killed_process_is_free_again(tmp_path):
    process, child_index, _ = _start_holder(1, tmp_path)
    assert child_index == 0
    with pytest.raises(TimeoutError):
        claim_gpu(1, tmp_path, timeout_s=0.0)
    os.kill(process.pid, signal.SIGKILL)
    process.join(10.0)
    claim = claim_gpu(1, tmp_path, timeout_s=0.0)
    assert claim.index == 0
    claim.release()


def test_a_waiting_claimer_gets_the_gpu_released_meanwhile(tmp_path):
    held = [claim_gpu(2, tmp_path), claim_gpu(2, tmp_path)]
    threading.Timer(0.1, held[1].release).start()
    messages = []
    claim = claim_gpu(2, tmp_path, timeout_s=5.0, poll_s=0.02, log=messages.append)
    assert claim.index == 1
    assert "waiting" in messages[0]
    assert "GPU 1 is free now" in messages[-1]
    claim.release()
    held[0].release()


def test_lock_files_are_named_by_key_and_say_who_holds_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    claim = claim_gpu(2, tmp_path / "locks", keys=["GPU-aa", "MIG-GPU-bb/1/0"])
    other = claim_gpu(2, tmp_path / "locks", keys=["GPU-aa", "MIG-GPU-bb/1/0"])
    assert claim.path.name == "gpu-GPU-aa.lock"
    assert other.path.name == "gpu-MIG-GPU-bb_1_0.lock"
    content = claim.path.read_text()
    assert f"pid={os.getpid()}" in content
    assert "index=0 key=GPU-aa CUDA_VISIBLE_DEVICES=2,3" in content
    assert (tmp_path / "locks").stat().st_mode & 0o777 == 0o700
    claim.release()
    other.release()
    with pytest.raises(ValueError, match="expected 2 keys"):
        claim_gpu(2, tmp_path, keys=["a"])
    with pytest.raises(ValueError, match="n_devices must be ≥ 1"):
        claim_gpu(0, tmp_path)


def test_default_lock_dir_is_per_user_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert default_lock_dir().name == f"ssibench-gpu-locks-{os.getuid()}"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_lock_dir() == tmp_path / "ssibench-gpu-locks"
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "mine"))
    assert default_lock_dir() == tmp_path / "mine"


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend ``n`` GPUs are visible: returns a setter and the list of set_device calls."""
    current = []
    claims = []
    monkeypatch.setattr(device_module, "_PROCESS_CLAIM", claims)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)

    def visible(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        if n:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ",".join(str(4 + i) for i in range(n)))
        else:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    yield visible, current
    for claim in claims:
        claim.release()


def test_without_cuda_auto_is_cpu_and_cuda_is_a_clear_error(fake_cuda, tmp_path):
    visible, _ = fake_cuda
    visible(0)
    assert resolve_device("auto", lock_dir=tmp_path) == torch.device("cpu")
    assert resolve_device("cpu", lock_dir=tmp_path) == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"no CUDA device is visible.*use --device cpu"):
        resolve_device("cuda", lock_dir=tmp_path)
    with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0", lock_dir=tmp_path)
    with pytest.raises(ConfigError, match="'meta' is not supported"):
        resolve_device("meta", lock_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_one_visible_gpu_is_claimed_too(fake_cuda, tmp_path):
    # Two jobs that each see one GPU (e.g. CUDA_VISIBLE_DEVICES=4 in both) must not share it.
    visible, current = fake_cuda
    visible(1)
    assert resolve_device("auto", lock_dir=tmp_path) == torch.device("cuda", 0)
    assert resolve_device("cuda", lock_dir=tmp_path) == torch.device("cuda", 0)
    assert current == [torch.device("cuda", 0)] * 2
    assert [p.name for p in tmp_path.iterdir()] == ["gpu-4.lock"]
    with pytest.raises(TimeoutError):
        claim_gpu(1, tmp_path, keys=["4"], timeout_s=0.0)


def test_several_gpus_auto_claims_a_free_one_once_per_process(fake_cuda, tmp_path, capsys):
    visible, current = fake_cuda
    visible(3)
    # Another job holds the first visible GPU (CUDA_VISIBLE_DEVICES entry "4" is its key).
    other = claim_gpu(1, tmp_path, keys=["4"])
    device = resolve_device("auto", lock_dir=tmp_path)
    assert device == torch.device("cuda", 1)
    assert current[-1] == device
    assert "claimed GPU 1 of 3" in capsys.readouterr().err
    assert (tmp_path / "gpu-5.lock").exists()
    # The claim is held for the process: a second resolution returns the same GPU.
    assert resolve_device("cuda", lock_dir=tmp_path) == device
    last = claim_gpu(3, tmp_path, keys=["4", "5", "6"])
    assert last.index == 2
    last.release()
    other.release()


def test_an_explicit_cuda_index_is_claimed_and_waited_for(fake_cuda, tmp_path):
    visible, _ = fake_cuda
    visible(2)
    other = claim_gpu(2, tmp_path, keys=["4", "5"], wanted=[1])
    assert other.index == 1
    with pytest.raises(RunLockedError, match=rf"GPU 1 stayed claimed .*pid {os.getpid()}"):
        resolve_device("cuda:1", lock_dir=tmp_path, timeout_s=0.0)
    other.release()
    assert resolve_device("cuda:1", lock_dir=tmp_path) == torch.device("cuda", 1)
    assert device_module._PROCESS_CLAIM[0].path == tmp_path / "gpu-5.lock"
    with pytest.raises(ConfigError, match=r"only 2 CUDA device\(s\) visible.*cuda:0 … cuda:1"):
        resolve_device("cuda:2", lock_dir=tmp_path)


def test_when_all_gpus_are_claimed_evaluation_runs_on_the_cpu_and_training_waits(
    fake_cuda, tmp_path, capsys
):
    visible, _ = fake_cuda
    visible(2)
    held = [claim_gpu(2, tmp_path, keys=["4", "5"]) for _ in range(2)]
    assert resolve_device("auto", when_busy="cpu", lock_dir=tmp_path) == torch.device("cpu")
    err = capsys.readouterr().err
    assert "running on the CPU instead of sharing one" in err
    assert f"GPU 0: pid {os.getpid()} on {socket.gethostname()}" in err
    assert device_module._PROCESS_CLAIM == []
    with pytest.raises(RunLockedError, match="all 2 visible GPUs stayed claimed"):
        resolve_device("auto", when_busy="wait", lock_dir=tmp_path, timeout_s=0.0)
    for claim in held:
        claim.release()


def test_the_wait_for_a_gpu_is_bounded(monkeypatch):
    monkeypatch.delenv(GPU_WAIT_ENV, raising=False)
    assert gpu_wait_s() == GPU_WAIT_S == 86400.0
    monkeypatch.setenv(GPU_WAIT_ENV, "60")
    assert gpu_wait_s() == 60.0
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv(GPU_WAIT_ENV, bad)
        with pytest.raises(ConfigError, match=GPU_WAIT_ENV):
            gpu_wait_s()


def test_the_agreed_log_line(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert device_log_line(torch.device("cpu")) == "ssibench: device cpu (CUDA_VISIBLE_DEVICES=0)"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert cli_resolve_device("cpu") == torch.device("cpu")
    assert capsys.readouterr().err == "ssibench: device cpu (CUDA_VISIBLE_DEVICES=unset)\n"


def test_a_lock_file_this_user_cannot_write_is_still_locked(tmp_path, monkeypatch):
    # Another user's file in a shared lock directory: flock works on a read-only descriptor.
    path = tmp_path / "gpu-0.lock"
    path.write_text("pid=1 (another user)\n")
    real_open = os.open

    def open_as_another_user(name, flags, *args):
        if str(name) == str(path) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    claim = claim_gpu(1, tmp_path)
    assert claim.index == 0
    with pytest.raises(TimeoutError):
        claim_gpu(1, tmp_path, timeout_s=0.0)
    assert path.read_text() == "pid=1 (another user)\n"
    claim.release()
