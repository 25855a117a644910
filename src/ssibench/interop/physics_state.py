"""DeepInverse's saved operator, ``physics<g>.pt``: the mask, coil maps and σ a store needs.

``deepinv.datasets.generate_dataset`` saves ``torch.save(physics.state_dict())`` beside each
``dinv_dataset<g>.h5``, before any measurement (DeepInverse 0.5.0): ``mask`` ``(1, 2, H, W)``
(the fixed mask of an operator without a generator; with one, the initial mask, never used),
``coil_maps`` ``(1, N, H, W)`` complex for ``MultiCoilMRI`` (the .h5 holds none) and
``noise_model.sigma`` for ``GaussianNoise``. :func:`read_physics_state` loads it weights-only
(nothing in it runs, :mod:`ssibench.safe_load`) after bounding its size;
:func:`operator_from_state` builds ssibench's operator of the files from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.data.limits import check_read_size
from ssibench.data.volume_errors import BadVolumeError
from ssibench.errors import DataFileError
from ssibench.interop.measurement_checks import one_channel_mask
from ssibench.physics import Operator, build_operator
from ssibench.safe_load import load_torch_file

__all__ = ["PhysicsState", "operator_from_state", "read_physics_state", "state_file_hint"]

_STATE_FIX = "pass the physics<g>.pt that generate_dataset wrote beside dinv_dataset<g>.h5"


@dataclass(frozen=True)
class PhysicsState:
    """What a DeepInverse ``physics<g>.pt`` holds that a store needs (``None``: not in it).

    Attributes:
        path: the file read.
        mask: the operator's fixed mask ``(1, 1, H, W)`` float32.
        coil_maps: ``(N, H, W)`` complex64.
        sigma: the ``GaussianNoise`` standard deviation per real/imaginary component.
    """

    path: Path
    mask: Tensor | None
    coil_maps: Tensor | None
    sigma: float | None


def read_physics_state(path: Path | str) -> PhysicsState:
    """The mask, coil maps and σ of a DeepInverse ``physics<g>.pt`` (loaded weights-only).

    Raises:
        DataFileError: a missing or unreadable file, one over the read limit, not a state dict of
            tensors, a noise model other than ``GaussianNoise``, or a malformed mask or coil maps.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such physics state; {_STATE_FIX}")
    size = path.stat().st_size  # a torch.save zip stores tensors uncompressed: bounds the load
    try:
        check_read_size(path, "the physics state", (size,), np.dtype(np.uint8), (size,))
    except BadVolumeError as error:
        raise DataFileError(f"{path}: {error.reason}") from None
    state = load_torch_file(path, _STATE_FIX, what="DeepInverse physics state")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataFileError(f"{path}: not a state dict of tensors; {_STATE_FIX}")
    other_noise = sorted(
        k for k in state if k.startswith("noise_model.") and k != "noise_model.sigma"
    )
    if other_noise:
        raise DataFileError(
            f"{path}: noise model parameters {', '.join(other_noise)}: ssibench imports Gaussian "
            "noise only (GaussianNoise, one sigma per real/imaginary component)"
        )
    mask = None if "mask" not in state else one_channel_mask(path, "mask", state["mask"])
    if mask is not None and mask.shape[0] != 1:
        raise DataFileError(
            f"{path}: 'mask' has shape {tuple(state['mask'].shape)}, expected one mask "
            f"(1, 1 or 2, H, W); {_STATE_FIX}"
        )
    maps = state.get("coil_maps")
    if maps is not None:
        while maps.ndim < 3:  # DeepInverse's default maps are one coil of ones, (H, W)
            maps = maps.unsqueeze(0)
        if not maps.is_complex() or maps.ndim > 4 or (maps.ndim == 4 and maps.shape[0] != 1):
            raise DataFileError(
                f"{path}: 'coil_maps' is {maps.dtype} {tuple(state['coil_maps'].shape)}, expected "
                f"complex (1, N, H, W) (one set for every sample); {_STATE_FIX}"
            )
        maps = maps.reshape(maps.shape[-3:]).to(torch.complex64)
        if not torch.isfinite(torch.view_as_real(maps)).all():
            raise DataFileError(f"{path}: 'coil_maps' holds values that are not finite")
    sigma = state.get("noise_model.sigma")
    if sigma is not None and (sigma.numel() != 1 or not math.isfinite(float(sigma))):
        raise DataFileError(
            f"{path}: 'noise_model.sigma' is {sigma.tolist()}, expected one finite number (a "
            "noise level per sample is not a store's single sigma)"
        )
    # the float32 buffer printed shortest (0.05, not 0.0500000007), as the user wrote it
    level = None if sigma is None else float(str(np.float32(sigma.item())))
    return PhysicsState(path=path, mask=mask, coil_maps=maps, sigma=level)


def state_file_hint(source: Path) -> str:
    """The physics state generate_dataset wrote beside ``source`` (``dinv_dataset<g>.h5``)."""
    match = re.search(r"(\d+)\.h5$", source.name)
    return str(source.with_name(f"physics{match.group(1) if match else '<g>'}.pt"))


def operator_from_state(
    source: Path, state: PhysicsState | None, kind: str, y_shape: tuple[int, ...], shared: bool
) -> Operator:
    """The files' operator in ssibench: the state's fixed mask (else a full one), its coil maps.

    Raises:
        DataFileError: the fixed mask or the coil maps are needed and missing, or do not fit y.
    """
    hint = f"pass --physics-state {state_file_hint(source)}"
    if shared and (state is None or state.mask is None):
        raise DataFileError(
            f"{source}: no per-sample masks ('mask_train'): the operator's fixed mask is in the "
            f"physics state generate_dataset saved beside it; {hint}"
        )
    coils = PHYSICS_KINDS[kind].coils
    if coils and (state is None or state.coil_maps is None):
        raise DataFileError(
            f"{source}: MultiCoilMRI measurements need their coil maps, which generate_dataset "
            f"saves only in the physics state ('coil_maps'); {hint}"
        )
    size = y_shape[-2:]
    mask = state.mask if shared and state is not None else torch.ones(1, 1, *size)
    maps = state.coil_maps if coils and state is not None else None
    for name, value, expected in (
        ("mask", mask, (1, 1, *size)),
        ("coil_maps", maps, (y_shape[1], *size)),
    ):
        if value is not None and tuple(value.shape) != expected:
            raise DataFileError(
                f"{state.path}: {name!r} has shape {tuple(value.shape)} (one channel), but y "
                f"{y_shape} of {source} needs {expected}; {_STATE_FIX}"
            )
    return build_operator(kind, mask, 0.0, maps)
