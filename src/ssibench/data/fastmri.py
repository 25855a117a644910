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
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Literal, NamedTuple

import h5py
import numpy as np
import torch
from torch import Tensor

from ssibench.errors import DataFileError
from ssibench.fft import ifft2c

__all__ = [
    "RSS_FROM_KSPACE",
    "TARGET_KEYS",
    "FastMRISlice",
    "center_crop",
    "read_middle_slice",
    "recon_size_from_header",
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
        DataFileError: if the file is not HDF5, lacks ``kspace``, or its datasets have unexpected
            ranks, dtypes or slice counts; the message names the path and the fix.
    """
    path = Path(path)
    fix = "re-download or regenerate it, or remove it from the raw-data folder"
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataFileError(f"{path}: not a readable HDF5 file ({error}); {fix}") from error
    with handle:
        if "kspace" not in handle or not isinstance(handle["kspace"], h5py.Dataset):
            found = ", ".join(sorted(handle.keys())) or "nothing"
            raise DataFileError(
                f"{path}: no dataset 'kspace' (found: {found}); a fastMRI-format volume needs "
                f"kspace (slices, coils, rows, cols) or (slices, rows, cols); {fix}"
            )
        kspace = handle["kspace"]
        if kspace.ndim not in (3, 4) or kspace.shape[0] == 0:
            raise DataFileError(
                f"{path}: dataset 'kspace' has shape {kspace.shape}; expected "
                f"(slices, coils, rows, cols) or (slices, rows, cols), at least one slice; {fix}"
            )
        if not np.issubdtype(kspace.dtype, np.complexfloating):
            raise DataFileError(
                f"{path}: dataset 'kspace' has dtype {kspace.dtype}, not complex; {fix}"
            )
        kind: Literal["multicoil", "single-coil"] = (
            "multicoil" if kspace.ndim == 4 else "single-coil"
        )
        n_slices = kspace.shape[0]
        middle = n_slices // 2
        acquisition = _decode(handle.attrs.get("acquisition", "unknown"))

        for key in TARGET_KEYS[kind]:
            if key not in handle:
                continue
            target = handle[key]
            if target.ndim != 3 or target.shape[0] != n_slices:
                raise DataFileError(
                    f"{path}: dataset {key!r} has shape {target.shape}; expected "
                    f"({n_slices}, h, w) to match the {n_slices} slices of 'kspace'; {fix}"
                )
            image = torch.from_numpy(np.asarray(target[middle], dtype=np.float32))
            return FastMRISlice(image, middle, n_slices, kind, key, acquisition)

        recon_size = None
        if "ismrmrd_header" in handle:
            recon_size = recon_size_from_header(handle["ismrmrd_header"][()])
        image = rss_from_kspace(torch.from_numpy(kspace[middle]), recon_size)
        return FastMRISlice(image, middle, n_slices, kind, RSS_FROM_KSPACE, acquisition)
