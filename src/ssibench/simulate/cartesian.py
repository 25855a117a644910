"""Simulate a 2-D scenario (single-coil or multicoil) from the slices store, once, on the CPU.

For every image t (H×W, in [0, 1]) of every split: x = (t, 0) real/imaginary, an acquisition mask M
(per sample, or one mask shared by the whole scenario), and y = M ⊙ (F x + σ ε) (single-coil) or
yₙ = M ⊙ (F(Sₙ x) + σ εₙ) (multicoil with N birdcage maps Sₙ), as SSIBench's ``generate_dataset``
does — the k-space is re-simulated from the magnitude target, not taken from the raw data.

The spec: :mod:`ssibench.simulate.spec`; the order of the random draws:
:func:`ssibench.simulate.writer.write_simulation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.data.slices import read_slice_store
from ssibench.physics import MultiCoilMRI, Physics, SingleCoilMRI, birdcage_maps, build_operator
from ssibench.simulate.spec import draw_acquisition_masks, validate_spec
from ssibench.simulate.writer import write_simulation

__all__ = ["simulate"]


def simulate(
    slices_path: Path | str,
    out: Path | str,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
) -> Path:
    """Simulate the measurement store of a 2-D ``scenario`` from a slices store.

    Per split (train, val, test), per chunk of ``SIMULATE_CHUNK`` samples: masks from the
    ``masks`` stream (unless shared: one ``(1, 1, H, W)`` mask drawn first and reused everywhere),
    then y = physics.measure(x) with the ``noise`` stream. Everything runs on the CPU.

    Args:
        slices_path: slices store written by ``extract``.
        out: measurement store to write (layout: :mod:`ssibench.data.measurements`).
        scenario: scenario name, recorded in the file.
        spec: scenario spec (:mod:`ssibench.simulate.spec`); validated first.
        seed: master seed.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ConfigError: for a bad spec, naming ``scenarios.<scenario>.<key>``.
        DataFileError: if the slices store is missing or malformed.
    """
    spec = validate_spec(scenario, spec)
    store = read_slice_store(slices_path)
    height, width = store.images.shape[-2:]
    coil_maps = None
    y_shape: tuple[int, ...] = (2, height, width)
    if PHYSICS_KINDS[spec["physics"]].coils:  # multicoil, or a plugin's kind with coils
        coil_maps = birdcage_maps(spec["n_coils"], height, width)
        y_shape = (2, spec["n_coils"], height, width)

    def draw_masks(batch: int, generator: torch.Generator) -> Tensor:
        return draw_acquisition_masks(spec, scenario, batch, height, width, generator)

    def make_physics(masks: Tensor) -> Physics:
        if spec["physics"] == "multicoil":
            return MultiCoilMRI(masks, coil_maps, sigma=spec["sigma"])
        if spec["physics"] == "single-coil":
            return SingleCoilMRI(masks, sigma=spec["sigma"])
        return build_operator(spec["physics"], masks, spec["sigma"], coil_maps)  # a plugin's

    return write_simulation(
        out,
        store,
        scenario=scenario,
        spec=spec,
        seed=seed,
        slices_path=slices_path,
        physics_kind=spec["physics"],
        y_shape=y_shape,
        draw_masks=draw_masks,
        make_physics=make_physics,
        coil_maps=coil_maps,
    )
