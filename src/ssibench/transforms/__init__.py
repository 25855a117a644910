"""Random transforms with explicit, replayable parameters (see :mod:`ssibench.transforms.base`).

Geometric (image domain): :class:`Rotate`, :class:`Shift`, :class:`CPABDiffeomorphism`;
physics-driven (k-space or image): :class:`RandomPhaseError`, :class:`RandomNoise`; combinators:
:class:`Identity`, :class:`Compose`, :class:`RandomChoice`.
"""

from ssibench.transforms.base import (
    Compose,
    Identity,
    RandomChoice,
    Transform,
    TransformParams,
    as_images,
)
from ssibench.transforms.cpab import CPABDiffeomorphism, cpab_basis, cpab_flow, cpab_grid
from ssibench.transforms.geometric import Rotate, Shift, rotate, shift
from ssibench.transforms.kspace import RandomNoise, RandomPhaseError

__all__ = [
    "CPABDiffeomorphism",
    "Compose",
    "Identity",
    "RandomChoice",
    "RandomNoise",
    "RandomPhaseError",
    "Rotate",
    "Shift",
    "Transform",
    "TransformParams",
    "as_images",
    "cpab_basis",
    "cpab_flow",
    "cpab_grid",
    "rotate",
    "shift",
]
