"""The data sources ``data.source`` may name, and what each needs, makes and reads (no torch).

The workflow's rules, the run plan, the config checks and the resource sizing ask this table
instead of testing a source's name, as :mod:`ssibench.config.kinds` does for the physics kinds.
A source is one of the built-in ones below or a data set a plugin registered
(:func:`ssibench.register_dataset`), which all share :data:`PLUGIN_SOURCE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUILTIN_SOURCES",
    "EXTRACT_FORMATS",
    "PLUGIN_SOURCE",
    "SOURCE_KINDS",
    "SourceKind",
    "source_kind",
]

#: What ``ssibench extract --source`` reads: fastMRI-format ``.h5`` volumes, a folder of image
#: files, or a DeepInverse simple data set (one ``.pt`` tensor of N slices).
ExtractFormat = Literal["fastmri", "images", "simple"]
EXTRACT_FORMATS: tuple[ExtractFormat, ...] = ("fastmri", "images", "simple")


@dataclass(frozen=True)
class SourceKind:
    """One data source.

    Attributes:
        name: the ``data.source`` value (``"plugin"`` stands for any registered data set).
        description: one line for listings and error messages.
        extract_as: the ``ssibench extract --source`` format its raw data are read as.
        built_by: the rule writing the raw data into ``data/raw/<dataset>/`` (``"demo_data"``,
            ``"dataset"``), or None when the user's ``data.raw_dir`` holds them.
        raw_dir: what ``data.raw_dir`` must name (for messages); None when the raw data are built.
        kspace: the raw volumes hold fully sampled multicoil k-space, so the acquired-k-space
            scenarios (``raw-multicoil``) can read it.
    """

    name: str
    description: str
    extract_as: ExtractFormat
    built_by: Literal["demo_data", "dataset"] | None
    raw_dir: str | None
    kspace: bool

    @property
    def built(self) -> bool:
        """Whether a rule builds the raw data (else they are the user's, at ``data.raw_dir``)."""
        return self.built_by is not None


#: The sources ssibench reads itself, by name, in the order listings show them.
SOURCE_KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind(
            "demo",
            "fastMRI-format volumes built from the nilearn MNI template (no download)",
            "fastmri",
            "demo_data",
            None,
            kspace=True,
        ),
        SourceKind(
            "fastmri",
            "fastMRI .h5 volumes (the middle slice of each)",
            "fastmri",
            None,
            "a folder of fastMRI .h5 files",
            kspace=True,
        ),
        SourceKind(
            "images",
            "your own magnitude images, one file per volume",
            "images",
            None,
            "a folder of image files (.png, .npy, .nii, .nii.gz, .pt)",
            kspace=False,
        ),
        SourceKind(
            "simple",
            "a DeepInverse simple data set: one .pt tensor (N, H, W), N volumes of one slice",
            "simple",
            None,
            "the .pt file of the simple data set",
            kspace=False,
        ),
    )
}
#: The names of :data:`SOURCE_KINDS`.
BUILTIN_SOURCES = tuple(SOURCE_KINDS)
#: Every data set a plugin registers: built by the ``dataset`` rule as ``.npy`` images.
PLUGIN_SOURCE = SourceKind(
    "plugin",
    "a data set registered by a plugin (ssibench.register_dataset)",
    "images",
    "dataset",
    None,
    kspace=False,
)


def source_kind(name: str) -> SourceKind:
    """The built-in source ``name``, else :data:`PLUGIN_SOURCE` (the checks refuse unknown names).

    Example:
        >>> source_kind("demo").built_by, source_kind("my-plugin-set").extract_as
        ('demo_data', 'images')
    """
    return SOURCE_KINDS.get(name, PLUGIN_SOURCE)
