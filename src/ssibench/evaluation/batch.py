"""One evaluation batch on the device: reconstruction, zero-filled baseline and their metrics.

Nothing here reads a value on the host, so on a GPU the batches of a test split queue up
without waiting; :func:`ssibench.evaluation.evaluate` gathers every batch's results on the CPU
once, after the last batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ssibench.evaluation.consistency import apply_final_dc
from ssibench.evaluation.functional import METRIC_MODES, complex_abs
from ssibench.evaluation.metrics import compute_metrics

__all__ = ["BatchResult", "evaluate_batch"]


@dataclass(frozen=True)
class BatchResult:
    """The device tensors of one evaluated batch of B slices.

    Attributes:
        scores: ``"<mode>/<name>"`` (the reconstruction) and ``"<mode>/zf_<name>"`` (the
            zero-filled baseline) → ``(B,)`` per metric name and mode.
        finite: ``(B,)`` bool, whether each reconstruction is finite.
        magnitudes: target, reconstruction and zero-filled magnitude images ``(B, H, W)`` (or
            ``(B, T, H, W)``), keyed ``target``, ``recon``, ``zero_filled``.
    """

    scores: dict[str, Tensor]
    finite: Tensor
    magnitudes: dict[str, Tensor]


def evaluate_batch(
    model: nn.Module | None,
    x: Tensor,
    y: Tensor,
    physics: Any,
    names: Sequence[str],
    final_dc: Any,
) -> BatchResult:
    """Reconstruct ``y`` with ``model`` (Aᴴy when None) and score it and Aᴴy against ``x``.

    Args:
        model: the evaluated network as its method wraps it, or None for zero-filled.
        x: targets ``(B, 2, H, W)`` (or time-resolved).
        y: measurements.
        physics: their operator.
        names: metric names.
        final_dc: the resolved final data-consistency setting (applied to a network's output).
    """
    zero_filled = physics.A_adjoint(y)
    recon = zero_filled
    if model is not None:  # zero-filled is consistent already
        recon = apply_final_dc(model(y, physics), y, physics, final_dc)
    scores: dict[str, Tensor] = {}
    for mode in METRIC_MODES:
        ours = compute_metrics(recon, x, names, mode)
        baseline = compute_metrics(zero_filled, x, names, mode)
        scores.update({f"{mode}/{name}": ours[name] for name in names})
        scores.update({f"{mode}/zf_{name}": baseline[name] for name in names})
    finite = recon.isfinite().flatten(1).all(dim=1)
    magnitudes = {
        name: complex_abs(image)[:, 0]
        for name, image in (("target", x), ("recon", recon), ("zero_filled", zero_filled))
    }
    return BatchResult(scores, finite, magnitudes)
