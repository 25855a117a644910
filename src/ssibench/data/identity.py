"""Store identity: the content hashes of a measurement store, written once and read back.

A finished store (layout: :mod:`ssibench.data.measurements`) carries hex SHA-256 attrs that
identify what a run was trained and evaluated on: ``hash_train``, ``hash_val``, ``hash_test``
(the shapes, dtypes and bytes of the split's ``index``, ``x``, ``y`` and ``mask``, in that order,
then those of :data:`OPTIONAL_SPLIT_DATASETS` the split has),
``training_hash`` (what training reads: the physics attributes, ``coil_maps``, train and val) and
``content_hash`` (all of it, test included). :func:`write_hashes` computes them when
:func:`~ssibench.data.measurements.write_measurements` closes a store; :func:`store_identity`
reads them back without loading a tensor. :func:`open_store` and :func:`missing_error` give the
store readers one error for a missing, unreadable or incomplete file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ssibench.data.splits import SPLITS
from ssibench.errors import DataFileError, rebuild_hint

__all__ = [
    "HASH_CHUNK_ROWS",
    "OPTIONAL_SPLIT_DATASETS",
    "PHYSICS_ATTRS",
    "SPLIT_DATASETS",
    "StoreIdentity",
    "missing_error",
    "open_store",
    "store_identity",
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


def _dataset_digest(digest: hashlib._Hash, dataset: h5py.Dataset) -> None:
    """Feed ``dataset``'s shape, dtype and bytes (row chunk by row chunk) into ``digest``."""
    digest.update(f"{dataset.name}:{dataset.shape}:{dataset.dtype.str};".encode())
    for start in range(0, dataset.shape[0], HASH_CHUNK_ROWS):
        digest.update(np.ascontiguousarray(dataset[start : start + HASH_CHUNK_ROWS]).tobytes())


def write_hashes(handle: h5py.File) -> None:
    """Content hashes of a finished store (module docstring), written as attrs."""
    for split in SPLITS:
        if split in handle:
            digest = hashlib.sha256()
            for key in SPLIT_DATASETS:
                _dataset_digest(digest, handle[split][key])
            for key in OPTIONAL_SPLIT_DATASETS:
                if key in handle[split]:
                    _dataset_digest(digest, handle[split][key])
            handle.attrs[f"hash_{split}"] = digest.hexdigest()
    physics = hashlib.sha256()
    physics.update(json.dumps({k: _plain(handle.attrs[k]) for k in PHYSICS_ATTRS}).encode())
    if "coil_maps" in handle:
        _dataset_digest(physics, handle["coil_maps"])
    handle.attrs["training_hash"] = _combine(
        physics.hexdigest(), handle.attrs.get("hash_train", ""), handle.attrs.get("hash_val", "")
    )
    handle.attrs["content_hash"] = _combine(
        handle.attrs["training_hash"], handle.attrs.get("hash_test", "")
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


def missing_error(path: Path, key: str, what: str = "no dataset") -> DataFileError:
    """The error for a store at ``path`` that lacks ``key`` (a dataset, group or attribute)."""
    return DataFileError(f"{path}: {what} {key!r}; {rebuild_hint(path)}")
