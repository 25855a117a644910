"""What a file may make ssibench allocate: declared sizes are checked before anything is read.

A file declares the shapes and dtypes of its arrays in a few header bytes, and h5py (like
``np.load`` or nibabel) allocates the whole result of a read before it reads any data — an HDF5
dataset that was never written reads as its fill value. A 1.4 kB file declaring ``kspace``
(3, 200000, 200000) complex64 would make the read of its middle slice allocate 320 GB. So every
read of a raw file (fastMRI volumes and their targets, measured k-space and its mask, image files)
first passes :func:`check_read_size`: the bytes the read returns, ∏ shape × itemsize, against
:func:`max_read_bytes`. A file over the limit is a :class:`~ssibench.data.fastmri.BadVolumeError`
naming the file, the array, its declared shape, the bytes and the limit, so extraction lists it
with the other bad files, or leaves it out with ``data.on_bad_file: skip``.

The limit is per read (one slice of a fastMRI volume for ``extract``; the slices a scenario keeps
of a volume for ``simulate``; a whole image file): :data:`DEFAULT_MAX_READ_MB`, 2 GB, about 75
slices of fastMRI brain k-space, unless the environment variable :data:`MAX_READ_ENV` says more.

The config's own sizes have maxima too, :func:`check_config_sizes` (the schema states the same
numbers, which a test checks): :data:`MAX_IMAGE_SIDE`, :data:`MAX_COILS`, :data:`MAX_FRAMES`,
:data:`MAX_BATCH_SIZE`; what they add up to is checked against ``resources`` by
:func:`ssibench.pipeline.memory.check_job_memory`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssibench.data.volume_errors import BadVolumeError
from ssibench.errors import CONFIG_HINT, ConfigError

__all__ = [
    "DEFAULT_MAX_READ_MB",
    "MAX_BATCH_SIZE",
    "MAX_COILS",
    "MAX_FRAMES",
    "MAX_IMAGE_SIDE",
    "MAX_READ_ENV",
    "check_config_sizes",
    "check_read_size",
    "max_read_bytes",
]

#: Megabytes (10⁶ B) one read of a raw file may allocate unless :data:`MAX_READ_ENV` says more:
#: about 75 slices of fastMRI brain k-space (16 coils × 640 × 320 complex64: 26 MB each).
DEFAULT_MAX_READ_MB = 2000
#: The environment variable that sets the read limit, in MB (for genuinely larger volumes).
MAX_READ_ENV = "SSIBENCH_MAX_READ_MB"

#: Largest image height or width (``data.image_size``, a scenario's ``crop``): fastMRI's largest
#: raw k-space is 640 × 372; 4096 leaves room for any MRI matrix.
MAX_IMAGE_SIDE = 4096
#: Most receiver coils a scenario simulates (``n_coils``): the largest clinical arrays have 64–128.
MAX_COILS = 128
#: Most frames of a sequential acquisition (``n_frames``): each frame needs lines of its own.
MAX_FRAMES = 64
#: Largest ``train.batch_size``: the paper's is 4; larger batches are bounded by memory anyway.
MAX_BATCH_SIZE = 1024


def max_read_bytes() -> int:
    """The most bytes one read of a raw file may allocate: ``$SSIBENCH_MAX_READ_MB`` × 10⁶.

    Raises:
        ConfigError: a value that is not a whole number ≥ 1.
    """
    value = os.environ.get(MAX_READ_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_READ_MB * 10**6
    megabytes = int(value) if value.isdigit() else 0
    if megabytes < 1:
        raise ConfigError(
            f"{MAX_READ_ENV}: got {value!r}; expected a whole number of MB ≥ 1, e.g. "
            f"export {MAX_READ_ENV}={DEFAULT_MAX_READ_MB}"
        )
    return megabytes * 10**6


def check_read_size(
    path: Path | str,
    what: str,
    declared: Sequence[int],
    dtype: np.dtype,
    read_shape: Sequence[int],
) -> None:
    """Refuse a read of ``read_shape`` elements of ``dtype`` that needs over :func:`max_read_bytes`.

    Args:
        path: the file, named in the error.
        what: the array, e.g. ``"dataset 'kspace'"``.
        declared: the array's declared shape.
        dtype: its dtype (its itemsize counts).
        read_shape: the shape of what this read returns, e.g. ``declared[1:]`` for one slice.

    Raises:
        BadVolumeError: ``<path>: <what> declares shape (...) <dtype>: reading (...) of it needs
            <n> GB, over the <limit> GB limit of one read (...: export SSIBENCH_MAX_READ_MB=<n>)``.
    """
    needed = math.prod(int(n) for n in read_shape) * np.dtype(dtype).itemsize
    limit = max_read_bytes()
    if needed > limit:
        raise BadVolumeError(
            path,
            f"{what} declares shape {tuple(int(n) for n in declared)} {np.dtype(dtype)}: reading "
            f"{tuple(int(n) for n in read_shape)} of it needs {needed / 1e9:.3g} GB, over the "
            f"{limit / 1e9:.3g} GB limit of one read (if the file is genuine, raise the limit: "
            f"export {MAX_READ_ENV}={math.ceil(needed / 10**6)})",
        )


def _config_sizes(config: Mapping[str, Any]) -> Iterator[tuple[str, Any, int]]:
    """(dotted key, value, maximum) of every size in a config (absent: an allowed value)."""
    data = config["data"]
    yield "data.image_size", data["image_size"], MAX_IMAGE_SIDE
    yield "data.demo.n_coils", data.get("demo", {}).get("n_coils", 1), MAX_COILS
    for name, spec in config["scenarios"].items():
        yield f"scenarios.{name}.crop", spec.get("crop", []), MAX_IMAGE_SIDE
        yield f"scenarios.{name}.n_coils", spec.get("n_coils", 1), MAX_COILS
        yield f"scenarios.{name}.n_frames", spec.get("n_frames", 2), MAX_FRAMES
    yield "train.batch_size", config["train"]["batch_size"], MAX_BATCH_SIZE
    for method, train in config.get("method_train", {}).items():
        yield f"method_train.{method}.batch_size", train.get("batch_size", 1), MAX_BATCH_SIZE


def check_config_sizes(config: Mapping[str, Any]) -> None:
    """Refuse a config size over its maximum, as the schema does (for callers that skip it).

    Raises:
        ConfigError: ``<key>: <value> is over the maximum of <n>; …`` for the first one.
    """
    for key, value, maximum in _config_sizes(config):
        if any(item > maximum for item in (value if isinstance(value, list) else [value])):
            raise ConfigError(f"{key}: {value} is over the maximum of {maximum}; {CONFIG_HINT}")
