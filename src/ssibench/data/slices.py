"""The slices store: one normalised magnitude image per raw volume plus a train/val/test split.

``extract_slices`` turns a folder of fastMRI-format volumes into ``data/slices/<dataset>.h5``
the way SSIBench builds its training set (DeepInverse's ``save_simple_dataset``): per volume, the
middle slice's magnitude target is min–max rescaled to [0, 1], then centre-cropped or zero-padded
to H×W (rescaling first, so padding zeros are ≤ the image minimum). The split comes from
:mod:`ssibench.data.splits` (a random permutation from the ``split`` stream cut into consecutive
train, val and test parts; train and test must not be empty). Every raw file is read before
anything is written: malformed ones stop the extraction with one error listing them all, or, with
``on_bad_file="skip"``, are left out and recorded.

File layout (HDF5): ``images`` float32 (N, H, W); ``source_file`` (N,) utf-8 names;
``slice_index`` (N,) int64; ``acquisition`` (N,) utf-8; group ``split`` with sorted int64
``train``, ``val``, ``test`` (disjoint, covering 0 … N−1); attrs ``seed``, ``size``,
``split_fractions`` (JSON), ``skipped_files`` (JSON list of ``{"file": <name>, "reason": <why>}``
for the raw files left out as malformed, ``[]`` when none; absent in stores written before it
existed), ``ssibench_version``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

import ssibench
from ssibench.data.fastmri import BadVolumeError, FastMRISlice, read_middle_slice
from ssibench.data.splits import SPLITS, check_fractions, check_split_sizes, split_indices
from ssibench.errors import ConfigError, DataFileError, rebuild_hint
from ssibench.io import atomic_path
from ssibench.rng import stream

__all__ = [
    "ON_BAD_FILE",
    "SliceStore",
    "center_crop_or_pad",
    "extract_slices",
    "normalise_min_max",
    "read_slice_store",
    "write_slice_store",
]

#: What :func:`extract_slices` does with a malformed raw file (``data.on_bad_file``): ``stop``
#: raises one error listing every bad file, ``skip`` leaves them out and records them.
ON_BAD_FILE: tuple[Literal["stop", "skip"], ...] = ("stop", "skip")

_STRING = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class SliceStore:
    """Contents of a slices store, in memory.

    Attributes:
        images: ``(N, H, W)`` float32 in [0, 1].
        source_file: the raw file name of each image.
        slice_index: ``(N,)`` int64, the slice of its volume each image comes from.
        acquisition: the acquisition attribute of each source volume.
        split: split name → sorted int64 indices into ``images``.
        skipped_files: (file name, reason) of each raw file left out as malformed; ``()`` when none
            (and for stores written before this was recorded).
    """

    images: Tensor
    source_file: tuple[str, ...]
    slice_index: Tensor
    acquisition: tuple[str, ...]
    split: dict[str, Tensor]
    skipped_files: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return self.images.shape[0]


def normalise_min_max(image: Tensor) -> Tensor:
    """Rescale to [0, 1]: (t − min t) / (max t − min t); a constant image is clipped to [0, 1].

    Args:
        image: ``(h, w)`` float.

    Returns:
        ``(h, w)`` float32.
    """
    image = image.to(torch.float32)
    low, high = image.min(), image.max()
    if high > low:
        return ((image - low) / (high - low)).clamp_(0.0, 1.0)
    return image.clamp(0.0, 1.0)


def center_crop_or_pad(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Centre-crop or zero-pad the last two axes to ``size`` (torchvision ``CenterCrop`` geometry).

    Along an axis of length n and target t: if n < t, pad ⌊(t − n)/2⌋ zeros before and ⌈(t − n)/2⌉
    after; if n > t, keep [s, s + t) with s = round((n − t)/2) (Python's round, half to even).

    Args:
        image: ``(..., h, w)``.
        size: (H, W).

    Returns:
        ``(..., H, W)``, a new tensor.
    """
    for axis, target in zip((-2, -1), size, strict=True):
        length = image.shape[axis]
        if length > target:
            start = round((length - target) / 2)
            image = image.narrow(axis, start, target)
        elif length < target:
            before = (target - length) // 2
            pad_shape = list(image.shape)
            pad_shape[axis] = before
            front = image.new_zeros(pad_shape)
            pad_shape[axis] = target - length - before
            back = image.new_zeros(pad_shape)
            image = torch.cat([front, image, back], dim=axis)
    return image.contiguous()


def write_slice_store(
    path: Path | str,
    store: SliceStore,
    *,
    seed: int,
    split_fractions: Sequence[float],
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
        handle.attrs["skipped_files"] = json.dumps(
            [{"file": name, "reason": reason} for name, reason in store.skipped_files],
            ensure_ascii=False,
        )
        handle.attrs["ssibench_version"] = ssibench.__version__


def _rebuild_hint(path: Path) -> str:
    return rebuild_hint(path)


def read_slice_store(path: Path | str) -> SliceStore:
    """Read a slices store written by :func:`extract_slices` into memory.

    Raises:
        DataFileError: if the file is missing, not HDF5, or lacks a dataset; the message names the
            path, the key and how to rebuild it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such slices store; {_rebuild_hint(path)}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataFileError(
            f"{path}: not a readable HDF5 file ({error}); {_rebuild_hint(path)}"
        ) from error
    with handle:
        keys = ["images", "source_file", "slice_index", "acquisition"]
        keys += [f"split/{name}" for name in SPLITS]
        for key in keys:
            if key not in handle:
                raise DataFileError(f"{path}: no dataset {key!r}; {_rebuild_hint(path)}")
        images = torch.from_numpy(np.asarray(handle["images"][()], dtype=np.float32))
        if images.ndim != 3:
            raise DataFileError(
                f"{path}: dataset 'images' has shape {tuple(images.shape)}, expected (N, H, W); "
                f"{_rebuild_hint(path)}"
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
    """The ``skipped_files`` attribute as (file, reason) pairs; ``()`` if the store predates it."""
    if "skipped_files" not in handle.attrs:
        return ()
    raw = handle.attrs["skipped_files"]
    try:
        entries = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        return tuple((str(entry["file"]), str(entry["reason"])) for entry in entries)
    except (json.JSONDecodeError, TypeError, KeyError) as error:
        raise DataFileError(
            f"{path}: attribute 'skipped_files' is not a JSON list of "
            f'{{"file": ..., "reason": ...}} ({type(error).__name__}: {error}); '
            f"{_rebuild_hint(path)}"
        ) from error


def extract_slices(
    raw_dir: Path | str,
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
    on_bad_file: Literal["stop", "skip"] = "stop",
) -> SliceStore:
    """Build the slices store from every ``*.h5`` volume in ``raw_dir`` (sorted by file name).

    Per volume: target of the middle slice (:func:`~ssibench.data.fastmri.read_middle_slice`) →
    :func:`normalise_min_max` → :func:`center_crop_or_pad` to ``size``. Split by
    :func:`split_indices` with the ``split`` stream of ``seed``. Every file is read before anything
    is written, so one run reports all malformed files; on any error no output file appears.

    Args:
        raw_dir: folder of fastMRI-format ``*.h5`` files (not searched recursively).
        out: the slices store to write.
        size: (H, W) of the stored images.
        split_fractions: (train, val, test) fractions summing to 1.
        seed: master seed.
        on_bad_file: ``"stop"``: raise if any file is malformed; ``"skip"``: leave malformed files
            out, warn about each on stderr and record them in the store's ``skipped_files``.

    Returns:
        The store as written.

    Raises:
        DataFileError: if ``raw_dir`` holds no ``*.h5`` file, if any file is malformed (``stop``)
            or every file is (``skip``); one error lists every bad file with its reason.
        ConfigError: for a bad size, bad split fractions, an unknown ``on_bad_file``, or fractions
            that leave the train or test split empty for the number of good files.
    """
    raw_dir = Path(raw_dir)
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ConfigError(f"image size (--size H W): expected two integers ≥ 1; got {list(size)}")
    size = (int(size[0]), int(size[1]))
    if on_bad_file not in ON_BAD_FILE:
        raise ConfigError(
            f"data.on_bad_file (--on-bad-file): got {on_bad_file!r}; expected one of "
            f"{', '.join(ON_BAD_FILE)}"
        )
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
    for file in tqdm(files, desc=f"extract {raw_dir.name}", unit="volume"):
        try:
            good.append((file, read_middle_slice(file)))
        except BadVolumeError as error:
            bad.append((file, error.reason))
    if bad and (on_bad_file == "stop" or not good):
        raise DataFileError(_bad_files_message(raw_dir, bad, len(files), on_bad_file))
    for file, reason in bad:
        print(f"ssibench extract: skipping {file}: {reason}", file=sys.stderr)
    try:
        check_split_sizes(len(good), split_fractions)
    except ConfigError as error:
        skipped = f"; {len(bad)} malformed raw files were skipped" if bad else ""
        raise ConfigError(f"{error} (ssibench extract --split TRAIN VAL TEST{skipped})") from None
    split = split_indices(len(good), split_fractions, stream(seed, "split"))
    store = SliceStore(
        images=torch.stack(
            [center_crop_or_pad(normalise_min_max(middle.image), size) for _, middle in good]
        ),
        source_file=tuple(file.name for file, _ in good),
        slice_index=torch.tensor([middle.slice_index for _, middle in good], dtype=torch.int64),
        acquisition=tuple(middle.acquisition for _, middle in good),
        split=split,
        skipped_files=tuple((file.name, reason) for file, reason in bad),
    )
    write_slice_store(out, store, seed=seed, split_fractions=split_fractions)
    return store


def _bad_files_message(
    raw_dir: Path, bad: Sequence[tuple[Path, str]], n_files: int, on_bad_file: str
) -> str:
    """One error for every malformed raw file: a summary line with the fix, then one per file."""
    if len(bad) == n_files and on_bad_file == "skip":
        head = (
            f"{raw_dir}: all {n_files} *.h5 files are unreadable or malformed, so nothing is left "
            "to extract (data.on_bad_file: skip); repair or re-download them, or point "
            "data.raw_dir at a folder of fastMRI-format volumes:"
        )
    else:
        head = (
            f"{raw_dir}: {len(bad)} of {n_files} *.h5 files are unreadable or malformed; repair "
            "or re-download them or remove them from the folder, or set data.on_bad_file: skip "
            "in the config (ssibench extract --on-bad-file skip) to leave them out:"
        )
    return "\n".join([head, *(f"  {file}: {reason}" for file, reason in bad)])
