"""Simulate a scenario's measurements from the slices store, once, on the CPU.

For every image t (H×W, in [0, 1]) of every split: x = (t, 0) real/imaginary, an acquisition mask M
(per sample, or one mask shared by the whole scenario), and y = M ⊙ (F x + σ ε) (single-coil) or
yₙ = M ⊙ (F(Sₙ x) + σ εₙ) (multicoil with N birdcage maps Sₙ), as SSIBench's ``generate_dataset``
does — the k-space is re-simulated from the magnitude target, not taken from the raw data.

Randomness: masks from the ``masks`` stream, noise from the ``noise`` stream, both CPU generators of
the master seed, drawn split by split (train, val, test) and chunk by chunk in a fixed order, so the
same seed gives a bit-identical store on any machine and whatever device later trains on it.

Scenario spec (JSON object; key → meaning):

- ``physics``: ``"single-coil"`` | ``"multicoil"``;
- ``sigma``: noise standard deviation per real/imaginary k-space component, ≥ 0;
- ``shared_mask``: one mask for every sample of every split (default false);
- ``n_coils``: number of birdcage coils, ≥ 1 (required for multicoil; ignored for single-coil);
- ``mask``: acquisition mask generator, one of :data:`ssibench.masks.MASK_GENERATORS`;
- ``acceleration``: R ≥ 1;
- ``center_fraction``: fully sampled centre fraction in [0, 1), or null for the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from ssibench.data.measurements import PHYSICS_KINDS, write_measurements
from ssibench.data.slices import SPLITS, SliceStore, read_slice_store
from ssibench.errors import ConfigError
from ssibench.masks import MASK_GENERATORS, make_mask_generator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.rng import stream

__all__ = ["SIMULATE_CHUNK", "SPEC_KEYS", "simulate", "validate_spec", "write_simulation"]

#: Samples simulated at once: bounds memory (a 320×320, 4-coil chunk of y is ~200 MB) and fixes the
#: order of the draws, so it must not change between runs that should give the same file.
SIMULATE_CHUNK = 64
#: Allowed spec keys and their defaults (``...`` = required).
SPEC_KEYS: dict[str, object] = {
    "physics": ...,
    "sigma": ...,
    "shared_mask": False,
    "n_coils": None,
    "mask": ...,
    "acceleration": ...,
    "center_fraction": None,
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_spec(scenario: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a scenario spec and fill its defaults.

    Args:
        scenario: scenario name (for messages: ``scenarios.<name>.<key>``).
        spec: the spec (module docstring).

    Returns:
        A new dict with every key of :data:`SPEC_KEYS`.

    Raises:
        ConfigError: naming ``scenarios.<scenario>.<key>``, the value found and what is allowed.
    """
    where = f"scenarios.{scenario}"
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SPEC_KEYS)}"
        )
    missing = [key for key, default in SPEC_KEYS.items() if default is ... and key not in spec]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    full = {key: spec.get(key, default) for key, default in SPEC_KEYS.items()}

    if full["physics"] not in PHYSICS_KINDS:
        raise ConfigError(
            f"{where}.physics: got {full['physics']!r}; allowed: {', '.join(PHYSICS_KINDS)}"
        )
    if not _is_number(full["sigma"]) or full["sigma"] < 0:
        raise ConfigError(f"{where}.sigma: got {full['sigma']!r}; expected a number ≥ 0")
    if not isinstance(full["shared_mask"], bool):
        raise ConfigError(
            f"{where}.shared_mask: got {full['shared_mask']!r}; expected true or false"
        )
    if full["physics"] == "multicoil":
        n_coils = full["n_coils"]
        if not isinstance(n_coils, int) or isinstance(n_coils, bool) or n_coils < 1:
            raise ConfigError(
                f"{where}.n_coils: got {n_coils!r}; multicoil needs an integer number of coils ≥ 1"
            )
    if full["mask"] not in MASK_GENERATORS:
        raise ConfigError(
            f"{where}.mask: got {full['mask']!r}; allowed: {', '.join(sorted(MASK_GENERATORS))}"
        )
    if not _is_number(full["acceleration"]) or full["acceleration"] < 1:
        raise ConfigError(
            f"{where}.acceleration: got {full['acceleration']!r}; expected a number ≥ 1"
        )
    fraction = full["center_fraction"]
    if fraction is not None and (not _is_number(fraction) or not 0 <= fraction < 1):
        raise ConfigError(
            f"{where}.center_fraction: got {fraction!r}; expected a number in [0, 1) or null "
            "(null = 0.08 below 8× acceleration, 0.04 from 8×)"
        )
    return full


def _draw_masks(
    spec: Mapping[str, Any], scenario: str, batch: int, height: int, width: int, g: torch.Generator
) -> Tensor:
    """Draw ``(batch, 1, H, W)`` acquisition masks; a line-count error becomes a ConfigError."""
    generator = make_mask_generator(spec["mask"], spec["acceleration"], spec["center_fraction"])
    try:
        return generator.sample(batch, height, width, g)
    except ValueError as error:
        raise ConfigError(f"scenarios.{scenario}.acceleration: {error}") from error


def simulate(
    slices_path: Path | str,
    out: Path | str,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
) -> Path:
    """Simulate the measurement store of ``scenario`` from a slices store.

    Per split (train, val, test), per chunk of :data:`SIMULATE_CHUNK` samples: masks from the
    ``masks`` stream (unless shared: one ``(1, 1, H, W)`` mask drawn first and reused everywhere),
    then y = physics.measure(x) with the ``noise`` stream. Everything runs on the CPU.

    Args:
        slices_path: slices store written by ``extract``.
        out: measurement store to write (layout: :mod:`ssibench.data.measurements`).
        scenario: scenario name, recorded in the file.
        spec: scenario spec (module docstring); validated first.
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
    if spec["physics"] == "multicoil":
        coil_maps = birdcage_maps(spec["n_coils"], height, width)
        y_shape = (2, spec["n_coils"], height, width)

    def draw_masks(batch: int, generator: torch.Generator) -> Tensor:
        return _draw_masks(spec, scenario, batch, height, width, generator)

    def make_physics(masks: Tensor) -> SingleCoilMRI | MultiCoilMRI:
        if coil_maps is None:
            return SingleCoilMRI(masks, sigma=spec["sigma"])
        return MultiCoilMRI(masks, coil_maps, sigma=spec["sigma"])

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
        progress = tqdm(total=len(store), desc=f"simulate {scenario}", unit="slice")
        for split in SPLITS:
            index = store.split[split]
            writer.create_split(split, index, y_shape, shared_mask=shared_mask)
            for start in range(0, index.shape[0], SIMULATE_CHUNK):
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
                progress.update(rows.shape[0])
        progress.close()
    return out
