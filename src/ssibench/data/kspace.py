"""Acquired multicoil k-space: read slices of a raw volume, crop, scale, and estimate its noise.

The preprocessing of the acquired-k-space scenarios (:mod:`ssibench.simulate.acquired`), as pure
functions of complex tensors ``(..., N, rows, cols)`` (coils N, readout rows, phase-encode
columns; centred, orthonormal FFT):

1. :func:`read_kspace_slices`: the chosen slices of a fastMRI-format multicoil volume;
2. :func:`crop_kspace`: the image-domain centre crop to ``(H, W)``, which removes the readout
   oversampling (fastMRI brain: 640 rows → 384 or 320) — k-space of the cropped coil images;
3. :func:`acs_scale`: the scale s = 99th percentile of the root-sum-of-squares image of the
   calibration (ACS) columns alone; dividing k-space by s puts every slice on the same footing
   whatever the receiver gain, so learning rates transfer between data sets (the normalisation
   DeepInverse's ``MRISliceTransform`` offers);
4. :func:`estimate_noise_sigma`: the thermal-noise level per real/imaginary component, from the
   readout-oversampled margin of the raw data (air beyond the field of view), or from the corners
   of k-space when there is no margin.

K-space undersampled at acquisition (fastMRI's test and challenge sets: unsampled columns are
zero, the file's ``mask`` dataset marks the sampled ones) gives its own sampling pattern:
:func:`acquired_columns` and its fully sampled centre, :func:`centre_acs_lines`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch
from torch import Tensor

from ssibench.data.fastmri import BadVolumeError, center_crop, encoded_columns_from_header
from ssibench.data.limits import check_read_size
from ssibench.fft import fft2c, ifft2c
from ssibench.masks.acquisition import center_block

__all__ = [
    "ACS_PERCENTILE",
    "MIN_MARGIN_ROWS",
    "NOISE_REGION",
    "VolumeInfo",
    "acquired_columns",
    "acs_scale",
    "centre_acs_lines",
    "crop_kspace",
    "estimate_noise_sigma",
    "noise_margin_rows",
    "noise_region",
    "read_kspace_slices",
    "read_volume_info",
    "slices_around_middle",
    "write_undersampled_volumes",
]

#: Percentile of the ACS image's magnitude that k-space is divided by (robust to bright outliers).
ACS_PERCENTILE = 99.0
#: Outer k-space used by the fallback noise estimate: rows with |r − H/2| > (row fraction) · H/2
#: and columns with |c − W/2| > (column fraction) · W/2, i.e. the corners of k-space.
NOISE_REGION = (0.75, 0.5)


class VolumeInfo(NamedTuple):
    """What a raw multicoil volume is, from its ``kspace`` shape and attributes (no data read)."""

    n_slices: int
    n_coils: int
    shape: tuple[int, int]
    """(rows, cols) of its k-space."""
    acquisition: str
    """The ``acquisition`` attribute (e.g. ``AXT2``), ``"unknown"`` when absent."""


def _open_kspace(handle: h5py.File, path: Path) -> h5py.Dataset:
    kspace = handle.get("kspace")
    if not isinstance(kspace, h5py.Dataset):
        raise BadVolumeError(path, "no dataset 'kspace'")
    if kspace.ndim != 4 or 0 in kspace.shape:
        raise BadVolumeError(
            path,
            f"dataset 'kspace' has shape {kspace.shape}; acquired multicoil scenarios need "
            "(slices, coils, rows, cols)",
        )
    if not np.issubdtype(kspace.dtype, np.complexfloating):
        raise BadVolumeError(path, f"dataset 'kspace' has dtype {kspace.dtype}, not complex")
    return kspace


def read_volume_info(path: Path | str) -> VolumeInfo:
    """The slice count, coil count, k-space size and ``acquisition`` attribute of a volume.

    Raises:
        BadVolumeError: not HDF5, no 4-D complex ``kspace``.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            kspace = _open_kspace(handle, path)
            acquisition = handle.attrs.get("acquisition", "unknown")
            if isinstance(acquisition, bytes):
                acquisition = acquisition.decode("utf-8", errors="replace")
            slices, coils, rows, cols = kspace.shape
            return VolumeInfo(slices, coils, (rows, cols), str(acquisition))
    except OSError as error:
        raise BadVolumeError(path, f"not a readable HDF5 file ({error})") from error


def slices_around_middle(n_slices: int, count: int) -> list[int]:
    """``count`` consecutive slice indices centred on the middle slice ⌊n_slices/2⌋.

    For an odd count, middle − count//2 … middle + count//2 (DeepInverse's ``"middle+i"``); an even
    count takes one more below. Clipped to the volume: a volume with fewer slices gives them all.

    >>> slices_around_middle(30, 3), slices_around_middle(5, 1), slices_around_middle(2, 3)
    ([14, 15, 16], [2], [0, 1])
    """
    count = min(count, n_slices)
    start = min(max(n_slices // 2 - count // 2, 0), n_slices - count)
    return list(range(start, start + count))


def read_kspace_slices(path: Path | str, slices: Sequence[int]) -> Tensor:
    """Read slices of a multicoil volume's ``kspace``: ``(S, N, rows, cols)`` complex64.

    Raises:
        BadVolumeError: an unreadable file, no 4-D complex ``kspace``, a slice out of range, a
            read larger than :func:`~ssibench.data.limits.max_read_bytes`, or non-finite values.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            kspace = _open_kspace(handle, path)
            if any(not 0 <= s < kspace.shape[0] for s in slices):
                raise BadVolumeError(
                    path, f"slices {list(slices)} out of range for {kspace.shape[0]} slices"
                )
            read_shape = (len(slices), *kspace.shape[1:])
            check_read_size(path, "dataset 'kspace'", kspace.shape, kspace.dtype, read_shape)
            data = np.empty(read_shape, np.complex64)  # one copy, however many slices
            for row, s in enumerate(slices):
                data[row] = kspace[s]
    except (OSError, MemoryError) as error:  # MemoryError: within the limit, over the machine
        raise BadVolumeError(
            path, f"its k-space cannot be read ({type(error).__name__}: {error})"
        ) from error
    if not np.isfinite(data).all():
        raise BadVolumeError(path, f"dataset 'kspace' has non-finite values in slices {slices}")
    return torch.from_numpy(data)


def crop_kspace(kspace: Tensor, size: tuple[int, int]) -> Tensor:
    """k-space of the coil images centre-cropped to ``size``: F(crop(F⁻¹ k)).

    Removes the readout oversampling (rows) and any extra phase-encode field of view (columns).
    The orthonormal FFT keeps white noise white with the same standard deviation.

    Args:
        kspace: ``(..., rows, cols)`` complex.
        size: (H, W) ≤ (rows, cols).

    Raises:
        ValueError: if the volume is smaller than ``size`` along an axis.
    """
    rows, cols = kspace.shape[-2:]
    if size[0] > rows or size[1] > cols:
        raise ValueError(
            f"k-space of {rows} × {cols} is smaller than the crop {size[0]} × {size[1]}"
        )
    if (rows, cols) == tuple(size):
        return kspace
    return fft2c(center_crop(ifft2c(kspace), size).contiguous())


def acs_scale(kspace: Tensor, acs_columns: slice) -> Tensor:
    """The scale s: the 99th percentile of the ACS image √(Σₙ |F⁻¹(k_ACS)ₙ|²).

    k_ACS is k on the ACS columns and 0 elsewhere: a low-resolution image every acquisition has.

    Args:
        kspace: ``(B, N, H, W)`` complex.
        acs_columns: the fully sampled centre columns.

    Returns:
        ``(B,)`` real, > 0 (1 for a slice whose ACS image is zero).
    """
    acs = torch.zeros_like(kspace)
    acs[..., acs_columns] = kspace[..., acs_columns]
    image = ifft2c(acs).abs().square().sum(dim=1).sqrt().flatten(1)
    scale = torch.quantile(image.double(), ACS_PERCENTILE / 100.0, dim=1).to(image.dtype)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _rayleigh_sigma(values: Tensor) -> Tensor:
    """σ of complex Gaussian noise (per component) from samples of it: median |v| / √(2 ln 2).

    |v| is Rayleigh with scale σ, whose median is σ √(2 ln 2); the median, unlike the mean square,
    is hardly moved by a little signal among the samples.
    """
    return values.abs().flatten().median() / math.sqrt(2 * math.log(2))


def noise_margin_rows(rows: int, crop_rows: int) -> Tensor:
    """``(rows,)`` bool: the image rows outside the centred crop (the readout oversampling)."""
    top = (rows - crop_rows) // 2
    outside = torch.ones(rows, dtype=torch.bool)
    outside[top : top + crop_rows] = False
    return outside


def noise_region(height: int, width: int) -> Tensor:
    """``(H, W)`` bool: the corners of k-space of :data:`NOISE_REGION`."""
    row_fraction, col_fraction = NOISE_REGION
    rows = (torch.arange(height) - height // 2).abs() > row_fraction * height / 2
    cols = (torch.arange(width) - width // 2).abs() > col_fraction * width / 2
    return rows[:, None] & cols[None, :]


#: Fewest margin rows (beyond the crop) the margin estimate needs; with fewer, the corners are used.
MIN_MARGIN_ROWS = 4


def estimate_noise_sigma(raw_kspace: Tensor, crop_rows: int) -> tuple[Tensor, str]:
    """σ̂ per slice: thermal-noise std per real/imaginary component of raw k-space.

    With readout oversampling (rows ≥ crop_rows + :data:`MIN_MARGIN_ROWS`) the image rows beyond the
    field of view that the crop keeps hold air: in hybrid space (1-D F⁻¹ along the readout, which
    keeps white noise white with the same σ) those rows of every column and coil are noise, and
    σ̂ = :func:`_rayleigh_sigma` of them. Without a margin, the corners of k-space
    (:func:`noise_region`), where the signal has decayed, are used instead; on small images signal
    remains there and σ̂ comes out too high (×3 at 40 × 40 on the demo), so the margin is
    preferred. Coils are pooled: one σ per slice (no prewhitening).

    Args:
        raw_kspace: ``(S, N, rows, cols)`` complex, fully sampled, before the crop.
        crop_rows: rows H the image crop keeps.

    Returns:
        ``(S,)`` σ̂ and the region used: ``"readout margin"`` or ``"k-space corners"``.
    """
    rows, cols = raw_kspace.shape[-2:]
    if rows - crop_rows >= MIN_MARGIN_ROWS:
        hybrid = torch.fft.ifftshift(raw_kspace, dim=-2)
        hybrid = torch.fft.fftshift(torch.fft.ifft(hybrid, dim=-2, norm="ortho"), dim=-2)
        margin = noise_margin_rows(rows, crop_rows).to(raw_kspace.device)
        return torch.stack([_rayleigh_sigma(h[:, margin]) for h in hybrid]), "readout margin"
    corners = noise_region(rows, cols).to(raw_kspace.device)
    return torch.stack([_rayleigh_sigma(k[:, corners]) for k in raw_kspace]), "k-space corners"


def acquired_columns(path: Path | str, kspace: Tensor) -> Tensor:
    """The phase-encode columns a volume undersampled at acquisition has: ``(cols,)`` bool.

    Without a ``mask`` dataset: the columns of ``kspace`` ``(S, N, rows, cols)`` (the slices read)
    with a non-zero sample in some slice and coil. With one (fastMRI's test-set layout: ``cols``
    entries of 0/1, bool or numeric), the mask's sampled columns, checked against the data both
    ways: a column it marks sampled that is zero in every slice and coil read is refused (a store
    would call the missing data measured zeros), and so is data in a column it marks unsampled.
    Columns outside the lines the ISMRMRD header says were encoded (fastMRI knee k-space is
    zero-padded along the phase encoding: :func:`~ssibench.data.fastmri.
    encoded_columns_from_header`) count as not sampled, as fastMRI's ``VarNetDataTransform``
    treats them.

    Raises:
        BadVolumeError: a ``mask`` that is not a dataset, not numeric (text, compound), of the
            wrong size, with values other than 0 and 1, or that contradicts the data.
    """
    path = Path(path)
    cols = kspace.shape[-1]
    has_data = (kspace != 0).flatten(0, -2).any(dim=0)
    try:
        with h5py.File(path, "r") as handle:
            stored = _read_mask(handle, path, cols)
            encoded = _encoded_columns(handle, path, cols)
    except OSError as error:
        raise BadVolumeError(path, f"its mask cannot be read ({error})") from error
    if stored is None:
        return has_data
    columns = torch.from_numpy(stored) & encoded
    stray = (has_data & ~columns).nonzero().flatten().tolist()
    if stray:
        raise BadVolumeError(
            path, f"k-space columns {stray[:8]} hold data that its mask marks as not sampled"
        )
    empty = (columns & ~has_data).nonzero().flatten().tolist()
    if empty:
        raise BadVolumeError(
            path,
            f"its mask marks k-space columns {empty[:8]} as sampled, but they are zero in every "
            "slice and coil read (missing data would pass for measured zeros)",
        )
    return columns


def _read_mask(handle: h5py.File, path: Path, cols: int) -> np.ndarray | None:
    """The file's ``mask`` as ``(cols,)`` bool, checked before and after it is read; or None."""
    if "mask" not in handle:
        return None
    mask = handle["mask"]
    if not isinstance(mask, h5py.Dataset):
        raise BadVolumeError(
            path,
            f"'mask' is an HDF5 {type(mask).__name__}, not a dataset; the sampled columns are a "
            f"dataset of {cols} zeros and ones (fastMRI's test-set layout)",
        )
    if mask.dtype != np.bool_ and mask.dtype.kind not in "iuf":  # text, compound, complex, ...
        raise BadVolumeError(
            path,
            f"dataset 'mask' has dtype {mask.dtype}; the sampled columns are {cols} zeros and "
            "ones (bool, integer or float)",
        )
    if mask.size != cols:  # checked before the read: the shape is declared, not stored
        raise BadVolumeError(
            path,
            f"its mask has {mask.size} entries (shape {mask.shape}), its k-space {cols} columns",
        )
    values = np.asarray(mask[()]).reshape(-1)
    if not np.isin(values, (0, 1)).all():
        odd = np.unique(values[~np.isin(values, (0, 1))])[:4].tolist()
        raise BadVolumeError(path, f"its mask holds {odd}; a column is sampled (1) or not (0)")
    return values != 0


def _encoded_columns(handle: h5py.File, path: Path, cols: int) -> Tensor:
    """``(cols,)`` bool: the columns the header's encoding limits cover; all without them."""
    encoded = torch.ones(cols, dtype=torch.bool)
    header = handle.get("ismrmrd_header")
    if isinstance(header, h5py.Dataset):
        check_read_size(path, "dataset 'ismrmrd_header'", header.shape, header.dtype, header.shape)
        start, stop = encoded_columns_from_header(header[()], cols) or (0, cols)
        encoded[:start] = encoded[stop:] = False
    return encoded


def centre_acs_lines(columns: Tensor) -> int:
    """The width n of the widest fully sampled centre block ``center_block(cols, n)``.

    >>> centre_acs_lines(torch.tensor([1, 0, 1, 1, 1, 1, 0, 1], dtype=torch.bool))
    4
    """
    width = columns.shape[0]
    n = 0
    while n < width and bool(columns[center_block(width, n + 1)].all()):
        n += 1
    return n


def write_undersampled_volumes(
    raw_dir: Path | str,
    out_dir: Path | str,
    mask: str,
    acceleration: float,
    center_lines: int,
    seed: int,
) -> list[Path]:
    """Undersample fully sampled volumes as an acquisition would, in fastMRI's test-set layout.

    For each ``.h5`` volume of ``raw_dir`` (sorted), one column mask is drawn (stream ``masks``
    of ``seed``; mask generator ``mask`` at ``acceleration`` with ``center_lines`` ACS columns)
    and ``out_dir/<name>`` gets ``kspace`` with the unsampled columns zeroed, the 1-D ``mask``
    ``(cols,)`` (the drawn columns that hold data, so that :func:`acquired_columns` accepts it),
    the attributes ``acceleration``, ``num_low_frequency`` and ``acquisition``, and no
    reconstruction: a stand-in for prospectively undersampled data (``measured-multicoil``).

    Raises:
        BadVolumeError: an unreadable volume.
        DataFileError: no volume in ``raw_dir``.
    """
    from ssibench.errors import DataFileError
    from ssibench.io import atomic_path
    from ssibench.masks import make_mask_generator
    from ssibench.rng import stream

    files = sorted(Path(raw_dir).glob("*.h5"))
    if not files:
        raise DataFileError(f"{raw_dir}: no .h5 volumes to undersample")
    generator = make_mask_generator(mask, acceleration, center_lines=center_lines)
    masks = stream(seed, "masks")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        info = read_volume_info(path)
        rows, cols = info.shape
        columns = generator.sample(1, rows, cols, masks)[0, 0, 0].numpy()  # (cols,)
        kspace = read_kspace_slices(path, range(info.n_slices)).numpy()
        # a drawn column with no data (zero padding) is not acquired: acquired_columns refuses it
        columns = columns.astype(bool) & (kspace != 0).any(axis=(0, 1, 2))
        target = out / path.name
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as handle:
            handle.create_dataset("kspace", data=kspace * columns.astype(np.complex64))
            handle.create_dataset("mask", data=columns.astype(bool))
            handle.attrs["acceleration"] = float(acceleration)
            handle.attrs["num_low_frequency"] = int(center_lines)
            handle.attrs["acquisition"] = info.acquisition
        written.append(target)
    return written
