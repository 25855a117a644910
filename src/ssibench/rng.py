"""Named, seeded random streams.

One master seed (``seed`` in the config) is turned into independent ``torch.Generator`` streams by
name (``split``, ``masks``, ``noise``, ``shuffle``, ``loss``, ``eval``, ...). A stream's seed is

    seed(master, name) = int.from_bytes(sha256(f"{master}/{name}")[:8]) mod 2⁶³

so streams are stable across Python processes (unlike ``hash()``), independent of each other, and
adding a consumer of one stream never shifts another. No function here touches the global torch RNG.

Every stream is a CPU generator, whatever device computes: :func:`rand`, :func:`randn`,
:func:`randint` and :func:`randperm` draw on the CPU and move the draw to the compute device with
:func:`on_device` (pinned memory, ``non_blocking``: no host sync). So a run's random numbers are
the same on any device, and a checkpoint holds only CPU generator states (it resumes anywhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "STREAMS",
    "derive_seed",
    "on_device",
    "rand",
    "randint",
    "randn",
    "randperm",
    "stream",
]

#: The stream names in use; a typo in a stream name raises instead of silently making a new stream.
STREAMS = (
    "split",
    "masks",
    "noise",
    "shuffle",
    "loss",
    "eval",
    "init",
    "demo",
    "discriminator",
    "unpaired",
)


def derive_seed(master: int, name: str) -> int:
    """Return the 63-bit seed of stream ``name`` under master seed ``master`` (sha256-based)."""
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; known streams: {', '.join(STREAMS)}")
    digest = hashlib.sha256(f"{int(master)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


def stream(master: int, name: str) -> torch.Generator:
    """Return a fresh CPU ``torch.Generator`` seeded for stream ``name``.

    Example:
        >>> g = stream(0, "masks")
        >>> torch.rand(2, generator=g).shape
        torch.Size([2])
    """
    generator = torch.Generator()
    generator.manual_seed(derive_seed(master, name))
    return generator


def on_device(tensor: Tensor, device: torch.device | str) -> Tensor:
    """``tensor`` (a CPU draw or constant) on ``device``, copied without a host sync.

    A copy from pageable memory makes CUDA wait for the stream to drain; from pinned memory
    with ``non_blocking=True`` it is queued like a kernel, so the GPU keeps running ahead of
    Python (https://pytorch.org/docs/stable/notes/cuda.html#use-pinned-memory-buffers).
    """
    device = torch.device(device)
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and torch.cuda.is_available():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def rand(
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """U[0, 1) of ``shape`` drawn on the CPU from ``generator``, on ``device``.

    ``generator=None`` draws from torch's global CPU generator (user code that seeds it).
    """
    return on_device(torch.rand(shape, generator=generator, dtype=dtype), device)


def randn(
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """N(0, 1) of ``shape`` drawn on the CPU from ``generator``, on ``device``."""
    return on_device(torch.randn(shape, generator=generator, dtype=dtype), device)


def randint(
    high: int, shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """Integers uniform in [0, ``high``) of ``shape`` (int64), drawn on the CPU, on ``device``."""
    return on_device(torch.randint(high, tuple(shape), generator=generator), device)


def randperm(n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
    """A random permutation of 0 … n−1 (int64), drawn on the CPU, on ``device``."""
    return on_device(torch.randperm(n, generator=generator), device)
