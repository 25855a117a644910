"""Named, seeded random streams.

One master seed (``seed`` in the config) is turned into independent ``torch.Generator`` streams by
name (``split``, ``masks``, ``noise``, ``shuffle``, ``loss``, ``eval``, ...). A stream's seed is

    seed(master, name) = int.from_bytes(sha256(f"{master}/{name}")[:8]) mod 2⁶³

so streams are stable across Python processes (unlike ``hash()``), independent of each other, and
adding a consumer of one stream never shifts another. No function here touches the global torch RNG.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["STREAMS", "derive_seed", "stream"]

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


def stream(master: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a fresh ``torch.Generator`` on ``device`` seeded for stream ``name``.

    Example:
        >>> g = stream(0, "masks")
        >>> torch.rand(2, generator=g).shape
        torch.Size([2])
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(master, name))
    return generator
