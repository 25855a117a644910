"""Simulate a scenario's measurement store from the slices store, once, on the CPU.

One entry point, :func:`simulate_scenario`, picks the simulator by the spec's ``physics``
(:data:`SIMULATORS`):

* :mod:`~ssibench.simulate.cartesian`: the 2-D kinds, ``single-coil`` and ``multicoil``
  (:func:`simulate`);
* :mod:`~ssibench.simulate.sequential`: ``sequential``, a static image acquired as T frames with
  disjoint lines (:func:`simulate_sequential`);
* :mod:`~ssibench.simulate.acquired`: ``raw-multicoil``, the raw volumes' own k-space, undersampled
  afterwards, with ESPIRiT coil maps (:func:`simulate_acquired`; needs the raw folder);
* :mod:`~ssibench.simulate.measured`: ``measured-multicoil``, k-space undersampled at acquisition
  from its own folder, no ground truth: a training-only store (:func:`simulate_measured`).

They share :mod:`~ssibench.simulate.spec` (the common keys, their checks and the acquisition-mask
draw) and :mod:`~ssibench.simulate.writer` (the chunked loop that fixes the order of the random
draws: the same seed gives a bit-identical store on any machine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ssibench.config.kinds import ACQUIRED_KINDS, MEASURED_KINDS, SIMULATED_2D_KINDS
from ssibench.simulate.acquired import simulate_acquired
from ssibench.simulate.acquired_spec import ACQUIRED_KEYS, validate_acquired_spec
from ssibench.simulate.cartesian import simulate
from ssibench.simulate.measured import simulate_measured
from ssibench.simulate.sequential import (
    FRAME_PARTITIONS,
    SEQUENTIAL_KEYS,
    SEQUENTIAL_PHYSICS,
    partition_lines,
    simulate_sequential,
    validate_sequential_spec,
)
from ssibench.simulate.spec import SPEC_KEYS, validate_spec
from ssibench.simulate.writer import SIMULATE_CHUNK, write_simulation

__all__ = [
    "ACQUIRED_KEYS",
    "FRAME_PARTITIONS",
    "SEQUENTIAL_KEYS",
    "SEQUENTIAL_PHYSICS",
    "SIMULATE_CHUNK",
    "SIMULATORS",
    "SPEC_KEYS",
    "partition_lines",
    "simulate",
    "simulate_acquired",
    "simulate_measured",
    "simulate_scenario",
    "simulate_sequential",
    "validate_acquired_spec",
    "validate_sequential_spec",
    "validate_spec",
    "write_simulation",
]

Simulator = Callable[[Path | str, Path | str, str, Mapping[str, Any], int], Path]

#: The simulator of each ``physics`` value; any other value goes to :func:`simulate`, whose spec
#: check names the allowed kinds.
SIMULATORS: dict[str, Simulator] = {
    **dict.fromkeys(SIMULATED_2D_KINDS, simulate),
    SEQUENTIAL_PHYSICS: simulate_sequential,
}


def simulate_scenario(
    slices_path: Path | str | None,
    out: Path | str,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
    raw_dir: Path | str | None = None,
) -> Path:
    """Simulate the measurement store of ``scenario`` with the simulator of its ``physics``.

    Args:
        slices_path: slices store written by ``extract``.
        out: measurement store to write (layout: :mod:`ssibench.data.measurements`).
        scenario: scenario name, recorded in the file.
        spec: scenario spec (:mod:`~ssibench.simulate.spec`, plus the keys of its physics kind);
            validated first.
        seed: master seed (streams ``masks`` and ``noise``).
        raw_dir: the raw volumes, read by the acquired-k-space kinds (ignored by the others).

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ConfigError: for a bad spec (an unknown ``physics`` included), naming
            ``scenarios.<scenario>.<key>``.
        DataFileError: if the slices store is missing or malformed.
    """
    kind = spec.get("physics")
    if kind in MEASURED_KINDS:  # its own k-space folder, no slices store
        return simulate_measured(out, scenario, spec, seed)
    if kind in ACQUIRED_KINDS:
        return simulate_acquired(slices_path, out, scenario, spec, seed, raw_dir)
    run = SIMULATORS.get(kind, simulate) if isinstance(kind, str) else simulate
    return run(slices_path, out, scenario, spec, seed)
