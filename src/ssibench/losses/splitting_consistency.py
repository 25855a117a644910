"""Splitting consistency: two independent splits must agree on never-acquired k-space."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.losses.splitting import SplittingModel
from ssibench.masks import BernoulliSplittingMaskGenerator
from ssibench.physics import Physics

__all__ = ["SplittingConsistencyLoss"]


class SplittingConsistencyLoss(Loss):
    """Consistency of two split reconstructions in unacquired k-space, plus measurement consistency.

    x̂₁ = f(M₁ y, A_{M₁}) is the trainer's forward and x̂₂ = f(M₁' y, A_{M₁'}) a second forward of the
    same wrapper with an independent split M₁' (Bernoulli, ⌊ρ K⌋ of the K acquired points each).
    With Ā the operator of the complement mask 1 − Ω (the k-space no sample acquired):

        L = mean((Ā x̂₁ − Ā x̂₂)²) + mean((A x̂₁ − y)²) + mean((A x̂₂ − y)²),

    each mean over every entry of the k-space tensor (``(B, 2, H, W)`` or ``(B, 2, N, H, W)``), no
    m/m₂ normalisation; the measurement terms use the full y. Evaluation uses the full input
    f(y, A). Returns a 0-dim tensor; gradients flow through both reconstructions.

    SSIBench's ``utils/splitting_consistency.py``, after Hu, Li, Wang, Liu, Zheng, Wang,
    "Self-supervised learning for MRI reconstruction with a parallel network training framework",
    MICCAI 2021, doi:10.1007/978-3-030-87231-1_37. Difference from the reference: Ā is built with
    ``with_mask`` instead of a deep copy of the physics (which fails on a physics holding a random
    generator); no assert x̂₂ ≠ x̂₁.

    Args:
        generator: random stream of both splits.
        split_ratio: fraction ρ of the acquired points given to the network.

    Example:
        >>> loss = SplittingConsistencyLoss(torch.Generator().manual_seed(0))
        >>> type(loss.adapt_model(nn.Identity())).__name__
        'SplittingModel'
    """

    def __init__(self, generator: torch.Generator, split_ratio: float = 0.6) -> None:
        super().__init__()
        self.generator = generator
        self.mask_generator = BernoulliSplittingMaskGenerator(split_ratio)

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`SplittingModel` splitting in training only (idempotent)."""
        if isinstance(model, SplittingModel):
            return model
        return SplittingModel(
            model, self.mask_generator, self.generator, eval_n_samples=1, eval_split_input=False
        )

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """mean((Ā x̂₁ − Ā x̂₂)²) + mean((A x̂₁ − y)²) + mean((A x̂₂ − y)²)."""
        if not isinstance(model, SplittingModel):
            raise RuntimeError(
                "SplittingConsistencyLoss needs the model returned by its adapt_model(): the "
                "second reconstruction must come from an independent split"
            )
        x_second = model(y, physics)  # a fresh split in training mode; the recorded one is kept
        unacquired = physics.with_mask(1 - physics.mask)
        return (
            mse(unacquired.A(x_net), unacquired.A(x_second))
            + mse(physics.A(x_net), y)
            + mse(physics.A(x_second), y)
        )
