"""Compute device of a job: CUDA or CPU, one GPU per job on a multi-GPU machine, mixed precision.

Device. ``--device auto`` uses CUDA when PyTorch sees a GPU (it honours ``CUDA_VISIBLE_DEVICES``,
which SLURM sets to the GPUs it granted) and the CPU otherwise; ``cpu``, ``cuda`` and ``cuda:N``
force a choice.

GPU assignment. ``snakemake --cores all --resources gpu=N`` runs N training jobs at once but gives
them no GPU ids, so every job sees every GPU. When ``auto`` or ``cuda`` (no index) resolves to CUDA
and more than one GPU is visible, the job claims one: it takes an exclusive, non-blocking
``fcntl.flock`` on one lock file per GPU in a lock directory (``$SSIBENCH_GPU_LOCK_DIR``, default
``<temp dir>/ssibench-gpu-locks-<uid>``), trying the visible GPUs in order and keeping the first it
gets. The lock is held for the life of the process and released by the kernel when the process
ends, even on a crash, so a lock is never stale. When every GPU is claimed a training job waits;
an evaluation job (short, not counted as a GPU job by the workflow) shares one instead. With one
visible GPU (e.g. SLURM's ``CUDA_VISIBLE_DEVICES=0``) nothing is locked.

Mixed precision. ``train.amp`` = ``none`` | ``bf16`` | ``fp16`` runs the network forwards (the
denoiser inside MoDL, the discriminator) under ``torch.autocast`` and casts their outputs back to
float32; the FFTs, the data-consistency step (CG included), the losses and the metrics stay
float32. fp16 needs a gradient scaler (:func:`grad_scaler`); bf16 does not.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.io import try_flock

__all__ = [
    "AMP_MODES",
    "LOCK_DIR_ENV",
    "GpuClaim",
    "WhenBusy",
    "autocast_dtype",
    "autocast_forward",
    "claim_gpu",
    "default_lock_dir",
    "device_log_line",
    "grad_scaler",
    "resolve_device",
]

#: Environment variable that overrides the GPU lock directory.
LOCK_DIR_ENV = "SSIBENCH_GPU_LOCK_DIR"

#: Seconds between two attempts to claim a GPU while all are taken.
POLL_S = 5.0

#: ``train.amp`` values → autocast dtype (None: full float32).
AMP_MODES: dict[str, torch.dtype | None] = {
    "none": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}

WhenBusy = Literal["wait", "share"]


def default_lock_dir() -> Path:
    """``$SSIBENCH_GPU_LOCK_DIR``, else ``<temp dir>/ssibench-gpu-locks-<uid>`` (one per user)."""
    override = os.environ.get(LOCK_DIR_ENV)
    if override:
        return Path(override)
    return Path(tempfile.gettempdir()) / f"ssibench-gpu-locks-{os.getuid()}"


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
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()
    waiting = False
    while True:
        for index, key in enumerate(keys):
            claim = _try_lock(lock_dir / _lock_name(key), index, key)
            if claim is not None:
                if waiting:
                    say(f"ssibench: GPU {index} is free now; claimed it")
                return claim
        waited = time.monotonic() - started
        if timeout_s is not None and waited >= timeout_s:
            raise TimeoutError(
                f"all {n_devices} visible GPUs stayed claimed by other ssibench jobs for "
                f"{waited:.0f} s (locks in {lock_dir}); run fewer jobs at once "
                "(snakemake --resources gpu=N with N ≤ the number of GPUs) or pass --device cuda:N"
            )
        if not waiting:
            say(
                f"ssibench: all {n_devices} visible GPUs are claimed by other ssibench jobs "
                f"(locks in {lock_dir}); waiting for one to be free. Snakemake's "
                "--resources gpu=N with N ≤ the number of GPUs avoids this."
            )
            waiting = True
        time.sleep(poll_s)


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
    """Turn ``auto|cpu|cuda|cuda:N`` into a ``torch.device``, claiming a GPU if several are visible.

    ``auto`` is CUDA when visible, else CPU. ``auto`` or ``cuda`` with more than one visible GPU
    claims one with :func:`claim_gpu` (held until the process ends; a second call in the same
    process returns the same GPU) and makes it the current CUDA device. ``cuda:N`` is used as
    given, without a lock.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        when_busy: if every GPU is claimed, ``"wait"`` for one (training) or ``"share"`` one
            without a lock (evaluation, a short job the workflow does not count as a GPU job).
        lock_dir: GPU lock directory; default :func:`default_lock_dir`.
        timeout_s: with ``"wait"``, give up after this many seconds (None: never).

    Raises:
        ConfigError: for an unknown device name or CUDA requested where none is visible.
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
    if device.index is not None:
        if device.index >= n_devices:
            raise ConfigError(
                f"--device {name}: only {n_devices} CUDA device(s) visible "
                f"(CUDA_VISIBLE_DEVICES={_visible_devices()}); use cuda:0 … cuda:{n_devices - 1}"
            )
        torch.cuda.set_device(device)
        return device
    if n_devices == 1:
        device = torch.device("cuda", 0)
    elif _PROCESS_CLAIM:
        device = torch.device("cuda", _PROCESS_CLAIM[0].index)
    else:
        lock_dir = lock_dir if lock_dir is not None else default_lock_dir()
        keys = _gpu_keys(n_devices)
        if when_busy == "wait":
            claim = claim_gpu(n_devices, lock_dir, keys, timeout_s=timeout_s)
        else:
            claim = _claim_or_none(n_devices, lock_dir, keys)
        if claim is None:
            index = os.getpid() % n_devices
            print(
                f"ssibench: all {n_devices} GPUs are claimed; sharing GPU {index} without a lock",
                file=sys.stderr,
            )
            device = torch.device("cuda", index)
        else:
            _PROCESS_CLAIM.append(claim)
            print(
                f"ssibench: claimed GPU {claim.index} of {n_devices} (lock {claim.path})",
                file=sys.stderr,
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


def autocast_dtype(amp: str, key: str = "train.amp") -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting (None for ``none``).

    Raises:
        ConfigError: for a value not in :data:`AMP_MODES`, naming ``key``.
    """
    if amp not in AMP_MODES:
        raise ConfigError(f"{key}: unknown value {amp!r}; allowed: {', '.join(AMP_MODES)}")
    return AMP_MODES[amp]


class _AutocastForward:
    """A module's bound ``forward`` run under autocast, its tensor output cast to float32."""

    def __init__(self, forward: Callable[..., Tensor], device_type: str, dtype: torch.dtype):
        self.forward = forward
        self.device_type = device_type
        self.dtype = dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.forward(*args, **kwargs)
        return out.float()


def autocast_forward(module: nn.Module, amp: str, device_type: str) -> nn.Module:
    """Make ``module``'s forward run under autocast with ``amp``'s dtype; return ``module``.

    y = float32(f(x)) with f evaluated under ``torch.autocast(device_type, dtype)``: layers on
    autocast's lists (convolutions, linear layers) compute in bf16/fp16, the output is float32
    again, so whatever follows (data consistency, FFT, losses, metrics) runs in float32. Nothing
    happens for ``amp = "none"``.

    The module's ``forward`` attribute is replaced on this instance (as Hugging Face Accelerate
    does) rather than wrapping the module in another one, so the parameter names, and hence
    ``model.pt``, are the same with and without mixed precision. Apply it to the denoiser inside
    MoDL (``network.denoiser``), not to MoDL, whose data-consistency steps must stay float32.

    Example:
        >>> net = autocast_forward(nn.Linear(3, 3), "bf16", "cpu")
        >>> net(torch.zeros(2, 3)).dtype
        torch.float32
    """
    dtype = autocast_dtype(amp)
    if dtype is not None:
        module.forward = _AutocastForward(module.forward, device_type, dtype)
    return module


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """Gradient scaler for ``amp``: enabled for fp16 only (its 5-bit exponent underflows).

    A disabled scaler is a pass-through (``scale(L)`` is L, ``step(opt)`` is ``opt.step()``), so
    the training step has one code path and ``amp = "none"`` computes exactly what a plain step
    does. Note that an enabled scaler reads its inf/NaN flag on the host once per optimiser step.
    """
    return torch.amp.GradScaler(device.type, enabled=autocast_dtype(amp) is torch.float16)
