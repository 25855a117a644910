"""Compute device of a job: CUDA or CPU, and the GPU it claims (one job per GPU).

Device. ``--device auto`` uses CUDA when PyTorch sees a GPU (it honours ``CUDA_VISIBLE_DEVICES``,
which SLURM sets to the GPUs it granted) and the CPU otherwise; ``cpu``, ``cuda`` and ``cuda:N``
force a choice.

GPU assignment. ``snakemake --cores all --resources gpu=N`` runs N training jobs at once but gives
them no GPU ids, so every job sees every GPU. Every job that runs on CUDA claims its GPU: an
exclusive, non-blocking ``fcntl.flock`` on one lock file per GPU (named by the GPU's UUID, so jobs
with different ``CUDA_VISIBLE_DEVICES`` agree) in a folder private to the user
(``$SSIBENCH_GPU_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/ssibench-gpu-locks``, else
``<temp dir>/ssibench-gpu-locks-<uid>``; one owned by another user is refused). ``auto`` and
``cuda`` try the visible GPUs in order and keep the first they get, ``cuda:N`` takes GPU N. The
lock is held for the life of the process and released by the kernel when the process ends, even
on a crash, so a lock is never stale. When every GPU is claimed a training job waits (at most
``$SSIBENCH_GPU_WAIT_S``, a day by default, then fails naming the holders); an evaluation job
(short, not counted as a GPU job by the workflow) runs on the CPU instead, so a GPU is never
shared.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch

from ssibench.errors import ConfigError, RunLockedError
from ssibench.locks import lock_holder, private_folder, try_flock

__all__ = [
    "GPU_WAIT_ENV",
    "GPU_WAIT_S",
    "LOCK_DIR_ENV",
    "GpuClaim",
    "WhenBusy",
    "claim_gpu",
    "default_lock_dir",
    "device_log_line",
    "gpu_wait_s",
    "resolve_device",
]

#: Environment variable that overrides the GPU lock directory.
LOCK_DIR_ENV = "SSIBENCH_GPU_LOCK_DIR"

#: Seconds between two attempts to claim a GPU while all are taken.
POLL_S = 5.0

#: Environment variable that overrides :data:`GPU_WAIT_S`.
GPU_WAIT_ENV = "SSIBENCH_GPU_WAIT_S"

#: Longest wait (s) of a job for a GPU that other jobs hold: a day, longer than a paper-scale
#: training, so a queue of jobs on a workstation drains, while a lock held by a process that
#: never ends (a hung job, another user's) still ends in an error naming it.
GPU_WAIT_S = 24 * 3600.0


WhenBusy = Literal["wait", "cpu"]


def default_lock_dir() -> Path:
    """The GPU lock folder: ``$SSIBENCH_GPU_LOCK_DIR``, else one private to this user.

    ``$XDG_RUNTIME_DIR/ssibench-gpu-locks`` when the login session has a runtime folder (private
    to the user by the XDG spec), else ``<temp dir>/ssibench-gpu-locks-<uid>``. The folder is
    checked when a GPU is claimed (:func:`ssibench.io.private_folder`).
    """
    override = os.environ.get(LOCK_DIR_ENV)
    if override:
        return Path(override)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "ssibench-gpu-locks"
    return Path(tempfile.gettempdir()) / f"ssibench-gpu-locks-{os.getuid()}"


def gpu_wait_s() -> float:
    """Longest wait for a free GPU: ``$SSIBENCH_GPU_WAIT_S`` seconds, default :data:`GPU_WAIT_S`.

    Raises:
        ConfigError: a value that is not a number ≥ 0.
    """
    text = os.environ.get(GPU_WAIT_ENV)
    if not text:
        return GPU_WAIT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"${GPU_WAIT_ENV}: got {text!r}; expected a number of seconds ≥ 0")
    return seconds


class GpuClaim:
    """An exclusive claim on one visible GPU: an open, ``flock``-ed lock file.

    The claim lasts until :meth:`release` or the end of the process (the kernel drops the lock
    when the file descriptor closes, also when the process is killed).

    Attributes:
        index: the GPU's index among the visible devices (``cuda:<index>``).
        key: the GPU's identifier in the lock file name (its UUID when known).
        path: the lock file.
    """

    def __init__(self, index: int, key: str, path: Path, fd: int) -> None:
        self.index = index
        self.key = key
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the GPU back (close the lock file); calling it twice does nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"GpuClaim(index={self.index}, key={self.key!r}, path={str(self.path)!r})"


def _lock_name(key: str) -> str:
    """Lock file name of a GPU key; characters outside [A-Za-z0-9.-] become ``_``."""
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in key)
    return f"gpu-{safe}.lock"


def _try_lock(path: Path, index: int, key: str) -> GpuClaim | None:
    """Take the lock at ``path`` without blocking; None if another open file holds it.

    The lock file says who holds it (pid, host, GPU), for a person looking at the lock directory;
    a lock file another user created is locked read-only and not rewritten (see ``try_flock``).
    """
    info = (
        f"pid={os.getpid()} host={socket.gethostname()} index={index} key={key} "
        f"CUDA_VISIBLE_DEVICES={_visible_devices()}\n"
    )
    fd = try_flock(path, info)
    return None if fd is None else GpuClaim(index, key, path, fd)


def claim_gpu(
    n_devices: int,
    lock_dir: Path,
    keys: Sequence[str] | None = None,
    timeout_s: float | None = None,
    poll_s: float = POLL_S,
    log: Callable[[str], None] | None = None,
    wanted: Sequence[int] | None = None,
) -> GpuClaim:
    """Claim the first free one of ``n_devices`` visible GPUs by an exclusive lock file.

    GPU i is free when no open file holds the lock ``lock_dir/gpu-<keys[i]>.lock``. While all are
    taken, retry every ``poll_s`` seconds (saying so once through ``log``) until one is free or
    ``timeout_s`` has passed.

    Args:
        n_devices: number of visible GPUs (≥ 1).
        lock_dir: directory of the lock files (created, mode 0700, if missing). It must be on a
            local file system shared by the jobs that compete (flock is unreliable over NFS).
        keys: one stable identifier per visible GPU (the UUID, so jobs with different
            ``CUDA_VISIBLE_DEVICES`` still agree); default ``"0" … "n−1"``.
        timeout_s: give up after this many seconds; None waits for ever.
        poll_s: seconds between attempts.
        log: where the waiting message goes (default: stderr).
        wanted: the indices to try, in order (default: all; ``[n]`` for ``--device cuda:n``).

    Returns:
        The claim; ``claim.index`` is the GPU to use.

    Raises:
        ValueError: on ``n_devices < 1`` or a wrong number of keys.
        TimeoutError: when no GPU became free within ``timeout_s``.
    """
    if n_devices < 1:
        raise ValueError(f"claim_gpu: n_devices must be ≥ 1; got {n_devices}")
    keys = [str(i) for i in range(n_devices)] if keys is None else list(keys)
    if len(keys) != n_devices:
        raise ValueError(f"claim_gpu: expected {n_devices} keys, got {len(keys)}: {keys}")
    say = log if log is not None else (lambda message: print(message, file=sys.stderr))
    private_folder(
        lock_dir,
        "GPU lock folder",
        f"point ${LOCK_DIR_ENV} to a folder of your own "
        f"(mkdir -m 700 DIR; export {LOCK_DIR_ENV}=DIR)",
        # A folder several users share on purpose (mode 1777) is named in the variable.
        shared_sticky_ok=os.environ.get(LOCK_DIR_ENV) == str(lock_dir),
    )
    indices = list(range(n_devices)) if wanted is None else list(wanted)
    limit = "without limit" if timeout_s is None else f"up to {timeout_s:.0f} s"
    which = f"all {n_devices} visible GPUs" if wanted is None else f"GPU {indices[0]}"
    started = time.monotonic()
    waiting = False
    while True:
        for index in indices:
            claim = _try_lock(lock_dir / _lock_name(keys[index]), index, keys[index])
            if claim is not None:
                if waiting:
                    say(f"ssibench: GPU {index} is free now; claimed it")
                return claim
        waited = time.monotonic() - started
        if timeout_s is not None and waited >= timeout_s:
            raise TimeoutError(
                f"{which} stayed claimed by other ssibench jobs for {waited:.0f} s "
                f"({_holders(lock_dir, keys, indices)}); run fewer jobs at once (snakemake "
                "--resources gpu=N with N ≤ the number of GPUs), stop the holder, or raise "
                f"${GPU_WAIT_ENV}"
            )
        if not waiting:
            say(
                f"ssibench: {which} claimed by other ssibench jobs "
                f"({_holders(lock_dir, keys, indices)}); waiting {limit} for one to be free."
                " Snakemake's --resources gpu=N with N ≤ the number of GPUs avoids this."
            )
            waiting = True
        time.sleep(poll_s)


def _holders(lock_dir: Path, keys: Sequence[str], indices: Sequence[int] | None = None) -> str:
    """Who holds the GPU locks: ``GPU 0: pid 123 on host a, GPU 1: ...; locks in <dir>``."""
    held = []
    for index in range(len(keys)) if indices is None else indices:
        note = lock_holder(lock_dir / _lock_name(keys[index]))
        held.append(f"GPU {index}: pid {note.get('pid', '?')} on {note.get('host', '?')}")
    return f"{', '.join(held)}; locks in {lock_dir}"


#: The claim of this process, kept open for its whole life (see ``resolve_device``).
_PROCESS_CLAIM: list[GpuClaim] = []


def _gpu_keys(n_devices: int) -> list[str]:
    """UUID of each visible GPU; else the ``CUDA_VISIBLE_DEVICES`` entries; else the indices."""
    try:
        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(n_devices)]
    except (AttributeError, RuntimeError, AssertionError):
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
        if len(visible) == n_devices and all(visible):
            return visible
        return [str(i) for i in range(n_devices)]


def resolve_device(
    name: str,
    when_busy: WhenBusy = "wait",
    lock_dir: Path | None = None,
    timeout_s: float | None = None,
) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N`` into a ``torch.device``, claiming the GPU it runs on.

    ``auto`` is CUDA when visible, else CPU. Every CUDA job claims its GPU with :func:`claim_gpu`
    (held until the process ends; a second call in the same process returns the same GPU) and
    makes it the current CUDA device: ``auto`` or ``cuda`` the first free visible GPU, ``cuda:N``
    GPU N. So two jobs never share a GPU, whatever their ``CUDA_VISIBLE_DEVICES``.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        when_busy: if every GPU is claimed, ``"wait"`` for one (training; also ``cuda:N``) or run
            on the ``"cpu"`` (evaluation, a short job the workflow does not count as a GPU job,
            whose random draws are the same on either device).
        lock_dir: GPU lock directory; default :func:`default_lock_dir`.
        timeout_s: with ``"wait"``, give up after this many seconds (default :func:`gpu_wait_s`).

    Raises:
        ConfigError: for an unknown device name or CUDA requested where none is visible.
        RunLockedError: the wait ended with every wanted GPU still claimed; names the holders.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise ConfigError(f"--device: {error}; use auto, cpu, cuda or cuda:N") from error
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"--device: {name!r} is not supported; use auto, cpu, cuda or cuda:N")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} requested but no CUDA device is visible "
                f"(CUDA_VISIBLE_DEVICES={_visible_devices()}); use --device cpu or auto"
            )
    if device.type != "cuda":
        return device
    n_devices = torch.cuda.device_count()
    if device.index is not None and device.index >= n_devices:
        raise ConfigError(
            f"--device {name}: only {n_devices} CUDA device(s) visible "
            f"(CUDA_VISIBLE_DEVICES={_visible_devices()}); use cuda:0 … cuda:{n_devices - 1}"
        )
    held = _PROCESS_CLAIM[0].index if _PROCESS_CLAIM else None
    if held is not None and device.index in (None, held):
        device = torch.device("cuda", held)
        torch.cuda.set_device(device)
        return device
    lock_dir = lock_dir if lock_dir is not None else default_lock_dir()
    keys = _gpu_keys(n_devices)
    wanted = None if device.index is None else [device.index]
    if when_busy == "cpu" and wanted is None:
        claim = _claim_or_none(n_devices, lock_dir, keys)
        if claim is None:
            print(
                f"ssibench: all {n_devices} visible GPUs are claimed by other ssibench jobs "
                f"({_holders(lock_dir, keys)}); running on the CPU instead of sharing one",
                file=sys.stderr,
            )
            return torch.device("cpu")
    else:
        wait_s = gpu_wait_s() if timeout_s is None else timeout_s
        try:
            claim = claim_gpu(n_devices, lock_dir, keys, timeout_s=wait_s, wanted=wanted)
        except TimeoutError as error:
            raise RunLockedError(str(error)) from None
    _PROCESS_CLAIM.append(claim)
    print(
        f"ssibench: claimed GPU {claim.index} of {n_devices} (lock {claim.path})", file=sys.stderr
    )
    device = torch.device("cuda", claim.index)
    torch.cuda.set_device(device)
    return device


def _claim_or_none(n_devices: int, lock_dir: Path, keys: Sequence[str]) -> GpuClaim | None:
    """One pass of :func:`claim_gpu`: a free GPU's claim, or None when all are taken."""
    try:
        return claim_gpu(n_devices, lock_dir, keys, timeout_s=0.0, log=lambda _: None)
    except TimeoutError:
        return None


def _visible_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


def device_log_line(device: torch.device) -> str:
    """The line a job prints once: ``ssibench: device cuda:0 (CUDA_VISIBLE_DEVICES=0)``."""
    return f"ssibench: device {device} (CUDA_VISIBLE_DEVICES={_visible_devices()})"
