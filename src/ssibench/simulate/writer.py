"""The chunked loop that draws and writes a measurement store, shared by every simulator.

Randomness: masks from the ``masks`` stream, noise from the ``noise`` stream, both CPU generators
of the master seed, drawn split by split (train, val, test) and chunk by chunk in a fixed order, so
the same seed gives a bit-identical store on any machine and whatever device later trains on it.
Each written chunk prints one progress line (``simulate <scenario>: <split> <done>/<n> slices``,
silenced by ``ssibench --quiet``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssibench.data.measurements import write_measurements
from ssibench.data.slices import SliceStore
from ssibench.data.splits import SPLITS
from ssibench.progress import progress
from ssibench.rng import stream

__all__ = ["SIMULATE_CHUNK", "write_simulation"]

#: Samples simulated at once: bounds memory (a 320×320, 4-coil chunk of y is ~200 MB) and fixes the
#: order of the draws, so it must not change between runs that should give the same file.
SIMULATE_CHUNK = 64


def write_simulation(
    out: Path | str,
    store: SliceStore,
    *,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
    slices_path: Path | str,
    physics_kind: str,
    y_shape: tuple[int, ...],
    draw_masks: Callable[[int, torch.Generator], Tensor],
    make_physics: Callable[[Tensor], Any],
    coil_maps: Tensor | None = None,
) -> Path:
    """Measure every slice of ``store`` and write the measurement store ``out``.

    The one place that fixes the order of random draws, so a file is bit-identical for a seed:
    a shared mask (when ``spec["shared_mask"]``) is drawn first from the ``masks`` stream; then per
    split (train, val, test) and per chunk of :data:`SIMULATE_CHUNK` slices, the chunk's masks
    (unless shared) from ``masks`` and y = physics.measure(x) from ``noise``. Everything is on CPU.

    Args:
        out: measurement store to write.
        store: the slices store (images in [0, 1] and the split).
        scenario: scenario name, recorded in the file.
        spec: the validated scenario spec, recorded in the file.
        seed: master seed of the ``masks`` and ``noise`` streams.
        slices_path: path of the slices store, recorded in the file.
        physics_kind: the ``physics`` attribute of the file.
        y_shape: shape of one measurement, e.g. ``(2, H, W)``.
        draw_masks: (batch, generator) → masks of that many slices.
        make_physics: masks → operator with a ``measure(x, generator)`` method.
        coil_maps: ``(N, H, W)`` complex coil maps stored with multicoil data.

    Returns:
        ``out`` as a ``Path``.
    """
    mask_stream = stream(seed, "masks")
    noise_stream = stream(seed, "noise")
    shared_mask = draw_masks(1, mask_stream) if spec["shared_mask"] else None
    out = Path(out)
    with write_measurements(
        out,
        scenario=scenario,
        physics_kind=physics_kind,
        sigma=spec["sigma"],
        spec=spec,
        seed=seed,
        slices_file=slices_path,
        coil_maps=coil_maps,
        skipped_files=store.skipped_files,
    ) as writer:
        for split in SPLITS:
            index = store.split[split]
            n_split = index.shape[0]
            writer.create_split(split, index, y_shape, shared_mask=shared_mask)
            for start in range(0, n_split, SIMULATE_CHUNK):
                rows = index[start : start + SIMULATE_CHUNK]
                images = store.images[rows]
                x = torch.stack([images, torch.zeros_like(images)], dim=1)
                masks = (
                    shared_mask if shared_mask is not None else draw_masks(len(rows), mask_stream)
                )
                y = make_physics(masks).measure(x, generator=noise_stream)
                writer.write_rows(
                    split, start, x, y, masks=None if shared_mask is not None else masks
                )
                done = start + rows.shape[0]
                progress(f"simulate {scenario}: {split} {done}/{n_split} slices")
    return out
