"""Read the middle slice of a fastMRI-format volume and its magnitude target.

A fastMRI file (Zbontar et al., "fastMRI: An open dataset and benchmarks for accelerated MRI",
arXiv:1811.08839) holds ``kspace`` complex64 ``(slices, coils, rows, cols)`` (multicoil) or
``(slices, rows, cols)`` (single-coil), rows being the readout direction (often oversampled ×2),
and a magnitude target cropped to the reconstruction size: ``reconstruction_rss``
(root-sum-of-squares over coils) or, for single-coil knee data, ``reconstruction_esc`` (emulated
single coil). The header ``ismrmrd_header`` is ISMRMRD XML whose ``encoding/reconSpace/matrixSize``
gives that crop size.

Only the middle slice ⌊slices/2⌋ is read (h5py reads just that row from disk), as SSIBench does
(DeepInverse's ``FastMRISliceDataset(slice_index="middle")``).

Every extraction (fastMRI volumes or image files) shares the bad-raw-file policy kept here:
:class:`BadVolumeError`, :data:`ON_BAD_FILE` and :func:`report_bad_volumes`. Every dataset is
sized before it is read (:func:`ssibench.data.limits.check_read_size`).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import h5py
import numpy as np
import torch
from torch import Tensor

from ssibench.data.limits import check_read_size
from ssibench.data.volume_errors import BAD_VOLUME_FIX, BadVolumeError
from ssibench.errors import ConfigError, DataFileError
from ssibench.fft import ifft2c

__all__ = [
    "BAD_VOLUME_FIX",
    "ON_BAD_FILE",
    "RSS_FROM_KSPACE",
    "TARGET_KEYS",
    "BadVolumeError",
    "FastMRISlice",
    "center_crop",
    "check_on_bad_file",
    "encoded_columns_from_header",
    "read_middle_slice",
    "recon_size_from_header",
    "report_bad_volumes",
    "rss_from_kspace",
]

#: Target datasets tried in order, by acquisition kind: a single-coil file's natural target is the
#: emulated single-coil image, a multicoil file's the RSS (fastMRI's conventions).
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "multicoil": ("reconstruction_rss", "reconstruction_esc"),
    "single-coil": ("reconstruction_esc", "reconstruction_rss"),
}

#: Value of :attr:`FastMRISlice.target_key` when no target dataset exists and the RSS of ``kspace``
#: is used instead.
RSS_FROM_KSPACE = "rss-from-kspace"


#: What extraction does with a malformed raw file (``data.on_bad_file``): ``stop`` raises one
#: error listing every bad file (:func:`report_bad_volumes`), ``skip`` leaves them out and records
#: them.
ON_BAD_FILE: tuple[Literal["stop", "skip"], ...] = ("stop", "skip")


class FastMRISlice(NamedTuple):
    """The middle slice of one fastMRI-format volume."""

    image: Tensor
    """Magnitude target ``(h, w)`` float32, as stored (not normalised)."""
    slice_index: int
    """Index ⌊slices/2⌋ of the slice in the volume."""
    n_slices: int
    """Number of slices in the volume."""
    kind: Literal["multicoil", "single-coil"]
    """Acquisition kind, from the rank of ``kspace``."""
    target_key: str
    """Dataset the target came from, or ``"rss-from-kspace"``."""
    acquisition: str
    """The file's ``acquisition`` attribute (e.g. ``AXT1``), ``"unknown"`` when absent."""


def check_on_bad_file(on_bad_file: str) -> None:
    """Raise ``ConfigError`` unless ``on_bad_file`` is one of :data:`ON_BAD_FILE`."""
    if on_bad_file not in ON_BAD_FILE:
        raise ConfigError(
            f"data.on_bad_file (--on-bad-file): got {on_bad_file!r}; expected one of "
            f"{', '.join(ON_BAD_FILE)}"
        )


def report_bad_volumes(
    folder: Path,
    bad: Sequence[tuple[Path, str]],
    n_files: int,
    on_bad_file: str,
    *,
    what: str = "*.h5 files are unreadable or malformed",
    repair: str = "repair or re-download them",
    wanted: str = "a folder of fastMRI-format volumes",
) -> None:
    """Raise one error listing every bad raw file, or, when they are skipped, warn about each.

    With ``on_bad_file="stop"`` any bad file raises; with ``"skip"`` only all files being bad
    does, and otherwise each bad file gets a ``skipping`` line on stderr. The error is a summary
    line with the fix, then one ``  <path>: <reason>`` line per bad file. The defaults word it
    for fastMRI volumes.

    Args:
        folder: the raw-data folder.
        bad: (path, reason) of every bad file.
        n_files: number of files read from the folder.
        on_bad_file: ``"stop"`` or ``"skip"``.
        what: the files and their fault, completing "<n> of <N> …".
        repair: how to fix them, completing "…; <repair> or remove them from the folder".
        wanted: what ``data.raw_dir`` should point at when every file is bad.

    Raises:
        DataFileError: as above.
    """
    if bad and (on_bad_file == "stop" or len(bad) == n_files):
        if len(bad) == n_files and on_bad_file == "skip":
            head = (
                f"{folder}: all {n_files} {what}, so nothing is left to extract "
                f"(data.on_bad_file: skip); {repair}, or point data.raw_dir at {wanted}:"
            )
        else:
            head = (
                f"{folder}: {len(bad)} of {n_files} {what}; {repair} or remove them from the "
                "folder, or set data.on_bad_file: skip in the config (ssibench extract "
                "--on-bad-file skip) to leave them out:"
            )
        raise DataFileError("\n".join([head, *(f"  {file}: {reason}" for file, reason in bad)]))
    for file, reason in bad:
        print(f"ssibench extract: skipping {file}: {reason}", file=sys.stderr)


def center_crop(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the last two axes to ``size`` around the centre, fastMRI's convention.

    The crop starts at ((H − h) // 2, (W − w) // 2); a requested size larger than the image along an
    axis keeps that axis whole (as fastMRI does for narrow-FOV volumes).

    Args:
        image: ``(..., H, W)``.
        size: (h, w).

    Returns:
        ``(..., min(h, H), min(w, W))``, a view of ``image``.
    """
    height, width = image.shape[-2:]
    h, w = min(size[0], height), min(size[1], width)
    top, left = (height - h) // 2, (width - w) // 2
    return image[..., top : top + h, left : left + w]


def recon_size_from_header(header: bytes | str) -> tuple[int, int] | None:
    """Read ``encoding/reconSpace/matrixSize/{x, y}`` (rows, cols) from an ISMRMRD XML header.

    Returns:
        (x, y) as (rows, cols) of the reconstructed image, or ``None`` when the header is not XML,
        lacks the element, or holds a non-positive size.
    """
    try:
        root = ElementTree.fromstring(header)
    except (ElementTree.ParseError, TypeError, ValueError):
        return None
    matrix = root.find(".//{*}encoding/{*}reconSpace/{*}matrixSize")
    if matrix is None:
        return None
    try:
        rows = int(matrix.findtext("{*}x", default=""))
        cols = int(matrix.findtext("{*}y", default=""))
    except ValueError:
        return None
    return (rows, cols) if rows > 0 and cols > 0 else None


def encoded_columns_from_header(header: bytes | str, cols: int) -> tuple[int, int] | None:
    """The phase-encode columns [start, stop) that were acquired, from an ISMRMRD XML header.

    fastMRI knee k-space is zero-padded along the phase encoding; as fastMRI's ``SliceDataset``,
    with encodedSpace matrixSize y = ``cols`` and encodingLimits kspace_encoding_step_1 centre c
    and maximum m, start = cols//2 − c and stop = start + m + 1.

    Returns:
        (start, stop), or ``None`` when the header is not XML, lacks an element, or describes
        another width or a window outside it.
    """
    try:
        root = ElementTree.fromstring(header)
        width = int(root.findtext(".//{*}encodedSpace/{*}matrixSize/{*}y", default=""))
        limits = root.find(".//{*}encodingLimits/{*}kspace_encoding_step_1")
        if limits is None:
            return None
        centre = int(limits.findtext("{*}center", default=""))
        maximum = int(limits.findtext("{*}maximum", default=""))
    except (ElementTree.ParseError, TypeError, ValueError):
        return None
    start = width // 2 - centre
    stop = start + maximum + 1
    return (start, stop) if width == cols and 0 <= start < stop <= cols else None


def rss_from_kspace(kspace: Tensor, recon_size: tuple[int, int] | None) -> Tensor:
    """Root-sum-of-squares magnitude of fully sampled k-space, centre-cropped.

    I = √(Σₙ |F⁻¹ kₙ|²) with F⁻¹ the centred orthonormal inverse DFT, then :func:`center_crop` to
    ``recon_size``; without a recon size the crop is the square (m, m), m = min(rows, cols), which
    for the usual ×2 readout oversampling (rows = 2·cols) removes exactly the oversampled part.

    Args:
        kspace: complex ``(coils, rows, cols)``, or ``(rows, cols)`` for single-coil data.
        recon_size: (h, w) crop, or ``None``.

    Returns:
        ``(h, w)`` float32.
    """
    coil_images = ifft2c(kspace.to(torch.complex64))
    if coil_images.ndim == 2:
        coil_images = coil_images[None]
    image = coil_images.abs().square().sum(dim=0).sqrt()
    if recon_size is None:
        side = min(image.shape)
        recon_size = (side, side)
    return center_crop(image, recon_size).contiguous()


def _decode(value: object) -> str:
    """An HDF5 attribute or scalar as ``str`` (h5py returns ``bytes`` for some string types)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _decode(value.item())
    return str(value)


def read_middle_slice(path: Path | str) -> FastMRISlice:
    """Read the middle slice ⌊slices/2⌋ of a fastMRI-format file and its magnitude target.

    The target is the first of :data:`TARGET_KEYS` ``[kind]`` present in the file; when none is,
    it is computed from ``kspace`` by :func:`rss_from_kspace`, cropped to the header's reconSpace
    matrix size if the header gives one.

    Args:
        path: an HDF5 file with at least a ``kspace`` dataset.

    Returns:
        The slice's target image and provenance.

    Raises:
        BadVolumeError: (a :class:`~ssibench.errors.DataFileError`) for every way the file can be
            bad: not HDF5 or truncated, unreadable (damaged) data, no ``kspace``, a target that is
            not a dataset, unexpected ranks, dtypes, empty axes or slice counts, or a non-finite
            image; the message names the path, the reason and the fix.
    """
    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise BadVolumeError(path, f"not a readable HDF5 file ({error})") from error
    try:
        with handle:
            return _read_open_volume(handle, path)
    except DataFileError:
        raise
    except MemoryError as error:  # the last resort: a size the checks before each read missed
        raise BadVolumeError(
            path, f"reading it ran out of memory (MemoryError: {error}); check its dataset shapes"
        ) from error
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as error:
        # h5py reports damaged chunks, broken links and unreadable attributes with these types
        raise BadVolumeError(
            path, f"its contents cannot be read ({type(error).__name__}: {error})"
        ) from error


def _read_open_volume(handle: h5py.File, path: Path) -> FastMRISlice:
    """The body of :func:`read_middle_slice` on an open file; raises :class:`BadVolumeError`."""
    if "kspace" not in handle or not isinstance(handle["kspace"], h5py.Dataset):
        found = ", ".join(sorted(handle.keys())) or "nothing"
        raise BadVolumeError(
            path,
            f"no dataset 'kspace' (found: {found}); a fastMRI-format volume needs "
            "kspace (slices, coils, rows, cols) or (slices, rows, cols)",
        )
    kspace = handle["kspace"]
    if kspace.ndim not in (3, 4) or 0 in kspace.shape:
        raise BadVolumeError(
            path,
            f"dataset 'kspace' has shape {kspace.shape}; expected (slices, coils, rows, cols) "
            "or (slices, rows, cols), with no empty axis",
        )
    if not np.issubdtype(kspace.dtype, np.complexfloating):
        raise BadVolumeError(path, f"dataset 'kspace' has dtype {kspace.dtype}, not complex")
    kind: Literal["multicoil", "single-coil"] = "multicoil" if kspace.ndim == 4 else "single-coil"
    n_slices = kspace.shape[0]
    middle = n_slices // 2
    acquisition = _decode(handle.attrs.get("acquisition", "unknown"))

    for key in TARGET_KEYS[kind]:
        if key not in handle:
            continue
        target = handle[key]
        if not isinstance(target, h5py.Dataset):
            raise BadVolumeError(path, f"{key!r} is a {type(target).__name__}, not a dataset")
        if target.ndim != 3 or target.shape[0] != n_slices or 0 in target.shape:
            raise BadVolumeError(
                path,
                f"dataset {key!r} has shape {target.shape}; expected ({n_slices}, h, w) with "
                f"h, w ≥ 1 to match the {n_slices} slices of 'kspace'",
            )
        if not _is_real_number(target.dtype):
            raise BadVolumeError(
                path, f"dataset {key!r} has dtype {target.dtype}; expected a real number type"
            )
        check_read_size(path, f"dataset {key!r}", target.shape, target.dtype, target.shape[1:])
        image = torch.from_numpy(np.asarray(target[middle], dtype=np.float32))
        _check_finite(image, path, f"dataset {key!r}, slice {middle}")
        return FastMRISlice(image, middle, n_slices, kind, key, acquisition)

    recon_size = None
    header = handle.get("ismrmrd_header")
    if isinstance(header, h5py.Dataset):
        check_read_size(path, "dataset 'ismrmrd_header'", header.shape, header.dtype, header.shape)
        recon_size = recon_size_from_header(header[()])
    check_read_size(path, "dataset 'kspace'", kspace.shape, kspace.dtype, kspace.shape[1:])
    image = rss_from_kspace(torch.from_numpy(kspace[middle]), recon_size)
    _check_finite(image, path, f"the RSS of dataset 'kspace', slice {middle}")
    return FastMRISlice(image, middle, n_slices, kind, RSS_FROM_KSPACE, acquisition)


def _is_real_number(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a real integer or float (not bool, complex, string or compound)."""
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def _check_finite(image: Tensor, path: Path, what: str) -> None:
    """Raise :class:`BadVolumeError` if ``image`` holds NaN or ±inf (min–max would spread it)."""
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise BadVolumeError(path, f"{what} has {bad} non-finite values (NaN or ±inf)")
