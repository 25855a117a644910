"""Per-slice image operations of extraction: a real volume's checks, rescaling, crop and pad.

SSIBench prepares each fastMRI slice as DeepInverse's ``save_simple_dataset`` does: min–max
rescaled to [0, 1], then centre-cropped or zero-padded to the training size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from ssibench.errors import ConfigError

__all__ = ["as_volume", "center_crop_or_pad", "check_size", "normalise_min_max"]


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


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """(H, W) as two integers ≥ 1; a ConfigError naming ``--size`` otherwise."""
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ConfigError(f"image size (--size H W): expected two integers ≥ 1; got {list(size)}")
    return int(size[0]), int(size[1])


def as_volume(array: ArrayLike | Tensor) -> NDArray[np.float32]:
    """A real image ``(H, W)`` or stack of slices ``(S, H, W)`` as a float32 ``(S, H, W)`` array.

    Raises:
        ValueError: saying what is wrong: not rank 2 or 3, an empty axis, a dtype that is not a
            real number (complex, bool, strings), or non-finite values.
    """
    array = np.asarray(array.detach().cpu() if isinstance(array, Tensor) else array)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"dtype {array.dtype} is complex; magnitude images are real: save abs()")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"dtype {array.dtype}; expected a real number type")
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ValueError(f"shape {array.shape}; expected (H, W) or (S, H, W), no empty axis")
    volume = np.asarray(array if array.ndim == 3 else array[None], dtype=np.float32)
    if n_bad := int(np.count_nonzero(~np.isfinite(volume))):
        raise ValueError(f"{n_bad} non-finite values (NaN, ±inf, or beyond the float32 range)")
    return volume
