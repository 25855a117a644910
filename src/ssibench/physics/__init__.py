"""MRI forward operators, one module per acquisition, and the registry kind → operator.

* :mod:`~ssibench.physics.base`: the :class:`Physics` interface, mask checks, masked noise, the
  masked-FFT core shared by the diagonal operators, conjugate gradient.
* :mod:`~ssibench.physics.cartesian`: single-coil Cartesian MRI.
* :mod:`~ssibench.physics.coils`: multicoil MRI and birdcage coil maps.
* :mod:`~ssibench.physics.espirit`: coil maps estimated from acquired data (ESPIRiT).
* :mod:`~ssibench.physics.time`: dynamic (a video) and sequential (a static image, T frames) MRI.

:func:`build_operator` turns a store's ``physics`` attribute (a name of
:data:`ssibench.config.PHYSICS_KINDS`) into its operator.
"""

from __future__ import annotations

from torch import Tensor

from ssibench.config.kinds import PHYSICS_KINDS, physics_kind
from ssibench.physics.base import (
    MaskedFourier,
    MaskedOperator,
    Physics,
    check_mask,
    conjugate_gradient,
    gaussian_noise,
    prox_l2,
)
from ssibench.physics.cartesian import SingleCoilMRI
from ssibench.physics.coils import BIRDCAGE_RADIUS, MultiCoilMRI, birdcage_maps
from ssibench.physics.espirit import espirit_maps
from ssibench.physics.time import (
    DynamicMRI,
    SequentialMRI,
    check_time_mask,
    fold_time,
    select_frames,
    time_average,
    unfold_time,
)

__all__ = [
    "BIRDCAGE_RADIUS",
    "OPERATORS",
    "DynamicMRI",
    "MaskedFourier",
    "MaskedOperator",
    "MultiCoilMRI",
    "Operator",
    "Physics",
    "SequentialMRI",
    "SingleCoilMRI",
    "birdcage_maps",
    "build_operator",
    "check_mask",
    "check_time_mask",
    "conjugate_gradient",
    "espirit_maps",
    "fold_time",
    "gaussian_noise",
    "prox_l2",
    "select_frames",
    "time_average",
    "unfold_time",
]

Operator = SingleCoilMRI | MultiCoilMRI | SequentialMRI | DynamicMRI

#: The operator class of every physics kind.
OPERATORS: dict[str, type] = {
    "single-coil": SingleCoilMRI,
    "multicoil": MultiCoilMRI,
    "sequential": SequentialMRI,
    "dynamic": DynamicMRI,
    "raw-multicoil": MultiCoilMRI,  # the same operator, with per-sample estimated maps
    "measured-multicoil": MultiCoilMRI,
}
assert OPERATORS.keys() == PHYSICS_KINDS.keys(), "every physics kind needs an operator"


def build_operator(
    kind: str, mask: Tensor, sigma: float = 0.0, coil_maps: Tensor | None = None
) -> Operator:
    """The operator of physics ``kind`` with ``mask`` and noise level ``sigma``.

    Args:
        kind: a name of :data:`ssibench.config.PHYSICS_KINDS`.
        mask: ``(B|1, 1, H, W)``, or ``(B|1, 1, T, H, W)`` for a time series.
        sigma: noise standard deviation per real/imaginary k-space component.
        coil_maps: ``(N, H, W)`` complex (one set for every sample) or ``(B, N, H, W)`` (per
            sample, as acquired data's estimated maps), required by kinds with coils and refused
            by the others.

    Raises:
        ValueError: coil maps missing for a multicoil kind, or given to a kind without coils.
        ssibench.errors.ConfigError: an unknown kind.
    """
    facts = physics_kind(kind)
    operator = OPERATORS[facts.name]
    if facts.coils:
        if coil_maps is None:
            raise ValueError(f"{kind} physics needs coil maps")
        return operator(mask, coil_maps, sigma=sigma)
    if coil_maps is not None:
        raise ValueError(f"{kind} physics takes no coil maps")
    return operator(mask, sigma=sigma)
