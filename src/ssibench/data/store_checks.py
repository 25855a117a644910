"""A measurement store's contents, checked when a split is read and before anything uses them.

A store is data from anywhere (copied between machines, made by another tool or version, edited
by hand), so :func:`~ssibench.data.measurements.read_measurements` trusts nothing it declares
(layout: :mod:`ssibench.data.measurements`):

- before a byte is read, :func:`checked_datasets`: each dataset the read uses is a dataset (not
  a group) stored in this file (not linked from another, virtual or external); its dtype fits
  its role (float ``x``, ``y``, coil maps and per-slice values; numeric masks; integer indices);
  its declared size is backed by the bytes the file holds for it (:func:`check_backed`), so a
  tiny file declaring a terabyte is refused before anything is allocated; and the shapes agree
  with each other and with the physics kind: ``n`` rows as ``index`` has, ``H × W`` (and the
  coils ``N`` or frames ``T``) as ``y`` has;
- :func:`store_sigma`: the ``sigma`` attribute is one finite number ≥ 0;
- after reading, :func:`check_values`: ``y``, the coil maps and, where the kind has a ground
  truth, ``x`` are finite (``x`` of ``measured-multicoil`` is NaN by design); masks are 0 or 1.

Each refusal is one :class:`~ssibench.errors.DataFileError` naming the store, what is wrong and
the command that rebuilds it. The reader then recomputes the split's content hash
(:func:`ssibench.data.identity.verify_split`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import h5py
import numpy as np

from ssibench.config.kinds import PhysicsKind
from ssibench.data.identity import OPTIONAL_SPLIT_DATASETS, SPLIT_DATASETS, missing_error
from ssibench.errors import DataFileError, rebuild_hint

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "check_backed",
    "check_values",
    "checked_datasets",
    "own_dataset",
    "store_sigma",
]

#: Deflate's largest compression ratio, 1032:1 (https://zlib.net/zlib_tech.html): a compressed
#: dataset (the masks) holds at most this many bytes per byte it occupies in the file. Other HDF5
#: filters are held to the same bound.
MAX_COMPRESSION_RATIO = 1032
#: Rows checked at once for finite values (bounds the temporary boolean arrays).
CHECK_ROWS = 64
#: How many bad rows a message lists before it stops.
LISTED_ROWS = 10

#: What each dataset may hold, by key: float (kind "f"), any number ("biuf"), integers ("iu").
_DTYPE_KINDS = {
    "index": ("iu", "integers"),
    "slice_index": ("iu", "integers"),
    "mask": ("biuf", "numbers"),
    "x": ("f", "floats"),
    "y": ("f", "floats"),
    "coil_maps": ("f", "floats"),
    "scale": ("f", "floats"),
    "noise_sigma": ("f", "floats"),
}

#: One dim of an expected shape: a size, the sizes allowed, or any size (named by its symbol).
Dim = int | tuple[int, ...] | str


def _shape_text(expected: tuple[Dim, ...]) -> str:
    parts = [" or ".join(map(str, d)) if isinstance(d, tuple) else str(d) for d in expected]
    return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"


def _matches(shape: tuple[int, ...], expected: tuple[Dim, ...]) -> bool:
    return len(shape) == len(expected) and all(
        isinstance(d, str) or (size in d if isinstance(d, tuple) else size == d)
        for size, d in zip(shape, expected, strict=True)
    )


def own_dataset(
    path: Path,
    handle: h5py.File,
    parent: h5py.Group,
    key: str,
    name: str,
    fix: str | None = None,
) -> h5py.Dataset:
    """The dataset ``parent[key]`` (``name`` in the file), checked to be data of this file.

    ``fix`` ends every message (default: the command that rebuilds ``path``).
    """
    fix = rebuild_hint(path) if fix is None else fix
    if key not in parent:
        raise DataFileError(f"{path}: no dataset {name!r}; {fix}")
    found = parent[key]
    if not isinstance(found, h5py.Dataset):
        raise DataFileError(f"{path}: {name!r} is a {type(found).__name__}, not a dataset; {fix}")
    # a link into another file, a virtual or an external dataset: data the store does not hold
    if found.id.fileno != handle.id.fileno or found.is_virtual or found.external:
        raise DataFileError(
            f"{path}: dataset {name!r} refers to data outside the file (an external link, "
            f"virtual or external dataset); {fix}"
        )
    return found


def _dataset(
    path: Path, handle: h5py.File, parent: h5py.Group, key: str, name: str
) -> h5py.Dataset:
    """:func:`own_dataset`, of the dtype a store's dataset ``key`` has."""
    found = own_dataset(path, handle, parent, key, name)
    kinds, what = _DTYPE_KINDS[key]
    if found.dtype.kind not in kinds:
        raise DataFileError(
            f"{path}: dataset {name!r} has dtype {found.dtype}, expected {what}; "
            f"{rebuild_hint(path)}"
        )
    return found


def check_backed(path: Path, name: str, dataset: h5py.Dataset, fix: str | None = None) -> None:
    """Refuse a dataset that declares more data than the file holds for it (nothing is read).

    Written uncompressed, a dataset occupies its full size in the file; compressed, at least
    1/:data:`MAX_COMPRESSION_RATIO` of it. A declared shape with nothing (or too little) behind
    it (rows never written, or a crafted header) would otherwise be allocated whole on reading.
    """
    shape = tuple(dataset.shape or ())
    declared = math.prod(shape) * dataset.dtype.itemsize  # Python ints: no overflow
    held = dataset.id.get_storage_size()
    filtered = dataset.id.get_create_plist().get_nfilters() > 0
    if declared > (held * MAX_COMPRESSION_RATIO if filtered else held):
        raise DataFileError(
            f"{path}: dataset {name!r} declares shape {shape} ({declared:,} bytes) but the file "
            f"holds {held:,} bytes of it; {rebuild_hint(path) if fix is None else fix}"
        )


def checked_datasets(
    path: Path, handle: h5py.File, split: str, kind: PhysicsKind
) -> dict[str, h5py.Dataset]:
    """The datasets a read of ``split`` uses and hashes, checked before any is read.

    Args:
        path: the store, for messages.
        handle: the open store.
        split: a split group of the store.
        kind: the store's physics kind (its ``physics`` attribute).

    Returns:
        By name in the file: ``<split>/index``, ``x``, ``y``, ``mask``, those of
        :data:`~ssibench.data.identity.OPTIONAL_SPLIT_DATASETS` the split has, and the file-level
        ``coil_maps`` when the file has them.

    Raises:
        DataFileError: for a missing, linked or non-numeric dataset, a declared size the file
            does not hold, or shapes that disagree (the message gives the expected shape).
    """
    group = handle[split]
    if not isinstance(group, h5py.Group):
        raise DataFileError(f"{path}: {split!r} is not a group; {rebuild_hint(path)}")
    keys = [*SPLIT_DATASETS, *(k for k in OPTIONAL_SPLIT_DATASETS if k in group)]
    if kind.coils and kind.acquired and "coil_maps" not in group:
        raise missing_error(path, f"{split}/coil_maps")  # per-slice maps estimated from the data
    if kind.coils and not kind.acquired and "coil_maps" not in handle:
        raise missing_error(path, "coil_maps")
    found = {f"{split}/{key}": _dataset(path, handle, group, key, f"{split}/{key}") for key in keys}
    if "coil_maps" in handle:
        found["coil_maps"] = _dataset(path, handle, handle, "coil_maps", "coil_maps")
    for name, dataset in found.items():
        # x without ground truth is never written (NaN fill): y bounds it through the shapes
        if name != f"{split}/x" or kind.ground_truth:
            check_backed(path, name, dataset)
    _check_shapes(path, found, split, kind)
    return found


def _check_shapes(
    path: Path, found: Mapping[str, h5py.Dataset], split: str, kind: PhysicsKind
) -> None:
    """Refuse shapes that disagree with ``index`` (n rows), ``y`` (H × W, N or T) or the kind."""
    index, y = found[f"{split}/index"], found[f"{split}/y"]
    if len(index.shape or ()) != 1:
        raise DataFileError(
            f"{path}: dataset '{split}/index' has shape {index.shape}, expected (n,); "
            f"{rebuild_hint(path)}"
        )
    n = index.shape[0]
    depth = "N" if kind.coils else "T" if kind.time_series else None  # y's dim 2, if any
    y_expected: tuple[Dim, ...] = (n, 2, *((depth,) if depth else ()), "H", "W")
    rows = f"n = {n} slices as '{split}/index' has"
    if not _matches(tuple(y.shape), y_expected):
        raise DataFileError(
            f"{path}: dataset '{split}/y' has shape {y.shape}, expected "
            f"{_shape_text(y_expected)} for {kind.name} measurements ({rows}, real/imaginary in "
            f"dim 1); {rebuild_hint(path)}"
        )
    height, width = y.shape[-2:]
    frames = (y.shape[2],) if kind.time_series else ()
    coils: Dim = y.shape[2] if kind.coils else "N"
    expected: dict[str, tuple[Dim, ...]] = {
        f"{split}/x": (n, 2, *(frames if kind.video else ()), height, width),
        f"{split}/mask": ((1, n) if n != 1 else 1, 1, *frames, height, width),
        f"{split}/coil_maps": (n, 2, coils, height, width),
        "coil_maps": (coils, 2, height, width),
        **{f"{split}/{key}": (n,) for key in ("scale", "noise_sigma", "slice_index")},
    }
    sizes = f"{rows}, H × W = {height} × {width}" + (f", {depth} = {y.shape[2]}" if depth else "")
    for name, dataset in found.items():
        if name in expected and not _matches(tuple(dataset.shape or ()), expected[name]):
            raise DataFileError(
                f"{path}: dataset {name!r} has shape {dataset.shape}, expected "
                f"{_shape_text(expected[name])} for {kind.name} data ({sizes} as "
                f"'{split}/y' has); {rebuild_hint(path)}"
            )


def store_sigma(path: Path, attrs: Mapping[str, object]) -> float:
    """The store's noise level, its ``sigma`` attribute, checked to be one finite number ≥ 0.

    Args:
        path: the store, for messages.
        attrs: its attributes (:func:`~ssibench.data.identity.read_attrs`).

    Raises:
        DataFileError: naming the store, the value found and the rebuild command.
    """
    if "sigma" not in attrs:
        raise missing_error(path, "sigma", "no attribute")
    value = attrs["sigma"]
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if not number or not math.isfinite(float(value)) or float(value) < 0:
        raise DataFileError(
            f"{path}: attribute 'sigma' is {value!r}, expected the noise standard deviation, one "
            f"finite number ≥ 0; {rebuild_hint(path)}"
        )
    return float(value)


def _bad_rows(
    values: np.ndarray, good: Callable[[np.ndarray], np.ndarray] | None = None
) -> list[int]:
    """Rows of ``values`` with a non-finite entry (or, given ``good``, one it calls False)."""
    bad: list[int] = []
    for start in range(0, values.shape[0], CHECK_ROWS):
        block = values[start : start + CHECK_ROWS]
        block = block.reshape(block.shape[0], -1)
        ok = good(block) if good is not None else np.isfinite(block)
        bad.extend(start + int(row) for row in np.flatnonzero(~ok.all(axis=1)))
    return bad


def _listed(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:LISTED_ROWS])
    return shown + (f", … ({len(rows)} in all)" if len(rows) > LISTED_ROWS else "")


def _binary(block: np.ndarray) -> np.ndarray:
    return (block == 0) | (block == 1)


def check_values(
    path: Path, split: str, arrays: Mapping[str, np.ndarray], kind: PhysicsKind
) -> None:
    """Refuse non-finite measurements, coil maps or ground truth, and masks that are not 0/1.

    A NaN or inf in ``y`` would otherwise surface much later as a diverged training ("lower the
    learning rate") or a reconstruction blamed on the network.

    Args:
        path: the store, for messages.
        split: the split read.
        arrays: what was read, by name in the file (:func:`checked_datasets`).
        kind: the store's physics kind.

    Raises:
        DataFileError: naming the dataset, the rows (slices; coils for file-level maps) and
            the rebuild command.
    """
    finite = [f"{split}/y", f"{split}/coil_maps", "coil_maps"]
    if kind.ground_truth:  # else x is NaN by design: there is no reference image
        finite.append(f"{split}/x")
    for name in finite:
        if name in arrays and (rows := _bad_rows(arrays[name])):
            what = "coil(s)" if name == "coil_maps" else "slice(s)"
            raise DataFileError(
                f"{path}: dataset {name!r} holds values that are not finite (NaN or inf) in "
                f"{what} {_listed(rows)}; {rebuild_hint(path)}"
            )
    mask = arrays[f"{split}/mask"]
    if rows := _bad_rows(mask, _binary):
        raise DataFileError(
            f"{path}: dataset '{split}/mask' holds values other than 0 and 1 in row(s) "
            f"{_listed(rows)} (a mask says which k-space samples were measured); "
            f"{rebuild_hint(path)}"
        )
