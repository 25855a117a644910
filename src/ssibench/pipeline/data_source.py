"""The checks of ``data``: the source's raw data, and how many volumes it holds.

What a source needs and makes is its row of :data:`ssibench.config.sources.SOURCE_KINDS`; the
checks here follow that row (the format its raw data are read as, whether a rule builds them),
never the source's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ssibench.config.sources import BUILTIN_SOURCES, source_kind
from ssibench.data.images import IMAGE_SUFFIXES, image_files, raw_files
from ssibench.data.sources import DATASETS
from ssibench.errors import CONFIG_HINT, ConfigError, DataFileError, closest_hint

__all__ = ["PLUGIN_VOLUMES_UNKNOWN", "check_data_source", "n_volumes", "volumes_known"]

#: Volume count of a plugin data set not built yet. Only a dry run shows resources sized for it:
#: Snakemake evaluates the resource functions when it schedules a job, after the data set is built.
PLUGIN_VOLUMES_UNKNOWN = 100

Config = Mapping[str, Any]


def _built_raw_dir(data: Config) -> Path:
    """The folder a rule builds the raw data in (``data/raw/<name>-<H>x<W>``)."""
    return Path("data/raw") / f"{data['name']}-{data['image_size'][0]}x{data['image_size'][1]}"


def _required_raw_dir(data: Config) -> str:
    """``data.raw_dir``, refused when unset (the source reads the user's raw data)."""
    kind = source_kind(data["source"])
    if data["raw_dir"] is None:
        raise ConfigError(
            f"data.raw_dir: required when data.source is {kind.name!r}; set it to "
            f"{kind.raw_dir}, e.g. --config data='{{source: {kind.name}, raw_dir: /data/mine}}'"
        )
    return str(data["raw_dir"])


def _check_h5_folder(raw_dir: str) -> None:
    if not Path(raw_dir).is_dir():
        raise ConfigError(f"data.raw_dir: {raw_dir!r} is not a folder; {CONFIG_HINT}")
    if not any(Path(raw_dir).glob("*.h5")):
        raise ConfigError(
            f"data.raw_dir: {raw_dir!r} holds no .h5 files; point it to the fastMRI volumes"
        )


def _check_image_folder(raw_dir: str) -> None:
    if not Path(raw_dir).is_dir():
        raise ConfigError(f"data.raw_dir: {raw_dir!r} is not a folder; {CONFIG_HINT}")
    if not image_files(raw_dir):
        others = sorted({path.suffix or path.name for path in raw_files(raw_dir)})
        found = f" (found: {', '.join(others)})" if others else ""
        raise ConfigError(
            f"data.raw_dir: {raw_dir!r} holds no image files{found}; data.source 'images' reads "
            f"{', '.join(IMAGE_SUFFIXES)} files; point data.raw_dir at them"
        )


def _count_simple(raw_dir: str) -> int:
    from ssibench.interop.simple_dataset import count_simple_dataset

    try:
        return count_simple_dataset(raw_dir)
    except DataFileError as error:
        raise ConfigError(f"data.raw_dir: {error}") from None


#: Per extract format: the check of ``data.raw_dir``, and the count of its volumes.
_RAW_DATA: dict[str, tuple[Callable[[str], object], Callable[[str], int]]] = {
    "fastmri": (_check_h5_folder, lambda raw_dir: len(list(Path(raw_dir).glob("*.h5")))),
    "images": (_check_image_folder, lambda raw_dir: len(image_files(raw_dir))),
    "simple": (_count_simple, _count_simple),  # the count reads the header: a check of it
}


def check_data_source(data: Config) -> None:
    """A known source, and the raw data it reads from ``data.raw_dir`` where it needs them.

    Raises:
        ConfigError: an unknown source (the closest name suggested), or ``data.raw_dir`` unset,
            missing, or not holding what the source reads.
    """
    if data["source"] not in BUILTIN_SOURCES and data["source"] not in DATASETS:
        valid = [*BUILTIN_SOURCES, *DATASETS]
        raise ConfigError(
            f"data.source: unknown source {data['source']!r}{closest_hint(data['source'], valid)}; "
            f"valid: {', '.join(valid)} (a plugin registers more with ssibench.register_dataset; "
            f"list its module under plugins:); {CONFIG_HINT}"
        )
    kind = source_kind(data["source"])
    if not kind.built:
        check, _ = _RAW_DATA[kind.extract_as]
        check(_required_raw_dir(data))


def volumes_known(data: Config) -> bool:
    """Whether :func:`n_volumes` counts real volumes (a plugin's data set may not be built yet)."""
    return source_kind(data["source"]).built_by != "dataset" or _built_raw_dir(data).is_dir()


def n_volumes(data: Config) -> int:
    """Raw volumes extracted: ``data.demo.n_volumes``, a built data set's files, or the user's.

    The user's are the ``.h5`` files of a fastMRI folder, the image files of an image folder
    (one volume each, :func:`ssibench.data.images.image_files`), or the N slices of a simple
    data set.
    """
    kind = source_kind(data["source"])
    if kind.built_by == "demo_data":
        return int(data["demo"]["n_volumes"])
    if kind.built_by == "dataset":  # a plugin's data set, once built
        built = _built_raw_dir(data)
        return len(list(built.glob("*.npy"))) if built.is_dir() else PLUGIN_VOLUMES_UNKNOWN
    _, count = _RAW_DATA[kind.extract_as]
    return count(str(data["raw_dir"]))
