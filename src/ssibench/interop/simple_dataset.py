"""DeepInverse's simple data set (``data.source: simple``): one tensor file of N slices.

SSIBench's instructions build its training data with DeepInverse's
``FastMRISliceDataset(...).save_simple_dataset(path)``, which saves ``torch.stack(xs)``: one
min–max-rescaled middle slice per fastMRI volume, a tensor ``(N, H, W)``. Here slice n is the
volume ``<file stem>:<n>`` (zero-padded, so that the sorted names keep the file's order) of one
slice, so the per-volume split of :func:`~ssibench.data.slices.extract_volumes` is a split of the
N slices; with ``split_rule="ssibench"`` its parts are exactly those of SSIBench's
``random_split(dataset, (0.8, 0.2), generator=torch.Generator("cpu").manual_seed(0))``.

Accepted shapes: ``(N, H, W)`` or ``(N, 1, H, W)``, real, or complex (its magnitude is taken:
the slices store holds magnitude images, as SSIBench's targets are). The file is loaded with
``weights_only=True`` after its declared size is checked; nothing in it is run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from ssibench.data.images import read_tensor_file
from ssibench.data.slices import SliceStore, extract_volumes
from ssibench.data.splits import check_fractions
from ssibench.data.volume_errors import BadVolumeError
from ssibench.errors import DataFileError

__all__ = ["count_simple_dataset", "extract_simple_dataset", "read_simple_dataset"]

_FIX = (
    "pass the file DeepInverse's save_simple_dataset writes: torch.save(torch.stack(xs)), "
    "xs the (H, W) or (1, H, W) slices"
)


def _load(path: Path, *, mmap: bool) -> torch.Tensor:
    """The file's tensor, a DataFileError naming the file for anything unreadable."""
    if not path.is_file():
        raise DataFileError(f"{path}: no such file; data.raw_dir names the simple data set's .pt")
    try:
        return read_tensor_file(path, mmap=mmap)
    except BadVolumeError as error:  # a declared size over the read limit
        raise DataFileError(str(error)) from None
    except Exception as error:  # torch raises its own types for a file that is not its format
        raise DataFileError(
            f"{path}: not a readable tensor file ({type(error).__name__}: {error}); {_FIX}"
        ) from None


def _slices_shape(path: Path, tensor: torch.Tensor) -> tuple[int, int, int]:
    """(N, H, W) of a simple data set's tensor; a DataFileError for any other shape."""
    shape = tuple(tensor.shape)
    if len(shape) == 4 and shape[1] == 1:
        shape = (shape[0], shape[2], shape[3])
    if len(shape) != 3 or 0 in shape:
        raise DataFileError(
            f"{path}: a tensor of shape {tuple(tensor.shape)}; a simple data set is (N, H, W) or "
            f"(N, 1, H, W) with no empty axis; {_FIX}"
        )
    return shape  # type: ignore[return-value]


def count_simple_dataset(path: Path | str) -> int:
    """N, the number of slices (volumes) of the simple data set at ``path``, read from its header.

    The tensor is memory-mapped, so counting a large file reads none of its data.

    Raises:
        DataFileError: a missing or unreadable file, or one of another shape.
    """
    path = Path(path)
    return _slices_shape(path, _load(path, mmap=True))[0]


def read_simple_dataset(path: Path | str) -> dict[str, NDArray[np.float32]]:
    """The N slices of ``path`` as volumes ``{"<stem>:<n>": (1, H, W) float32}``.

    Raises:
        DataFileError: a missing or unreadable file, a shape other than ``(N, H, W)`` or
            ``(N, 1, H, W)``, a dtype that is not a real or complex number, or non-finite values
            (the slices named).
    """
    path = Path(path)
    tensor = _load(path, mmap=False)
    n, height, width = _slices_shape(path, tensor)
    if tensor.is_complex():
        tensor = tensor.abs()
    if tensor.dtype == torch.bool:
        raise DataFileError(f"{path}: dtype {tensor.dtype}, not a real number type; {_FIX}")
    slices = tensor.reshape(n, height, width).to(torch.float32)
    bad = (~torch.isfinite(slices)).flatten(1).any(dim=1).nonzero().flatten().tolist()
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (f", … ({len(bad)} in all)" if len(bad) > 5 else "")
        raise DataFileError(
            f"{path}: slice(s) {shown} hold values that are not finite (NaN or inf); {_FIX}"
        )
    digits = len(str(n - 1))
    return {f"{path.stem}:{k:0{digits}d}": slices[k : k + 1].numpy() for k in range(n)}


def extract_simple_dataset(
    path: Path | str,
    out: Path | str,
    size: tuple[int, int],
    split_fractions: Sequence[float],
    seed: int,
    split_rule: str = "seeded",
) -> SliceStore:
    """Build the slices store from the simple data set at ``path`` (module docstring).

    Every slice is kept, a constant one too (clipped to [0, 1], as the fastMRI source does): the
    split is of the file's N slices in their order, so that ``split_rule="ssibench"`` gives
    SSIBench's indices.

    Raises:
        DataFileError: as :func:`read_simple_dataset`.
        ConfigError: bad fractions or split rule, or a train or test split empty for N slices.
    """
    check_fractions(split_fractions)
    volumes = read_simple_dataset(path)
    return extract_volumes(
        volumes,
        out,
        size,
        split_fractions,
        seed,
        slice_index={name: [k] for k, name in enumerate(volumes)},  # the index in the file
        drop_constant_slices=False,
        split_rule=split_rule,
    )
