"""DeepInverse measurement files as ssibench measurement stores (``ssibench import-measurements``).

``deepinv.datasets.generate_dataset(train_dataset, physics, save_dir, test_dataset=...,
physics_generator=..., save_physics_generator_params=True)`` (DeepInverse 0.5.0,
``deepinv/datasets/datagenerator.py``) writes, for its operator g, two files in ``save_dir``:

- ``dinv_dataset<g>.h5``: ``x_<split>`` ``(n, 2, H, W)`` and ``y_<split>`` for the splits
  ``train``, ``test`` and (given a ``val_dataset``) ``val``, real/imaginary in dim 1; ``y`` is
  ``(n, 2, H, W)`` for ``MRI`` and ``(n, 2, N, H, W)`` for ``MultiCoilMRI`` (N coils); one
  ``<param>_<split>`` per parameter the physics generator drew, row i for sample i (the MRI mask
  generators: ``mask_<split>`` ``(n, 1, H, W)``); the attribute ``operator``, the class name;
- ``physics<g>.pt``: the operator's state dict, for what the .h5 lacks: the fixed mask of an
  operator without generator, ``MultiCoilMRI``'s coil maps, ``GaussianNoise``'s σ
  (:mod:`ssibench.interop.physics_state`, read weights-only).

DeepInverse's operators are ssibench's: y = M ⊙ (F x + ε) single-coil, yₙ = M ⊙ (F(Sₙ x) + εₙ)
multicoil, F the centred orthonormal FFT, ε ~ N(0, σ²) per real/imaginary component (DeepInverse
masks the noise too). So the store holds the very bytes of the file (float32), split by split
(``val`` empty when the file has none: training then skips validation, as with ``data.split`` val
0), with ``index`` the row in the file's split, the per-sample masks (or the fixed mask, shared),
the coil maps and σ. The scenario spec (the keys of ``ssibench simulate --spec``, which methods
read: the mask distribution, σ) is what the caller gives, completed by what the files state
(``physics``, ``shared_mask``, ``n_coils``, ``sigma``), which it must agree with.

Every row is checked as it is copied (:mod:`ssibench.interop.measurement_checks`): x and y
finite, masks 0/1, y = 0 exactly where M = 0, and y − A x at the sampled points no more and no
less than the declared noise; a mask, coil maps, noise level or images that do not belong to the
measurements fail. Declared sizes are checked before anything is read
(:func:`~ssibench.data.limits.check_read_size`, and the file must hold the bytes it declares).

Provenance: ``slices_file`` is the .h5 read, ``seed`` is :data:`UNSEEDED` (DeepInverse drew the
masks and noise) and the JSON attribute ``imported_from`` records the format, both files with
their SHA-256, the operator and the spec as given.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.data.limits import check_read_size
from ssibench.data.measurements import MeasurementWriter, write_measurements
from ssibench.data.splits import SPLITS
from ssibench.data.store_checks import check_backed, own_dataset
from ssibench.data.volume_errors import BadVolumeError
from ssibench.errors import ConfigError, DataFileError
from ssibench.interop.measurement_checks import (
    REGENERATE,
    NoiseCheck,
    check_rows,
    one_channel_mask,
)
from ssibench.interop.physics_state import operator_from_state, read_physics_state
from ssibench.physics import Operator
from ssibench.progress import progress
from ssibench.simulate.spec import validate_spec

__all__ = ["FORMAT", "ImportSummary", "import_measurements"]

#: What ``imported_from`` names as the source format.
FORMAT = "deepinv.datasets.generate_dataset"
#: DeepInverse operator class (attribute ``operator``) → ssibench physics kind.
OPERATOR_KINDS = {"MRI": "single-coil", "MultiCoilMRI": "multicoil"}
OPERATOR_NAMES = {kind: name for name, kind in OPERATOR_KINDS.items()}
#: The ``seed`` attribute of an imported store: no ssibench stream drew its masks or noise.
UNSEEDED = -1
#: Rows read, checked and written at once (bounds memory as ``simulate``'s chunks do).
IMPORT_CHUNK = 64
_FIX = REGENERATE


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_measurements` wrote.

    Attributes:
        out: the store.
        physics_kind: its ``physics`` attribute.
        sizes: slices per split.
        sigma: the store's noise level.
        noise_estimates: σ̂ per non-empty split, √(mean of r² over the sampled components).
        accelerations: 1 / (mean sampled fraction) per non-empty split.
    """

    out: Path
    physics_kind: str
    sizes: dict[str, int]
    sigma: float
    noise_estimates: dict[str, float]
    accelerations: dict[str, float]


@dataclass(frozen=True)
class _Split:
    """One split of the source file: its datasets (``mask`` None for the fixed mask)."""

    n: int
    x: h5py.Dataset
    y: h5py.Dataset
    mask: h5py.Dataset | None


def _dataset(path: Path, handle: h5py.File, name: str, kinds: str) -> h5py.Dataset:
    """``handle[name]``, checked: a dataset of this file, of dtype kind ``kinds``, fully held."""
    found = own_dataset(path, handle, handle, name, name, _FIX)
    if found.dtype.kind not in kinds:
        what = "real floats (real/imaginary in dim 1)" if kinds == "f" else "numbers"
        raise DataFileError(f"{path}: dataset {name!r} has dtype {found.dtype}, expected {what}")
    check_backed(path, name, found, f"rows never written, or a damaged file: {_FIX}")
    return found


def _layout(path: Path, handle: h5py.File) -> tuple[str, dict[str, _Split], tuple[int, ...]]:
    """The physics kind, the splits present and the shape of one y, from the file's header."""
    operator = handle.attrs.get("operator")
    operator = operator.decode() if isinstance(operator, bytes) else operator
    if "stacked" in handle.attrs or operator not in OPERATOR_KINDS:
        found = "a StackedPhysics" if "stacked" in handle.attrs else repr(operator)
        raise DataFileError(
            f"{path}: attribute 'operator' is {found}; ssibench imports the measurements of "
            f"{', '.join(OPERATOR_KINDS)} (deepinv.physics) written by {FORMAT}"
        )
    kind = OPERATOR_KINDS[operator]
    splits: dict[str, _Split] = {}
    for split in SPLITS:
        suffix = f"_{split}"
        params = sorted(k[: -len(suffix)] for k in handle if k.endswith(suffix))
        if "y" not in params and split == "val":
            continue
        for key in ("x", "y"):
            if key not in params:
                why = " (generate_dataset(..., supervised=False) leaves it out)" * (key == "x")
                raise DataFileError(
                    f"{path}: no dataset '{key}{suffix}'{why}; a store needs x and y of the "
                    f"train and test splits; {_FIX}"
                )
        unknown = [p for p in params if p not in ("x", "y", "mask")]
        if unknown:
            raise DataFileError(
                f"{path}: physics generator parameters {', '.join(unknown)} of split {split!r}: "
                "ssibench imports MRI mask generators only (one 'mask' per sample)"
            )
        x, y = _dataset(path, handle, f"x{suffix}", "f"), _dataset(path, handle, f"y{suffix}", "f")
        mask = _dataset(path, handle, f"mask{suffix}", "biuf") if "mask" in params else None
        splits[split] = _Split(int(y.shape[0]) if y.ndim else 0, x, y, mask)
    if len({s.mask is None for s in splits.values()}) > 1:
        raise DataFileError(f"{path}: some splits have per-sample masks, others not; {_FIX}")
    y_shape = tuple(splits["train"].y.shape[1:])
    coils = PHYSICS_KINDS[kind].coils
    layout = (
        f"{operator} data are x (n, 2, H, W), y (n, 2, {'N, ' * coils}H, W) and mask "
        f"(n, 1, H, W), one n per split and the H × W{' and N' * coils} of 'y_train'"
    )
    if len(y_shape) != (4 if coils else 3) or y_shape[0] != 2:
        raise DataFileError(
            f"{path}: 'y_train' has shape {(splits['train'].n, *y_shape)}; {layout}"
        )
    size = y_shape[-2:]
    for part in splits.values():
        allowed = {part.y.name: [(part.n, *y_shape)], part.x.name: [(part.n, 2, *size)]}
        if part.mask is not None:
            allowed[part.mask.name] = [(part.n, 1, *size), (part.n, 2, *size)]
        for name, shapes in allowed.items():
            if tuple(handle[name].shape) not in shapes:
                raise DataFileError(
                    f"{path}: dataset {name.lstrip('/')!r} has shape {handle[name].shape}, "
                    f"expected {shapes[0]}: {layout}"
                )
    return kind, splits, y_shape


def _read(path: Path, dataset: h5py.Dataset, start: int, stop: int) -> Tensor:
    """Rows [start, stop) of ``dataset`` as float32, the read's size checked first."""
    try:
        check_read_size(
            path,
            f"dataset {dataset.name.lstrip('/')!r}",
            dataset.shape,
            dataset.dtype,
            (stop - start, *dataset.shape[1:]),
        )
        return torch.from_numpy(np.asarray(dataset[start:stop], dtype=np.float32))
    except BadVolumeError as error:
        raise DataFileError(f"{path}: {error.reason}") from None
    except OSError as error:  # a truncated file opens, but its datasets fail to read
        raise DataFileError(
            f"{path}: cannot read {dataset.name.lstrip('/')!r} ({error}); {_FIX}"
        ) from None


def _scenario_spec(
    scenario: str, given: Mapping[str, object], stated: Mapping[str, object], where: str
) -> dict[str, object]:
    """The validated scenario spec: ``given`` completed by ``stated``, the files' own facts.

    Raises:
        ConfigError: a given key that contradicts the files, no sigma, or an invalid spec.
    """
    for key, value in stated.items():
        mine = given.get(key, value)
        same = (
            math.isclose(mine, value, rel_tol=1e-6)
            if isinstance(mine, float | int) and isinstance(value, float) and key == "sigma"
            else mine == value
        )
        if not same:
            raise ConfigError(
                f"--physics: {key} is {mine!r}, but {where} say {value!r}; leave {key} out"
            )
    spec = {**stated, **given}  # a given sigma that agrees keeps the user's decimal
    if "sigma" not in spec:
        raise ConfigError(
            "--physics: no sigma and no physics state with 'noise_model.sigma'; give the noise "
            "level per real/imaginary component, e.g. '\"sigma\": 0' for noiseless data, or pass "
            "--physics-state"
        )
    try:
        return validate_spec(scenario, spec)
    except ConfigError as error:
        raise ConfigError(f"--physics: {error}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _copy_split(
    source: Path,
    writer: MeasurementWriter,
    split: str,
    part: _Split | None,
    physics: Operator,
    sigma: float,
    layout: tuple[tuple[int, ...], bool],
) -> tuple[int, float | None, float]:
    """Check and write one split (empty if ``part`` is None), chunk by chunk.

    ``layout`` is the shape of one y and whether the mask is shared; ``physics`` is the files'
    operator, its mask the shared one, else a placeholder that each chunk's masks replace.

    Returns:
        n, σ̂ (None when nothing was sampled) and the sampled fraction summed over the rows.
    """
    (y_shape, shared), n = layout, 0 if part is None else part.n
    writer.create_split(split, torch.arange(n), y_shape, physics.mask if shared else None)
    noise, sampled = NoiseCheck(), 0.0
    for start in range(0, n, IMPORT_CHUNK):
        stop = min(n, start + IMPORT_CHUNK)
        x, y = _read(source, part.x, start, stop), _read(source, part.y, start, stop)
        mask = physics.mask
        if part.mask is not None:
            name = part.mask.name.lstrip("/")
            mask = one_channel_mask(source, name, _read(source, part.mask, start, stop), start)
        check_rows(source, split, start, x, y, mask)
        noise.add(y - physics.with_mask(mask).A(x), y, mask)
        sampled += float(mask.mean()) * (stop - start)  # Σ over the rows of their fractions
        writer.write_rows(split, start, x, y, masks=None if shared else mask)
        progress(f"import-measurements: {split} {stop}/{n} slices")
    return n, noise.check(source, split, sigma), sampled


def import_measurements(
    source: Path | str,
    out: Path | str,
    *,
    physics: Mapping[str, object],
    scenario: str | None = None,
    physics_state: Path | str | None = None,
) -> ImportSummary:
    """Write the measurements of a DeepInverse ``generate_dataset`` file as a store at ``out``.

    Args:
        source: the ``dinv_dataset<g>.h5``.
        out: the measurement store to write (atomically: nothing appears on an error).
        physics: the scenario spec (keys of ``ssibench simulate --spec``: ``mask``,
            ``acceleration``, ``center_fraction``/``center_lines``, ``sigma``); ``physics``,
            ``shared_mask``, ``n_coils`` and a sigma the state holds come from the files.
        scenario: the scenario name (default: ``out``'s stem, as the workflow names stores).
        physics_state: the ``physics<g>.pt`` beside it: required for a fixed mask (no
            ``mask_<split>``) and for ``MultiCoilMRI`` (the coil maps).

    Raises:
        DataFileError: a file that is missing, not in the layout (module docstring), over the read
            limit or whose rows fail the checks; the message names the file, what is wrong, the fix.
        ConfigError: a spec that is invalid or contradicts the files.
    """
    source, out = Path(source), Path(out)
    scenario = out.stem if scenario is None else scenario
    if out.resolve() == source.resolve():
        raise ConfigError(f"--out: {out} is the file imported; write the store elsewhere")
    state = None if physics_state is None else read_physics_state(physics_state)
    if not source.is_file():
        raise DataFileError(f"{source}: no such file; pass the .h5 that {FORMAT} wrote")
    try:
        handle = h5py.File(source, "r")
    except OSError as error:
        raise DataFileError(f"{source}: not a readable HDF5 file ({error}); {_FIX}") from None
    with handle:
        kind, splits, y_shape = _layout(source, handle)
        shared = splits["train"].mask is None
        operator = operator_from_state(source, state, kind, y_shape, shared)
        stated: dict[str, object] = {"physics": kind, "shared_mask": shared}
        if PHYSICS_KINDS[kind].coils:
            stated["n_coils"] = y_shape[1]
        if state is not None and state.sigma is not None:
            stated["sigma"] = state.sigma
        spec = _scenario_spec(scenario, physics, stated, f"{source} (and its physics state)")
        sigma = float(spec["sigma"])  # type: ignore[arg-type]
        provenance = {
            "format": FORMAT,
            "file": str(source.resolve()),
            "sha256": _sha256(source),
            "operator": OPERATOR_NAMES[kind],
            "physics_state": None
            if physics_state is None
            else {
                "file": str(Path(physics_state).resolve()),
                "sha256": _sha256(Path(physics_state)),
            },
            "physics": dict(physics),
        }
        sizes, estimates, accelerations = {}, {}, {}
        with write_measurements(
            out,
            scenario=scenario,
            physics_kind=kind,  # type: ignore[arg-type]
            sigma=sigma,
            spec=spec,
            seed=UNSEEDED,
            slices_file=source,
            coil_maps=getattr(operator, "coil_maps", None),
        ) as writer:
            for split in SPLITS:
                n, estimate, sampled = _copy_split(
                    source, writer, split, splits.get(split), operator, sigma, (y_shape, shared)
                )
                sizes[split] = n
                if estimate is not None:
                    estimates[split], accelerations[split] = estimate, n / sampled
            writer.set_attribute("imported_from", json.dumps(provenance, sort_keys=True))
    return ImportSummary(out, kind, sizes, sigma, estimates, accelerations)
