"""Data sources: the built-in ones, and data sets registered by plugins.

A plugin's data set (:func:`ssibench.register_dataset`) is a function ``build(**options)``
returning ``{volume name: (S, H, W) magnitude images}`` (NumPy arrays or tensors). The workflow's
``dataset`` rule writes each volume as ``<name>.npy`` into the raw folder
``data/raw/<dataset>/``; from there on it is read exactly like a folder of your own images
(``data.source: images``): same checks, normalisation, crop/pad and per-volume split.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ssibench.config.sources import BUILTIN_SOURCES
from ssibench.errors import ConfigError, DataFileError
from ssibench.io import atomic_path

__all__ = ["BUILTIN_SOURCES", "DATASETS", "VOLUME_NAME", "write_dataset"]
#: Data sets registered by plugins: name → ``build(**options) -> {volume: (S, H, W)}``.
DATASETS: dict[str, Callable[..., Mapping[str, Any]]] = {}
#: A volume name becomes a file name: letters, digits, ``.``, ``-`` and ``_``.
VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def write_dataset(name: str, options: Mapping[str, Any], out_dir: Path | str) -> list[Path]:
    """Build the registered data set ``name`` and write each volume as ``out_dir/<volume>.npy``.

    Args:
        name: a data set registered with :func:`ssibench.register_dataset`.
        options: keyword arguments of its ``build`` (``data.options``).
        out_dir: the raw folder (created).

    Returns:
        The files written, sorted by volume name.

    Raises:
        ConfigError: an unknown data set, or a ``build`` that does not take ``options``.
        DataFileError: ``build`` returned no volumes, a bad volume name or a value that is not a
            2-D/3-D real array; every bad volume is listed.
    """
    if name not in DATASETS:
        valid = ", ".join(DATASETS) or "none registered"
        raise ConfigError(
            f"data.source: unknown data set {name!r}; plugin data sets: {valid} (register one "
            "with ssibench.register_dataset, and list its module under plugins:)"
        )
    build = DATASETS[name]
    try:  # the options against the signature, so a TypeError inside build keeps its traceback
        inspect.signature(build).bind(**options)
    except TypeError as error:
        raise ConfigError(
            f"data.options: data set {name!r} does not take {dict(options)}: {error}"
        ) from None
    volumes = build(**options)
    if not isinstance(volumes, Mapping) or not volumes:
        raise DataFileError(
            f"data set {name!r}: build() must return a non-empty mapping volume name → (S, H, W) "
            f"images; got {type(volumes).__name__}"
        )
    arrays, bad = {}, []
    for volume, value in volumes.items():
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if not isinstance(volume, str) or not VOLUME_NAME.match(volume):
            bad.append(f"{volume!r}: not a usable file name (letters, digits, '.', '-', '_')")
        elif array.ndim not in (2, 3) or not np.isrealobj(array):
            bad.append(
                f"{volume!r}: expected a real (H, W) or (S, H, W) array, got "
                f"{array.dtype} {array.shape}"
            )
        else:
            arrays[volume] = array.astype(np.float32)
    if bad:
        raise DataFileError(f"data set {name!r}: bad volume(s):\n  " + "\n  ".join(bad))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for volume in sorted(arrays):
        path = folder / f"{volume}.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, arrays[volume])
        written.append(path)
    return written
