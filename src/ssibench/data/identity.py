"""Store identity: the content hashes of a measurement store, written once and read back.

A finished store (layout: :mod:`ssibench.data.measurements`) carries hex SHA-256 attrs that
identify what a run was trained and evaluated on: ``hash_train``, ``hash_val``, ``hash_test``
(the shapes, dtypes and bytes of the split's ``index``, ``x``, ``y`` and ``mask``, in that order,
then those of :data:`OPTIONAL_SPLIT_DATASETS` the split has),
``training_hash`` (what training reads: the physics attributes, ``coil_maps``, train and val) and
``content_hash`` (all of it, test included). :func:`write_hashes` computes them when
:func:`~ssibench.data.measurements.write_measurements` closes a store; :func:`verify_split`
recomputes them from the bytes a reader has read (a store changed after it was written is
refused); :func:`store_identity` reads them back without loading a tensor. :func:`open_store`
and :func:`missing_error` give the store readers one error for a missing, unreadable or
incomplete file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ssibench.data.splits import SPLITS
from ssibench.errors import DataFileError, rebuild_hint

__all__ = [
    "HASH_ATTRS",
    "HASH_CHUNK_ROWS",
    "OPTIONAL_SPLIT_DATASETS",
    "PHYSICS_ATTRS",
    "SPLIT_DATASETS",
    "StoreIdentity",
    "missing_error",
    "open_store",
    "read_attrs",
    "store_identity",
    "store_scenario",
    "verify_split",
    "write_hashes",
]

#: Datasets of a split, in the order their bytes enter the split's hash.
SPLIT_DATASETS = ("index", "x", "y", "mask")
#: Per-sample datasets only acquired-k-space stores have (estimated coil maps, the k-space scale,
#: the estimated noise level, the slice of the volume); hashed after :data:`SPLIT_DATASETS` when
#: present, so the hashes of simulated stores are unchanged.
OPTIONAL_SPLIT_DATASETS = ("coil_maps", "scale", "noise_sigma", "slice_index")
#: Rows read at once while hashing (bounds memory on paper-size stores).
HASH_CHUNK_ROWS = 64
#: The attributes that describe the physics (part of the training and content hashes).
PHYSICS_ATTRS = ("scenario", "physics", "sigma", "spec")
#: The attributes that hold the content hashes.
HASH_ATTRS = ("hash_train", "hash_val", "hash_test", "training_hash", "content_hash")


def _dataset_digest(digest: hashlib._Hash, dataset: h5py.Dataset) -> None:
    """Feed ``dataset``'s shape, dtype and bytes (row chunk by row chunk) into ``digest``."""
    digest.update(f"{dataset.name}:{dataset.shape}:{dataset.dtype.str};".encode())
    for start in range(0, dataset.shape[0], HASH_CHUNK_ROWS):
        digest.update(np.ascontiguousarray(dataset[start : start + HASH_CHUNK_ROWS]).tobytes())


def _array_digest(digest: hashlib._Hash, name: str, values: np.ndarray) -> None:
    """:func:`_dataset_digest` of the dataset ``name`` (no leading "/") already read as ``values``.

    The same bytes in the same order (C-order rows), so the same digest, with no second read.
    """
    digest.update(f"/{name}:{values.shape}:{values.dtype.str};".encode())
    digest.update(np.ascontiguousarray(values))  # a buffer: hashed without a copy


def _split_names(handle: h5py.File, split: str) -> list[str]:
    """The datasets of ``split`` that enter its hash, in order, as ``<split>/<key>``."""
    keys = [*SPLIT_DATASETS, *(k for k in OPTIONAL_SPLIT_DATASETS if k in handle[split])]
    return [f"{split}/{key}" for key in keys]


def _physics_digest(attrs: Mapping[str, object], coil_maps: np.ndarray | None) -> str:
    """Digest of the physics attributes and the file-level ``coil_maps`` (read as given)."""
    physics = hashlib.sha256()
    physics.update(json.dumps({k: _plain(attrs[k]) for k in PHYSICS_ATTRS}).encode())
    if coil_maps is not None:
        _array_digest(physics, "coil_maps", coil_maps)
    return physics.hexdigest()


def _identity_hashes(attrs: Mapping[str, object], physics: str) -> tuple[str, str]:
    """``training_hash`` and ``content_hash`` from the physics digest and the split hashes."""
    training = _combine(physics, attrs.get("hash_train", ""), attrs.get("hash_val", ""))
    return training, _combine(training, attrs.get("hash_test", ""))


def write_hashes(handle: h5py.File) -> None:
    """Content hashes of a finished store (module docstring), written as attrs."""
    for split in SPLITS:
        if split in handle:
            digest = hashlib.sha256()
            for name in _split_names(handle, split):
                _dataset_digest(digest, handle[name])
            handle.attrs[f"hash_{split}"] = digest.hexdigest()
    # file-level maps are small (N, 2, H, W): read whole, as verify_split hashes them
    maps = handle["coil_maps"][()] if "coil_maps" in handle else None
    training, content = _identity_hashes(handle.attrs, _physics_digest(handle.attrs, maps))
    handle.attrs["training_hash"] = training
    handle.attrs["content_hash"] = content


def read_attrs(handle: h5py.File, keys: Sequence[str]) -> dict[str, object]:
    """The attributes ``keys`` that the store has, as plain Python values, each read once."""
    stored = handle.attrs  # one attribute manager: reading an attribute costs ~0.1 ms
    return {key: _plain(stored[key]) for key in keys if key in stored}


def verify_split(
    path: Path, split: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, object]
) -> None:
    """Recompute the hashes a read of ``split`` can check, and refuse a store that differs.

    A store copied from elsewhere or edited by hand keeps the hashes it was written with; a run
    would record them for data they no longer describe. The split's hash is recomputed from
    ``arrays``, the bytes just read (``"<split>/<key>"``: :data:`SPLIT_DATASETS` and those of
    :data:`OPTIONAL_SPLIT_DATASETS` the split has; ``"coil_maps"``: file-level maps, if any),
    so the check costs one SHA-256 pass over data already in memory; then ``training_hash`` and
    ``content_hash`` must combine the physics attributes, the coil maps and the split hashes as
    :func:`write_hashes` did.

    Args:
        path: the store, for messages.
        split: the split read.
        arrays: what was read, by name in the file.
        attrs: the store's attributes (:func:`read_attrs` of :data:`PHYSICS_ATTRS` and
            :data:`HASH_ATTRS`).

    Raises:
        DataFileError: naming the store, the hash that does not match and the rebuild command.
    """
    for key in (f"hash_{split}", "training_hash", "content_hash", *PHYSICS_ATTRS):
        if key not in attrs:
            raise DataFileError(
                f"{path}: no attribute {key!r} (written by an older ssibench, or not a "
                f"measurement store); {rebuild_hint(path)}"
            )
    digest = hashlib.sha256()
    for key in (*SPLIT_DATASETS, *OPTIONAL_SPLIT_DATASETS):
        if f"{split}/{key}" in arrays:
            _array_digest(digest, f"{split}/{key}", arrays[f"{split}/{key}"])
    changed = "the file was changed after ssibench wrote it, or is damaged"
    if digest.hexdigest() != attrs[f"hash_{split}"]:
        raise DataFileError(
            f"{path}: the data of split {split!r} do not match its hash (attribute "
            f"'hash_{split}'): {changed}; {rebuild_hint(path)}"
        )
    try:
        physics = _physics_digest(attrs, arrays.get("coil_maps"))
    except TypeError as error:  # an attribute json cannot write: an array, a compound value
        raise DataFileError(
            f"{path}: attributes {', '.join(PHYSICS_ATTRS)} must be text or numbers ({error}); "
            f"{rebuild_hint(path)}"
        ) from error
    if _identity_hashes(attrs, physics) != (attrs["training_hash"], attrs["content_hash"]):
        raise DataFileError(
            f"{path}: its attributes {', '.join(PHYSICS_ATTRS)}, coil maps or split hashes do "
            f"not match its 'training_hash' and 'content_hash': {changed}; {rebuild_hint(path)}"
        )


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def _combine(*digests: object) -> str:
    return hashlib.sha256(":".join(str(_plain(d)) for d in digests).encode()).hexdigest()


@dataclass(frozen=True)
class StoreIdentity:
    """What identifies a measurement store's data, read from its attributes.

    Attributes:
        path: the store.
        training_hash: hash of what training reads (physics attributes, coil maps, train, val).
        content_hash: hash of the whole store (training data and the test split).
        n_test: number of test slices.
        skipped_files: raw files left out at extraction (``data.on_bad_file: skip``).
    """

    path: Path
    training_hash: str
    content_hash: str
    n_test: int
    skipped_files: tuple[str, ...] = ()


def store_identity(path: Path | str) -> StoreIdentity:
    """Read the identity of the measurement store at ``path`` (no tensor is loaded).

    Raises:
        DataFileError: for a missing or unreadable file, or a store without content hashes (made
            by an ssibench before they existed), naming the path and the rebuild command.
    """
    path = Path(path)
    handle = open_store(path)
    with handle:
        for key in ("training_hash", "content_hash"):
            if key not in handle.attrs:
                raise DataFileError(
                    f"{path}: no attribute {key!r} (written by an older ssibench, or not a "
                    f"measurement store); {rebuild_hint(path)}"
                )
        if "test" not in handle or "index" not in handle["test"]:
            raise missing_error(path, "test/index")
        return StoreIdentity(
            path=path,
            training_hash=str(_plain(handle.attrs["training_hash"])),
            content_hash=str(_plain(handle.attrs["content_hash"])),
            n_test=int(handle["test"]["index"].shape[0]),
            skipped_files=tuple(
                entry["file"]
                for entry in json.loads(str(_plain(handle.attrs.get("skipped_files", "[]"))))
            ),
        )


def open_store(path: Path) -> h5py.File:
    """Open the measurement store at ``path`` for reading.

    Raises:
        DataFileError: for a missing file or one that is not readable HDF5, naming the path and
            the rebuild command.
    """
    if not path.is_file():
        raise DataFileError(f"{path}: no such measurement store; {rebuild_hint(path)}")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataFileError(
            f"{path}: not a readable HDF5 file ({error}); {rebuild_hint(path)}"
        ) from error


def store_scenario(path: Path | str) -> dict[str, Any]:
    """The scenario spec a measurement store was simulated with (its ``spec`` attribute)."""
    with open_store(Path(path)) as handle:
        value = handle.attrs.get("spec", "{}")
    return dict(json.loads(value.decode() if isinstance(value, bytes) else str(value)))


def missing_error(path: Path, key: str, what: str = "no dataset") -> DataFileError:
    """The error for a store at ``path`` that lacks ``key`` (a dataset, group or attribute)."""
    return DataFileError(f"{path}: {what} {key!r}; {rebuild_hint(path)}")
