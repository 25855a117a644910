"""The slices store: one normalised magnitude image per raw volume plus a train/val/test split.

``extract_slices`` turns a folder of fastMRI-format volumes into ``data/slices/<dataset>.h5``
the way SSIBench builds its training set (DeepInverse's ``save_simple_dataset``): per volume, the
middle slice's magnitude target is min–max rescaled to [0, 1], then centre-cropped or zero-padded
to H×W (rescaling first, so padding zeros are ≤ the image minimum). The split is a random
permutation from the ``split`` stream cut into consecutive train, val and test parts.

File layout (HDF5): ``images`` float32 (N, H, W); ``source_file`` (N,) utf-8 names;
``slice_index`` (N,) int64; ``acquisition`` (N,) utf-8; group ``split`` with sorted int64
``train``, ``val``, ``test`` (disjoint, covering 0 … N−1); attrs ``seed``, ``size``,
``split_fractions`` (JSON), ``ssibench_version``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

import ssibench
from ssibench.data.fastmri import read_middle_slice
from ssibench.errors import ConfigError, DataFileError
from ssibench.io import atomic_path
from ssibench.rng import stream

__all__ = [
    "SPLITS",
    "SliceStore",
    "center_crop_or_pad",
    "extract_slices",
    "normalise_min_max",
    "read_slice_store",
    "split_indices",
    "split_lengths",
    "write_slice_store",
]

#: The data splits, in the order their indices are cut from the permutation and masks are drawn.
SPLITS = ("train", "val", "test")
#: Tolerance on Σ fractions = 1 (fractions usually come from a YAML file as decimals).
FRACTION_SUM_TOLERANCE = 1e-6

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
    """

    images: Tensor
    source_file: tuple[str, ...]
    slice_index: Tensor
    acquisition: tuple[str, ...]
    split: dict[str, Tensor]

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


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate (train, val, test) fractions: three finite numbers ≥ 0 summing to 1."""
    values = tuple(float(f) for f in fractions)
    where = "split fractions (--split TRAIN VAL TEST)"
    if len(values) != len(SPLITS):
        raise ConfigError(f"{where}: expected 3 values (train, val, test); got {list(values)}")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(
            f"{where}: every fraction must be a finite number ≥ 0; got {list(values)}"
        )
    if abs(sum(values) - 1.0) > FRACTION_SUM_TOLERANCE:
        raise ConfigError(
            f"{where}: fractions must sum to 1; got {list(values)} (sum {sum(values):g}); "
            "e.g. 0.8 0.0 0.2 as in SSIBench"
        )
    return values  # type: ignore[return-value]


def split_lengths(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Number of samples per split, as ``torch.utils.data.random_split`` does with fractions.

    nₛ = ⌊fₛ N⌋, then the remainder N − Σ nₛ is handed out one by one, round-robin from the first
    split, to the splits whose fraction is > 0 (so a split with fraction 0 stays empty).

    Raises:
        ConfigError: if the fractions are not three numbers ≥ 0 summing to 1.
    """
    values = _check_fractions(fractions)
    lengths = [math.floor(f * n) for f in values]
    eligible = [i for i, f in enumerate(values) if f > 0]
    for k in range(n - sum(lengths)):
        lengths[eligible[k % len(eligible)]] += 1
    return lengths[0], lengths[1], lengths[2]


def split_indices(
    n: int, fractions: Sequence[float], generator: torch.Generator
) -> dict[str, Tensor]:
    """Random train/val/test split: a permutation of 0 … N−1 cut into consecutive parts.

    Args:
        n: number of samples N.
        fractions: (train, val, test) fractions summing to 1 (see :func:`split_lengths`).
        generator: the ``split`` stream (one ``randperm(N)`` is drawn).

    Returns:
        split name → sorted ``(nₛ,)`` int64 indices; disjoint, covering 0 … N−1.
    """
    lengths = split_lengths(n, fractions)
    permutation = torch.randperm(n, generator=generator)
    parts = torch.split(permutation, list(lengths))
    return {name: part.sort().values for name, part in zip(SPLITS, parts, strict=True)}


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
        handle.attrs["ssibench_version"] = ssibench.__version__


def _rebuild_hint(path: Path) -> str:
    return f"rebuild it with `snakemake {path}`"


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
        )


def extract_slices(
    raw_dir: Path | str,
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
) -> SliceStore:
    """Build the slices store from every ``*.h5`` volume in ``raw_dir`` (sorted by file name).

    Per volume: target of the middle slice (:func:`~ssibench.data.fastmri.read_middle_slice`) →
    :func:`normalise_min_max` → :func:`center_crop_or_pad` to ``size``. Split by
    :func:`split_indices` with the ``split`` stream of ``seed``.

    Args:
        raw_dir: folder of fastMRI-format ``*.h5`` files (not searched recursively).
        out: the slices store to write.
        size: (H, W) of the stored images.
        split_fractions: (train, val, test) fractions summing to 1.
        seed: master seed.

    Returns:
        The store as written.

    Raises:
        DataFileError: if ``raw_dir`` holds no ``*.h5`` file or a file is malformed.
        ConfigError: for a bad size or bad split fractions.
    """
    raw_dir = Path(raw_dir)
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ConfigError(f"image size (--size H W): expected two integers ≥ 1; got {list(size)}")
    size = (int(size[0]), int(size[1]))
    _check_fractions(split_fractions)
    files = sorted(raw_dir.glob("*.h5"))
    if not files:
        state = "is empty of *.h5 files" if raw_dir.is_dir() else "does not exist"
        raise DataFileError(
            f"{raw_dir}: {state}; put fastMRI-format volumes (*.h5) there, or build the embedded "
            "demo with `ssibench demo-data` (data.source: demo)"
        )
    images, slice_index, acquisition = [], [], []
    for file in tqdm(files, desc=f"extract {raw_dir.name}", unit="volume"):
        middle = read_middle_slice(file)
        images.append(center_crop_or_pad(normalise_min_max(middle.image), size))
        slice_index.append(middle.slice_index)
        acquisition.append(middle.acquisition)
    split = split_indices(len(files), split_fractions, stream(seed, "split"))
    store = SliceStore(
        images=torch.stack(images),
        source_file=tuple(file.name for file in files),
        slice_index=torch.tensor(slice_index, dtype=torch.int64),
        acquisition=tuple(acquisition),
        split=split,
    )
    write_slice_store(out, store, seed=seed, split_fractions=split_fractions)
    return store
