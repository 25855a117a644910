"""Simulate the ``sequential`` scenario: static images acquired as T frames with disjoint lines.

For every image t (H×W, in [0, 1]): x = (t, 0) real/imaginary; an ordinary acquisition mask Ω
(the scenario's ``mask`` generator, ``acceleration``, ``center_fraction``; per sample or shared);
its K sampled columns partitioned over T frames, M₀ … M_{T−1} (:func:`partition_lines`:
disjoint, Σₜ Mₜ = Ω); and yₜ = Mₜ ⊙ (F x + σ εₜ) (:class:`~ssibench.physics.time.SequentialMRI`).
The frames together hold exactly the k-space of the 2-D single-coil scenario with the same Ω, so
the zero-filled baseline Aᴴy is the same image; Phase2Phase and Artifact2Artifact split them
along time.

Randomness: Ω and the partition from the ``masks`` stream (Ω of a chunk, then its partition), noise
from the ``noise`` stream, both CPU generators of the master seed, split by split and chunk by chunk
in a fixed order, so a seed gives a bit-identical store on any machine.

Scenario spec: the keys of :data:`ssibench.simulate.spec.SPEC_KEYS` with
``physics: "sequential"`` (no ``n_coils``: single-coil only), plus

- ``n_frames``: number of frames T, an integer from 2 to the number of sampled columns K;
- ``frame_partition``: ``"random"`` (default: the K columns in random order, dealt to the frames in
  turn) or ``"interleaved"`` (in order of column index: column k of Ω goes to frame k mod T).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from ssibench.data.slices import read_slice_store
from ssibench.errors import ConfigError
from ssibench.physics import SequentialMRI
from ssibench.simulate.spec import (
    SPEC_KEYS,
    check_required_keys,
    check_unknown_keys,
    draw_acquisition_masks,
    is_integer,
    validate_spec,
)
from ssibench.simulate.writer import write_simulation

__all__ = [
    "FRAME_PARTITIONS",
    "SEQUENTIAL_KEYS",
    "SEQUENTIAL_PHYSICS",
    "partition_lines",
    "simulate_sequential",
    "validate_sequential_spec",
]

#: How the sampled columns are dealt to the frames.
FRAME_PARTITIONS = ("random", "interleaved")
#: Keys the sequential scenario adds to :data:`~ssibench.simulate.spec.SPEC_KEYS`
#: (``...`` = required).
SEQUENTIAL_KEYS: dict[str, object] = {"n_frames": ..., "frame_partition": "random"}
#: The value of ``physics`` that selects this simulator.
SEQUENTIAL_PHYSICS = "sequential"

FramePartition = Literal["random", "interleaved"]


def partition_lines(
    mask: Tensor,
    n_frames: int,
    partition: FramePartition = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Deal the sampled columns of each mask to T frames: disjoint masks that sum to the mask.

    The K_b sampled columns of sample b are ranked (``"random"``: by i.i.d. uniforms, i.e. a
    uniform random order; ``"interleaved"``: by column index) and the column of rank r goes to
    frame r mod T, so frame t gets ⌈(K_b − t)/T⌉ columns: Mₜ ⊙ M_s = 0 for t ≠ s and Σₜ Mₜ = Ω.
    Vectorised over the batch.

    Args:
        mask: Ω, ``(B, 1, H, W)`` 0/1 whole-column (Cartesian) masks.
        n_frames: T ≥ 1.
        partition: ``"random"`` or ``"interleaved"``.
        generator: source of the uniforms for ``"random"`` (B·W of them, on its device).

    Returns:
        ``(B, 1, T, H, W)`` on Ω's device and dtype.

    Raises:
        ValueError: if Ω is not made of whole columns, T < 1, the partition is unknown, or
            ``"random"`` has no generator.

    Example:
        >>> omega = torch.zeros(1, 1, 4, 6)
        >>> omega[..., [0, 2, 3, 5]] = 1
        >>> frames = partition_lines(omega, 2, "interleaved")
        >>> frames[0, 0, :, 0].tolist()
        [[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (B, 1, H, W); got {tuple(mask.shape)}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1; got {n_frames}")
    columns = mask[:, 0, 0, :]  # (B, W)
    if not torch.equal(mask, columns[:, None, None, :].expand_as(mask)):
        raise ValueError("partition_lines splits whole columns; the mask varies along H")
    sampled = columns != 0
    if partition == "random":
        if generator is None:
            raise ValueError("the random partition needs a generator (the masks stream)")
        keys = torch.rand(columns.shape, generator=generator, device=generator.device)
        keys = keys.to(columns.device)
    elif partition == "interleaved":
        keys = torch.arange(columns.shape[1], device=columns.device, dtype=torch.float32)
        keys = keys.expand_as(columns)
    else:
        raise ValueError(
            f"unknown frame partition {partition!r}; valid: {', '.join(FRAME_PARTITIONS)}"
        )
    # Rank the sampled columns by key; unsampled columns rank after all of them and are dropped.
    keys = keys.masked_fill(~sampled, float("inf"))
    order = keys.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
    )
    frame = ranks % n_frames  # (B, W)
    frames = torch.arange(n_frames, device=columns.device)
    per_frame = (frame[:, None, :] == frames[None, :, None]) & sampled[:, None, :]  # (B, T, W)
    height = mask.shape[2]
    return per_frame[:, None, :, None, :].expand(-1, -1, -1, height, -1).to(mask.dtype)


def validate_sequential_spec(scenario: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``sequential`` scenario spec and fill its defaults.

    The shared keys are checked by :func:`ssibench.simulate.spec.validate_spec` (as a
    single-coil acquisition, which the union of the frames is); then ``n_frames`` and
    ``frame_partition``.

    Args:
        scenario: scenario name (for messages: ``scenarios.<name>.<key>``).
        spec: the spec (module docstring).

    Returns:
        A new dict with every key of ``SPEC_KEYS`` and :data:`SEQUENTIAL_KEYS`,
        ``physics = "sequential"``.

    Raises:
        ConfigError: naming ``scenarios.<scenario>.<key>``, the value found and what is allowed.
    """
    where = f"scenarios.{scenario}"
    check_unknown_keys(where, spec, {**SPEC_KEYS, **SEQUENTIAL_KEYS})
    if spec.get("physics") != SEQUENTIAL_PHYSICS:
        raise ConfigError(
            f"{where}.physics: got {spec.get('physics')!r}; this simulator needs "
            f"{SEQUENTIAL_PHYSICS!r}"
        )
    if spec.get("n_coils") is not None:
        raise ConfigError(
            f"{where}.n_coils: got {spec['n_coils']!r}; the sequential scenario is single-coil, "
            "remove n_coils or set it to null"
        )
    check_required_keys(where, spec, SEQUENTIAL_KEYS)
    common = {key: value for key, value in spec.items() if key in SPEC_KEYS}
    full = validate_spec(scenario, {**common, "physics": "single-coil"})
    full["physics"] = SEQUENTIAL_PHYSICS
    full.update({key: spec.get(key, default) for key, default in SEQUENTIAL_KEYS.items()})

    if not is_integer(full["n_frames"], 2):
        raise ConfigError(f"{where}.n_frames: got {full['n_frames']!r}; expected an integer ≥ 2")
    if full["frame_partition"] not in FRAME_PARTITIONS:
        raise ConfigError(
            f"{where}.frame_partition: got {full['frame_partition']!r}; allowed: "
            f"{', '.join(FRAME_PARTITIONS)}"
        )
    return full


def _draw_frame_masks(
    spec: Mapping[str, Any], scenario: str, batch: int, height: int, width: int, g: torch.Generator
) -> Tensor:
    """Ω ``(B, 1, H, W)`` then its partition ``(B, 1, T, H, W)``, both from ``g``.

    Raises:
        ConfigError: if Ω cannot be drawn (:func:`~ssibench.simulate.spec.draw_acquisition_masks`)
            or the acceleration leaves fewer sampled columns than frames (empty frames).
    """
    omega = draw_acquisition_masks(spec, scenario, batch, height, width, g)
    fewest = int(omega[:, 0, 0, :].sum(dim=1).min())
    if fewest < spec["n_frames"]:
        raise ConfigError(
            f"scenarios.{scenario}.n_frames: got {spec['n_frames']}, but a {spec['mask']} mask at "
            f"acceleration {spec['acceleration']} samples only {fewest} of the {width} columns, "
            "so some frames would be empty; lower n_frames or the acceleration"
        )
    return partition_lines(omega, spec["n_frames"], spec["frame_partition"], g)


def simulate_sequential(
    slices_path: Path | str,
    out: Path | str,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
) -> Path:
    """Simulate the measurement store of a ``sequential`` scenario from a slices store.

    Per split (train, val, test), per chunk of ``SIMULATE_CHUNK`` samples: Ω and its partition
    into T frame masks from the ``masks`` stream (unless shared: one ``(1, 1, T, H, W)`` drawn
    first and reused everywhere), then y = SequentialMRI(masks, σ).measure(x) with the ``noise``
    stream. Stored as ``physics = "sequential"``: x ``(n, 2, H, W)``, y ``(n, 2, T, H, W)``, mask
    ``(n|1, 1, T, H, W)`` (layout: :mod:`ssibench.data.measurements`). Everything runs on the CPU.

    Args:
        slices_path: slices store written by ``extract``.
        out: measurement store to write.
        scenario: scenario name, recorded in the file.
        spec: scenario spec (module docstring); validated first.
        seed: master seed.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ConfigError: for a bad spec, naming ``scenarios.<scenario>.<key>``.
        DataFileError: if the slices store is missing or malformed.
    """
    spec = validate_sequential_spec(scenario, spec)
    store = read_slice_store(slices_path)
    height, width = store.images.shape[-2:]

    def draw_masks(batch: int, generator: torch.Generator) -> Tensor:
        return _draw_frame_masks(spec, scenario, batch, height, width, generator)

    return write_simulation(
        out,
        store,
        scenario=scenario,
        spec=spec,
        seed=seed,
        slices_path=slices_path,
        physics_kind=SEQUENTIAL_PHYSICS,
        y_shape=(2, spec["n_frames"], height, width),
        draw_masks=draw_masks,
        make_physics=lambda masks: SequentialMRI(masks, sigma=spec["sigma"]),
    )
