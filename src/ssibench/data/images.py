"""A folder of one's own magnitude images as volumes, and its extraction into a slices store.

Each file is one volume, the unit of the train/val/test split (so the slices of one subject never
straddle splits); a 2-D image is a volume of one slice. Readable files (:data:`IMAGE_SUFFIXES`):

- ``.png``: one grayscale image, 8 or 16 bit (read with Pillow, matplotlib's image library);
  RGB(A) or LA files whose colour channels are equal count as grayscale, the alpha channel is
  ignored, and colour images are refused;
- ``.npy``: a 2-D image ``(H, W)`` or a stack ``(S, H, W)``, slices along the first axis;
- ``.nii`` / ``.nii.gz``: NIfTI (nibabel), the header's intensity scaling applied; a 3-D volume
  ``(X, Y, Z)`` is Z slices along the *last* axis, slice k being ``data[:, :, k]`` with rows along
  the first voxel axis and columns along the second, not reoriented; trailing axes of length 1
  are dropped;
- ``.pt``: one 2-D or 3-D tensor saved with ``torch.save`` (slices along the first axis), loaded
  with ``weights_only=True`` (no code is run).

The size a file's header declares is checked before its data are read
(:func:`ssibench.data.limits.check_read_size`). Values are real magnitudes: each slice is then
min–max rescaled to [0, 1] and centre-cropped or zero-padded like a fastMRI target
(:func:`ssibench.data.slices.extract_volumes`), and constant (blank) slices are left out. Names
starting with ``.`` (``.DS_Store``) and subfolders are ignored; any other file is read, and one
of another type is a bad file naming its suffix. A plugin data set can reuse :func:`read_volumes`
and pass its result to ``extract_volumes``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from ssibench.data.fastmri import BadVolumeError, check_on_bad_file, report_bad_volumes
from ssibench.data.limits import check_read_size
from ssibench.data.slice_images import as_volume
from ssibench.data.slices import SliceStore, extract_volumes
from ssibench.data.splits import check_fractions
from ssibench.errors import DataFileError
from ssibench.progress import counted

__all__ = [
    "IMAGE_SUFFIXES",
    "extract_images",
    "image_files",
    "raw_files",
    "read_image",
    "read_tensor_file",
    "read_volumes",
    "scan_folder",
]

#: File types read as images, by suffix (lower case).
IMAGE_SUFFIXES = (".png", ".npy", ".nii", ".nii.gz", ".pt")
_SUPPORTED = ", ".join(IMAGE_SUFFIXES)
#: How :func:`report_bad_volumes` words bad files of an image folder.
_BAD_FILE_TEXT = {
    "what": "files are unreadable, malformed or not a supported image type",
    "repair": f"repair, convert ({_SUPPORTED}) or re-export them",
    "wanted": f"a folder of images ({_SUPPORTED})",
}


def _suffix(path: Path) -> str:
    """The file type of ``path``: ``.nii.gz`` or its last suffix, in lower case."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def raw_files(folder: Path | str) -> list[Path]:
    """Every file of ``folder`` that is read, sorted: not hidden (``.*``), not a subfolder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def image_files(folder: Path | str) -> list[Path]:
    """The files of :func:`raw_files` with a suffix of :data:`IMAGE_SUFFIXES`: one per volume."""
    return [path for path in raw_files(folder) if _suffix(path) in IMAGE_SUFFIXES]


def _read_png(path: Path) -> NDArray:
    from PIL import Image  # a dependency of matplotlib; only PNG folders need it

    with Image.open(path) as image:  # the header only: Pillow decodes on first access
        width, height = image.size
        # up to 4 bytes a pixel (RGBA, or Pillow's 32-bit integer mode I)
        check_read_size(path, "the PNG image", (height, width), np.uint8, (height, width, 4))
        if image.mode in ("1", "P"):  # bits and palette indices are not intensities
            image = image.convert("L" if image.mode == "1" else "RGBA")
        array = np.asarray(image)
    if array.ndim == 3:
        colours = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if (colours != colours[..., :1]).any():
            raise ValueError(f"a colour image ({image.mode}); save it as grayscale")
        array = colours[..., 0]
    return array


def _read_nifti(path: Path) -> NDArray:
    import nibabel  # installed with nilearn; imported here, only NIfTI folders need it

    image = nibabel.load(path)  # the header; the data are read by get_fdata
    check_read_size(path, "the NIfTI image", image.shape, np.float32, image.shape)
    data = image.get_fdata(dtype=np.float32)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return np.moveaxis(data, -1, 0) if data.ndim == 3 else data


def _read_npy(path: Path) -> NDArray:
    # a memory map reads the header only, and refuses a file shorter than the shape it declares
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    check_read_size(path, "the .npy array", array.shape, array.dtype, array.shape)
    return np.array(array)


def read_tensor_file(path: Path, *, mmap: bool = False) -> torch.Tensor:
    """The one tensor ``torch.save`` wrote to ``path``, loaded without running code.

    Its archive's declared size is checked first (:func:`check_read_size`); ``mmap`` maps the
    data instead of reading them (the shape then costs no read).

    Raises:
        BadVolumeError: a declared size over the read limit.
        ValueError, RuntimeError, pickle errors: an unreadable file, or one not holding a tensor.
    """
    archive = zipfile.is_zipfile(path)  # torch.save's format: it lists each record's size
    if archive and not mmap:
        with zipfile.ZipFile(path) as handle:
            size = sum(info.file_size for info in handle.infolist())
        check_read_size(path, "the .pt archive", (size,), np.uint8, (size,))
    # only an archive can be mapped; torch's legacy format is read (it is small: no archive)
    value = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and archive)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"holds a {type(value).__name__}, not a tensor; save one tensor")
    return value


def _read_pt(path: Path) -> NDArray:
    return read_tensor_file(path).numpy()


_READERS = {
    ".png": ("PNG", _read_png),
    ".npy": ("NumPy .npy", _read_npy),
    ".nii": ("NIfTI", _read_nifti),
    ".nii.gz": ("NIfTI", _read_nifti),
    ".pt": ("torch .pt", _read_pt),
}


def read_image(path: Path | str) -> NDArray[np.float32]:
    """Read one image file (module docstring) as a volume of slices.

    Returns:
        ``(S, H, W)`` float32, S = 1 for a 2-D image.

    Raises:
        BadVolumeError: (a :class:`~ssibench.errors.DataFileError`) naming the path and what is
            wrong: an unsupported suffix, an unreadable file, a colour PNG, a shape other than 2-D
            or 3-D, a dtype that is not real, non-finite values, or only constant slices.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in _READERS:
        raise BadVolumeError(path, f"unsupported file type {suffix or '(none)'!r} ({_SUPPORTED})")
    kind, reader = _READERS[suffix]
    try:
        array = reader(path)
    except BadVolumeError:  # a declared size over the read limit (check_read_size)
        raise
    except Exception as error:  # Pillow, numpy, nibabel and torch each raise their own types
        raise BadVolumeError(
            path, f"not a readable {kind} file ({type(error).__name__}: {error})"
        ) from error
    try:
        volume = as_volume(array)
    except ValueError as error:
        raise BadVolumeError(path, f"{kind} data: {error}") from error
    flat = volume.reshape(len(volume), -1)
    if not (flat.max(axis=1) > flat.min(axis=1)).any():
        raise BadVolumeError(path, "every slice is constant (a blank image)")
    return volume


def scan_folder(
    folder: Path | str,
) -> tuple[dict[str, NDArray[np.float32]], list[tuple[Path, str]], int]:
    """Read every file of :func:`raw_files` (``folder`` is not searched recursively).

    Returns:
        (file name → ``(S, H, W)`` float32 volume, (path, reason) of every bad file, number of
        files read).

    Raises:
        DataFileError: if ``folder`` does not exist or holds no file, naming it.
    """
    folder = Path(folder)
    files = raw_files(folder)
    if not files:
        state = "holds no files" if folder.is_dir() else "does not exist"
        raise DataFileError(
            f"{folder}: {state}; put your images there ({_SUPPORTED}), or point data.raw_dir "
            "(ssibench extract --raw-dir) at their folder"
        )
    volumes: dict[str, NDArray[np.float32]] = {}
    bad: list[tuple[Path, str]] = []
    for path in counted(files, f"read {folder.name}", "files"):
        try:
            volumes[path.name] = read_image(path)
        except BadVolumeError as error:
            bad.append((path, error.reason))
    return volumes, bad, len(files)


def read_volumes(folder: Path | str) -> dict[str, NDArray[np.float32]]:
    """Every image file of ``folder`` as file name → ``(S, H, W)`` float32 volume.

    Raises:
        DataFileError: if the folder is missing or empty, or one error listing every bad file
            (unsupported types named) with its reason.
    """
    volumes, bad, n_files = scan_folder(folder)
    report_bad_volumes(Path(folder), bad, n_files, "stop", **_BAD_FILE_TEXT)
    return volumes


def extract_images(
    raw_dir: Path | str,
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
    on_bad_file: Literal["stop", "skip"] = "stop",
    split_rule: str = "seeded",
) -> SliceStore:
    """Build the slices store from every image file in ``raw_dir``, one volume per file.

    Every slice of every file (:func:`read_image`) goes through
    :func:`~ssibench.data.slices.extract_volumes` (sorted by file name; constant slices left out,
    named on stderr). Every file is read first; ``on_bad_file="stop"`` raises one error listing
    every bad file, ``"skip"`` leaves them out, warns about each on stderr and records them in the
    store's ``skipped_files`` (and raises if every file is bad).

    Returns:
        The store as written.

    Raises:
        DataFileError: ``raw_dir`` missing or empty, or bad files as above.
        ConfigError: a bad size, split fractions or ``on_bad_file``, or fractions that leave the
            train or test split empty for the number of good files.
    """
    check_on_bad_file(on_bad_file)
    check_fractions(split_fractions)
    volumes, bad, n_files = scan_folder(raw_dir)
    report_bad_volumes(Path(raw_dir), bad, n_files, on_bad_file, **_BAD_FILE_TEXT)
    skipped = [(path.name, reason) for path, reason in bad]
    return extract_volumes(
        volumes, out, size, split_fractions, seed, skipped_files=skipped, split_rule=split_rule
    )
