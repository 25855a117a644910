"""The slices store: normalised magnitude images with their provenance and a train/val/test split.

:func:`extract_volumes` turns magnitude volumes ``{name: (S, H, W)}`` into
``data/slices/<dataset>.h5`` as SSIBench builds its training set (DeepInverse's
``save_simple_dataset``): each slice min–max rescaled to [0, 1], then centre-cropped or zero-padded
to H×W (rescaling first, so padding zeros are ≤ the image minimum); a seeded split of the volumes
(:mod:`ssibench.data.splits`; train and test not empty) that keeps each volume's slices together;
the per-slice operations are :mod:`ssibench.data.slice_images`. Its front ends:
:func:`extract_slices` (the middle slice of each fastMRI volume of a folder),
:func:`ssibench.data.images.extract_images` (a folder of images) and
:func:`ssibench.interop.simple_dataset.extract_simple_dataset`. Every raw file is read before
anything is written; malformed ones stop the extraction with one error listing them all, or, with
``on_bad_file="skip"``, are left out and recorded.

File layout (HDF5): ``images`` float32 (N, H, W); ``source_file`` (N,) utf-8 names;
``slice_index`` (N,) int64; ``acquisition`` (N,) utf-8; group ``split`` with sorted int64
``train``, ``val``, ``test`` (disjoint, covering 0 … N−1); attrs ``seed``, ``size``,
``split_fractions`` (JSON), ``split_rule`` (only when not ``"seeded"``), ``skipped_files`` (JSON
list of ``{"file": <name>, "reason": <why>}`` for the raw files left out as malformed, ``[]`` when
none), ``ssibench_version``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

import ssibench
from ssibench.data.fastmri import (
    ON_BAD_FILE,
    BadVolumeError,
    FastMRISlice,
    check_on_bad_file,
    read_middle_slice,
    report_bad_volumes,
)
from ssibench.data.slice_images import as_volume, center_crop_or_pad, check_size, normalise_min_max
from ssibench.data.splits import (
    SPLITS,
    check_fractions,
    check_split_rule,
    check_split_sizes,
    split_generator,
    split_indices,
)
from ssibench.errors import ConfigError, DataFileError, rebuild_hint
from ssibench.io import atomic_path
from ssibench.progress import counted

__all__ = [
    "ON_BAD_FILE",
    "SliceStore",
    "check_on_bad_file",
    "extract_slices",
    "extract_volumes",
    "read_slice_store",
    "write_slice_store",
]

_STRING = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class SliceStore:
    """Contents of a slices store, in memory.

    Attributes:
        images: ``(N, H, W)`` float32 in [0, 1].
        source_file: the raw file (volume) name of each image.
        slice_index: ``(N,)`` int64, the slice of its volume each image comes from.
        acquisition: the acquisition attribute of each source volume.
        split: split name → sorted int64 indices into ``images``.
        skipped_files: (file name, reason) of each raw file left out as malformed; ``()`` when
            none.
    """

    images: Tensor
    source_file: tuple[str, ...]
    slice_index: Tensor
    acquisition: tuple[str, ...]
    split: dict[str, Tensor]
    skipped_files: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return self.images.shape[0]


def write_slice_store(
    path: Path | str,
    store: SliceStore,
    *,
    seed: int,
    split_fractions: Sequence[float],
    split_rule: str = "seeded",
) -> None:
    """Write ``store`` to ``path`` atomically in the slices-store layout (module docstring)."""
    height, width = store.images.shape[-2:]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("images", data=store.images.numpy().astype(np.float32))
        handle.create_dataset("source_file", data=list(store.source_file), dtype=_STRING)
        handle.create_dataset("slice_index", data=store.slice_index.numpy().astype(np.int64))
        handle.create_dataset("acquisition", data=list(store.acquisition), dtype=_STRING)
        group = handle.create_group("split")
        for name in SPLITS:
            group.create_dataset(name, data=store.split[name].numpy().astype(np.int64))
        handle.attrs["seed"] = int(seed)
        handle.attrs["size"] = np.array([height, width], dtype=np.int64)
        handle.attrs["split_fractions"] = json.dumps([float(f) for f in split_fractions])
        if split_rule != "seeded":  # the default leaves the store as it always was
            handle.attrs["split_rule"] = split_rule
        handle.attrs["skipped_files"] = json.dumps(
            [{"file": name, "reason": reason} for name, reason in store.skipped_files],
            ensure_ascii=False,
        )
        handle.attrs["ssibench_version"] = ssibench.__version__


def read_slice_store(path: Path | str) -> SliceStore:
    """Read a slices store written by :func:`extract_slices` into memory.

    Raises:
        DataFileError: if the file is missing, not HDF5, or lacks a dataset; the message names the
            path, the key and how to rebuild it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such slices store; {rebuild_hint(path)}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataFileError(
            f"{path}: not a readable HDF5 file ({error}); {rebuild_hint(path)}"
        ) from error
    with handle:
        keys = ["images", "source_file", "slice_index", "acquisition"]
        keys += [f"split/{name}" for name in SPLITS]
        for key in keys:
            if key not in handle:
                raise DataFileError(f"{path}: no dataset {key!r}; {rebuild_hint(path)}")
        images = torch.from_numpy(np.asarray(handle["images"][()], dtype=np.float32))
        if images.ndim != 3:
            raise DataFileError(
                f"{path}: dataset 'images' has shape {tuple(images.shape)}, expected (N, H, W); "
                f"{rebuild_hint(path)}"
            )
        return SliceStore(
            images=images,
            source_file=tuple(s.decode() for s in handle["source_file"][()]),
            slice_index=torch.from_numpy(handle["slice_index"][()].astype(np.int64)),
            acquisition=tuple(s.decode() for s in handle["acquisition"][()]),
            split={
                name: torch.from_numpy(handle[f"split/{name}"][()].astype(np.int64))
                for name in SPLITS
            },
            skipped_files=_read_skipped_files(handle, path),
        )


def _read_skipped_files(handle: h5py.File, path: Path) -> tuple[tuple[str, str], ...]:
    """The ``skipped_files`` attribute as (file, reason) pairs (``()`` when none was skipped)."""
    if "skipped_files" not in handle.attrs:
        raise DataFileError(f"{path}: no attribute 'skipped_files'; {rebuild_hint(path)}")
    raw = handle.attrs["skipped_files"]
    try:
        entries = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        return tuple((str(entry["file"]), str(entry["reason"])) for entry in entries)
    except (json.JSONDecodeError, TypeError, KeyError) as error:
        raise DataFileError(
            f"{path}: attribute 'skipped_files' is not a JSON list of "
            f'{{"file": ..., "reason": ...}} ({type(error).__name__}: {error}); '
            f"{rebuild_hint(path)}"
        ) from error


def extract_slices(
    raw_dir: Path | str,
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
    on_bad_file: Literal["stop", "skip"] = "stop",
    split_rule: str = "seeded",
) -> SliceStore:
    """Build the slices store from every ``*.h5`` volume in ``raw_dir`` (sorted by file name).

    The target of each volume's middle slice (:func:`~ssibench.data.fastmri.read_middle_slice`)
    goes through :func:`extract_volumes` as a one-slice volume, a constant one kept (clipped).
    ``raw_dir`` is not searched recursively. Every file is read first; ``on_bad_file="stop"``
    raises one error listing every malformed file, ``"skip"`` leaves them out, warns about each on
    stderr and records them in the store's ``skipped_files`` (and raises if every file is bad).

    Raises:
        DataFileError: no ``*.h5`` file in ``raw_dir``, or bad files as above.
        ConfigError: a bad size, split fractions or ``on_bad_file``, or fractions that leave the
            train or test split empty for the number of good files.
    """
    raw_dir = Path(raw_dir)
    size = check_size(size)
    check_on_bad_file(on_bad_file)
    check_fractions(split_fractions)
    files = sorted(raw_dir.glob("*.h5"))
    if not files:
        state = "is empty of *.h5 files" if raw_dir.is_dir() else "does not exist"
        raise DataFileError(
            f"{raw_dir}: {state}; put fastMRI-format volumes (*.h5) there, or build the embedded "
            "demo with `ssibench demo-data` (data.source: demo)"
        )
    good: list[tuple[Path, FastMRISlice]] = []
    bad: list[tuple[Path, str]] = []
    for file in counted(files, f"extract {raw_dir.name}", "volumes"):
        try:
            good.append((file, read_middle_slice(file)))
        except BadVolumeError as error:
            bad.append((file, error.reason))
    report_bad_volumes(raw_dir, bad, len(files), on_bad_file)
    return extract_volumes(
        {file.name: middle.image[None] for file, middle in good},
        out,
        size,
        split_fractions,
        seed,
        slice_index={file.name: [middle.slice_index] for file, middle in good},
        acquisition={file.name: middle.acquisition for file, middle in good},
        skipped_files=[(file.name, reason) for file, reason in bad],
        drop_constant_slices=False,
        split_rule=split_rule,
    )


def extract_volumes(
    volumes: Mapping[str, ArrayLike | Tensor],
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
    *,
    slice_index: Mapping[str, Sequence[int]] | None = None,
    acquisition: Mapping[str, str] | None = None,
    skipped_files: Sequence[tuple[str, str]] = (),
    drop_constant_slices: bool = True,
    split_rule: str = "seeded",
) -> SliceStore:
    """Build the slices store from magnitude volumes in memory (module docstring), split by volume.

    Volumes are taken in sorted name order; per slice :func:`normalise_min_max`, then
    :func:`center_crop_or_pad` to ``size``. :func:`split_indices` (from the generator of
    ``split_rule``, :func:`~ssibench.data.splits.split_generator`) splits the V volumes and each
    split holds every slice of its volumes; with one slice per volume that is a split of the
    images. Nothing is written if anything is wrong.

    Args:
        volumes: name (stored as ``source_file``) → real ``(S, H, W)`` or ``(H, W)`` array or
            tensor (:func:`as_volume`); sizes may differ between volumes.
        out: the slices store to write.
        size: (H, W) of the stored images.
        split_fractions: (train, val, test) fractions summing to 1.
        seed: master seed.
        slice_index: name → index in its source of each of the S slices (default 0 … S−1).
        acquisition: name → acquisition label (default ``"unknown"``).
        skipped_files: (name, reason) of raw files left out before, recorded in the store.
        drop_constant_slices: leave out constant slices, naming them on stderr; ``False`` keeps
            them, clipped to [0, 1].
        split_rule: ``"seeded"`` (the ``split`` stream of ``seed``) or ``"ssibench"``
            (SSIBench's ``random_split`` generator, whatever ``seed``).

    Returns:
        The store as written: ``images`` ``(N, H, W)``, N the number of slices kept.

    Raises:
        DataFileError: no volume, or volumes that fail :func:`as_volume` or (with
            ``drop_constant_slices``) have only constant slices; one error lists them all.
        ConfigError: a bad size, fractions or split rule, or a train or test split empty for V
            volumes.
    """
    size = check_size(size)
    check_fractions(split_fractions)
    check_split_rule(split_rule)
    if not volumes:
        raise DataFileError("no volumes to extract: the data source gave an empty mapping")
    kept: dict[str, tuple[NDArray[np.float32], list[int]]] = {}
    bad: list[str] = []
    for name in sorted(volumes):
        try:
            volume = as_volume(volumes[name])
        except ValueError as error:
            bad.append(f"  {name}: {error}")
            continue
        indices = list(slice_index[name] if slice_index else range(len(volume)))
        # a constant slice (e.g. blank, at the end of a scan) is all 0 or 1 after rescaling: no
        # image to reconstruct, and its NMSE and fastMRI-mode PSNR are undefined
        flat = volume.reshape(len(volume), -1)
        keep = flat.max(axis=1) > flat.min(axis=1)
        keep |= not drop_constant_slices
        if not keep.any():
            bad.append(f"  {name}: every slice is constant (a blank image)")
            continue
        if not keep.all():
            blank = [i for i, k in zip(indices, keep, strict=True) if not k]
            print(f"ssibench extract: {name}: leaving out constant slices {blank}", file=sys.stderr)
        kept[name] = (volume[keep], [i for i, k in zip(indices, keep, strict=True) if k])
    if bad:
        head = f"{len(bad)} of {len(volumes)} volumes are not magnitude images; fix the source:"
        raise DataFileError("\n".join([head, *bad]))
    try:
        check_split_sizes(len(kept), split_fractions)
    except ConfigError as error:
        n_skipped = len(skipped_files)
        skipped = f"; {n_skipped} malformed raw files were skipped" if n_skipped else ""
        raise ConfigError(f"{error} (ssibench extract --split TRAIN VAL TEST{skipped})") from None
    # the first image of volume v is starts[v]; a split holds starts[v] … starts[v + 1] − 1
    starts = np.cumsum([0, *(len(volume) for volume, _ in kept.values())]).tolist()
    by_volume = split_indices(len(kept), split_fractions, split_generator(split_rule, seed))
    owners = [name for name, (volume, _) in kept.items() for _ in volume]
    store = SliceStore(
        images=torch.stack(
            [
                center_crop_or_pad(normalise_min_max(torch.from_numpy(image)), size)
                for volume, _ in kept.values()
                for image in volume
            ]
        ),
        source_file=tuple(owners),
        slice_index=torch.tensor([i for _, idx in kept.values() for i in idx], dtype=torch.int64),
        acquisition=tuple((acquisition or {}).get(name, "unknown") for name in owners),
        split={
            name: torch.tensor(
                [i for v in part.tolist() for i in range(starts[v], starts[v + 1])],
                dtype=torch.int64,
            )
            for name, part in by_volume.items()
        },
        skipped_files=tuple(skipped_files),
    )
    write_slice_store(out, store, seed=seed, split_fractions=split_fractions, split_rule=split_rule)
    return store
