import errno
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from ssibench import io as io_module
from ssibench.errors import RunLockedError, WriteError
from ssibench.io import atomic_path, atomic_write_text, sweep_temporaries
from ssibench.locks import run_lock

# Fork keeps the children cheap (no re-import of torch); they only touch files and locks.
FORK = multiprocessing.get_context("fork")

SIZE = re.compile(r"\d+\.\d+ [MG]B free on ")


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_atomic_outputs_get_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.csv", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644


def test_temporary_names_carry_the_pid_and_keep_the_suffix(tmp_path):
    with atomic_path(tmp_path / "run" / "slices.h5") as tmp:
        assert tmp.parent == tmp_path / "run"
        assert re.fullmatch(rf"\.slices\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp\.h5", tmp.name)
        assert tmp.exists()
        tmp.write_text("x")
    assert os.listdir(tmp_path / "run") == ["slices.h5"]


def test_a_full_disk_in_the_block_is_a_write_error_naming_path_cause_and_space(
    tmp_path, monkeypatch
):
    target = tmp_path / "train_log.csv"
    target.write_text("old")

    def full_disk(self, data, *args, **kwargs):
        with self.open("w") as handle:
            handle.write(data[:3])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(WriteError) as caught:
        atomic_write_text(target, "epoch,loss\n1,0.5\n")
    message = str(caught.value)
    assert message.startswith(f"{target}: cannot write: No space left on device; ")
    assert SIZE.search(message)
    assert f"free space on {tmp_path} or point the workflow to a larger disk" in message
    assert caught.value.errno == errno.ENOSPC
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_torch_writer_errors_become_write_errors(tmp_path):
    target = tmp_path / "checkpoint.pt"
    original = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 123 vs 45")

    def half_written_then_fails() -> None:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"PK")
            raise original

    with pytest.raises(WriteError, match=re.escape(f"{target}: cannot write: ")) as caught:
        half_written_then_fails()
    assert "unexpected pos 123 vs 45" in str(caught.value)
    assert SIZE.search(str(caught.value))
    assert caught.value.__cause__ is original
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WriteError, match="file write failed"), atomic_path(target):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom"),
        # the zip *reader* also raises from inline_container.cc: a bad input, not a failed write
        RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central"),
        ValueError("not a write"),
    ],
)
def test_other_errors_in_the_block_keep_their_type(tmp_path, error):
    target = tmp_path / "model.pt"
    with pytest.raises(type(error)) as caught, atomic_path(target):
        raise error
    assert caught.value is error
    assert not isinstance(caught.value, WriteError)
    assert list(tmp_path.iterdir()) == []


def test_an_input_that_cannot_be_read_inside_the_block_keeps_its_error(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(FileNotFoundError) as caught, atomic_path(tmp_path / "out.csv"):
        missing.read_text()
    assert not isinstance(caught.value, WriteError)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_is_a_write_error_with_a_permission_hint(tmp_path, monkeypatch):
    target = tmp_path / "metrics.csv"

    def denied(source, destination):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), source, None, destination)

    monkeypatch.setattr(io_module.os, "replace", denied)
    with pytest.raises(WriteError) as caught:
        atomic_write_text(target, "x")
    monkeypatch.undo()
    assert str(caught.value).startswith(f"{target}: cannot write: Permission denied; ")
    assert f"check that you may write to {tmp_path}" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 kB tmpfs mounted on a fresh folder (root only), unmounted afterwards."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small file system")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 256 kB tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # lazy: torch or h5py may still hold the removed partial file open
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _save_torch(tmp):
    torch.save({"weights": torch.zeros(1_000_000)}, tmp)


def _save_numpy(tmp):
    np.save(tmp, np.zeros(1_000_000))


def _save_hdf5(tmp):
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("images", data=np.ones(1_000_000))


def _save_csv(tmp):
    pd.DataFrame({"a": np.arange(200_000)}).to_csv(tmp)


@pytest.mark.parametrize(
    ("name", "save"),
    [
        ("model.pt", _save_torch),
        ("array.npy", _save_numpy),
        ("slices.h5", _save_hdf5),
        ("metrics.csv", _save_csv),
    ],
)
def test_a_real_full_disk_says_no_space_left_and_leaves_nothing(tiny_disk, name, save):
    target = tiny_disk / name
    with pytest.raises(WriteError) as caught, atomic_path(target) as tmp:
        save(tmp)
    message = str(caught.value)
    assert message.startswith(f"{target}: cannot write: ")
    assert "no space left on device" in message.lower()
    assert SIZE.search(message)
    assert f"free space on {tiny_disk} or point the workflow to a larger disk" in message
    assert caught.value.__cause__ is not None
    assert os.listdir(tiny_disk) == []


def _reaped_child_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_sweep_removes_leftovers_of_dead_writers_only(tmp_path, capsys):
    target = tmp_path / "checkpoint.pt"
    dead = _reaped_child_pid()
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    leftovers = {
        "dead": tmp_path / f".checkpoint.{dead}.0123abcd.tmp.pt",
        "beyond_pid_max": tmp_path / f".checkpoint.{pid_max + 1}.89abcdef.tmp.pt",
    }
    kept = [
        tmp_path / f".checkpoint.{os.getpid()}.0123abcd.tmp.pt",  # a live writer
        tmp_path / ".checkpoint.k3j_x9a2.tmp.pt",  # no pid: cannot be proven a leftover
        tmp_path / ".checkpoint.my_notes.tmp.pt",  # a user's file of the same shape
        tmp_path / f".model.{dead}.0123abcd.tmp.pt",  # another target
        tmp_path / f".checkpoint.1.{dead}.0123abcd.tmp.pt",  # of checkpoint.1.pt
        tmp_path / f".checkpoint.{dead}.0123abcd.tmp.csv",  # of checkpoint.csv
        tmp_path / "checkpoint.pt",
    ]
    for path in [*leftovers.values(), *kept]:
        path.write_text("x")
    removed = sweep_temporaries(target)
    assert removed == sorted(leftovers.values())
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"ssibench: removed leftover {p} of an interrupted write" for p in removed]
    assert sweep_temporaries(target) == []
    assert sweep_temporaries(tmp_path / "missing" / "checkpoint.pt") == []


def _write_forever(target, report):
    """Child process: start an atomic write of ``target``, report its temporary, then hang."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"half a checkpoint")
        report.put(str(tmp))
        signal.pause()


def test_the_next_write_sweeps_the_leftover_of_a_killed_writer(tmp_path, capsys):
    target = tmp_path / "checkpoint.pt"
    report = FORK.Queue()
    writer = FORK.Process(target=_write_forever, args=(target, report))
    writer.start()
    leftover = Path(report.get(timeout=30.0))
    assert f".checkpoint.{writer.pid}." in leftover.name
    # While the writer lives its temporary is not touched by another write of the target.
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"one")
    assert leftover.exists()
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10.0)
    assert leftover.exists()  # SIGKILL: no cleanup ran
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"two")
    assert not leftover.exists()
    assert sorted(tmp_path.iterdir()) == [target]
    assert target.read_bytes() == b"two"
    assert f"removed leftover {leftover} of an interrupted write" in capsys.readouterr().err


CHILD_TAKES_LOCK = textwrap.dedent(
    """
    import sys
    from ssibench.errors import RunLockedError
    from ssibench.locks import run_lock
    try:
        with run_lock(sys.argv[1]):
            print("locked")
    except RunLockedError as error:
        print(error)
        sys.exit(3)
    """
)


def test_a_second_trainer_on_a_locked_run_fails_at_once(tmp_path):
    run = tmp_path / "runs" / "noisy" / "ssdu" / "seed0"
    with run_lock(run) as lock:
        assert lock == run / ".lock"
        note = lock.read_text()
        assert note.startswith(f"pid={os.getpid()} host={socket.gethostname()} started=")
        child = subprocess.run(
            [sys.executable, "-c", CHILD_TAKES_LOCK, str(run)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == 3, child.stderr
        started = note.split("started=")[1].strip()
        assert child.stdout.strip() == (
            f"{run}: another trainer is writing this run (pid={os.getpid()}, "
            f"host={socket.gethostname()}, since {started}); wait for it to finish or stop it "
            f"(kill {os.getpid()}), then re-run"
        )
        # Another open file in the same process conflicts too.
        with (
            pytest.raises(RunLockedError, match="another evaluator is writing"),
            run_lock(run, what="evaluator"),
        ):
            pass
    with run_lock(run):  # released on exit
        pass
    assert lock.exists()  # the lock file stays; only the flock is released


def _hold_lock(folder, report):
    """Child process: take the run lock, report, hang until killed."""
    with run_lock(folder):
        report.put(os.getpid())
        signal.pause()


def test_the_lock_of_a_killed_trainer_is_free_again(tmp_path):
    report = FORK.Queue()
    holder = FORK.Process(target=_hold_lock, args=(tmp_path, report))
    holder.start()
    pid = report.get(timeout=30.0)
    with (
        pytest.raises(RunLockedError, match=rf"\(pid={pid}, .*\(kill {pid}\)"),
        run_lock(tmp_path),
    ):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10.0)
    with run_lock(tmp_path) as lock:
        assert f"pid={os.getpid()} " in lock.read_text()
