"""An optional final data-consistency step after inference, and the k-space errors it changes.

``evaluate.final_dc`` (an ablation; the reference has none):

* ``none``: the network's output x̂ is scored as it is (SSIBench);
* ``hard``: x̂ ← x̂ + A†(y − A x̂), the projection of x̂ onto the reconstructions that agree with the
  measurements (for a least-squares consistent y). With a 0/1 mask and a unitary F
  (single-coil, sequential) A† = Aᴴ and this overwrites the acquired k-space points with y:
  F x̂ ← (1 − M) ⊙ F x̂ + M ⊙ y; multicoil solves A† by conjugate gradient;
* ``noiseless``: ``hard`` where the data are noiseless (the store's σ = 0), ``none`` elsewhere:
  exact consistency with noisy y would put the noise back (:func:`resolve_final_dc`).

Why it matters: the splitting losses (SSDU and its family) score only held-out points, so the
network never learns what to output at its own input points; MoDL with ``step_order: dc-first``
ends on the denoiser, and at test time every acquired point is an input point (docs/results.md,
"The splitting collapse"). :func:`kspace_errors` measures the error inside and outside the
acquired points.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from torch import Tensor

from ssibench.config.records import FINAL_DC_MODES
from ssibench.physics import Physics

__all__ = [
    "FINAL_DC",
    "FinalDC",
    "KSpaceErrors",
    "apply_final_dc",
    "kspace_errors",
    "resolve_final_dc",
]

FinalDC = Literal["none", "hard", "noiseless"]
#: The values of ``evaluate.final_dc``.
FINAL_DC: tuple[str, ...] = FINAL_DC_MODES


def resolve_final_dc(mode: str, sigma: float) -> FinalDC:
    """The step for noise level ``sigma``: ``noiseless`` is ``hard`` if σ = 0, else ``none``."""
    if mode == "noiseless":
        return "hard" if sigma == 0 else "none"
    return mode  # type: ignore[return-value]


def apply_final_dc(x_hat: Tensor, y: Tensor, physics: Physics, mode: FinalDC) -> Tensor:
    """x̂ (``none``) or x̂ + A†(y − A x̂) (``hard``); images ``(B, 2, H, W)``.

    ``noiseless`` must be resolved first (:func:`resolve_final_dc`).

    Raises:
        ValueError: for an unknown mode, listing :data:`FINAL_DC`.
    """
    if mode == "none":
        return x_hat
    if mode == "hard":
        return x_hat + physics.A_dagger(y - physics.A(x_hat))
    raise ValueError(f"final_dc: got {mode!r}; allowed: {', '.join(FINAL_DC)}")


class KSpaceErrors(NamedTuple):
    """Relative k-space errors of a reconstruction, per sample ``(B,)``."""

    acquired: Tensor
    """‖M ⊙ (A_full x̂ − A_full x)‖ / ‖M ⊙ A_full x‖: at the acquired points."""
    unacquired: Tensor
    """‖(1 − M) ⊙ (A_full x̂ − A_full x)‖ / ‖(1 − M) ⊙ A_full x‖: everywhere else."""


def kspace_errors(x_hat: Tensor, x: Tensor, physics: Physics) -> KSpaceErrors:
    """The error of x̂ against the ground truth x in k-space, inside and outside the mask.

    A_full is the operator with a full mask (``physics.with_mask(1)``); the acquired points are
    ``physics.mask``. Zero-filled reconstruction has error 0 at the acquired points of noiseless
    data, by construction.
    """
    mask = physics.mask
    full = physics.with_mask(mask.new_ones((1, *mask.shape[1:])))
    error, target = full.A(x_hat - x), full.A(x)
    inside = mask.unsqueeze(1) if error.ndim == mask.ndim + 1 else mask
    outside = 1 - inside

    def ratio(weight: Tensor) -> Tensor:
        numerator = (weight * error).square().flatten(1).sum(1)
        denominator = (weight * target).square().flatten(1).sum(1).clamp_min(1e-30)
        return (numerator / denominator).sqrt()

    return KSpaceErrors(ratio(inside), ratio(outside))
