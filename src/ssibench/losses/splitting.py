"""Measurement-splitting losses: SSDU and Noise2Inverse.

The acquired k-space points Ω are split into an input set M₁ ⊆ Ω and a target set M₂ = Ω − M₁. The
network sees only M₁ y (with the operator restricted to M₁) and is scored on the held-out points:

    L = (m / m₂) · mean((M₂ ⊙ (A f(M₁ y, A_{M₁}) − y))²),   m = #mask entries, m₂ = Σ M₂,

i.e. the squared error summed over the held-out points divided by their number (per coil for
multicoil). Yaman et al., "Self-supervised learning of physics-guided reconstruction neural networks
without fully sampled reference data" (SSDU), MRM 2020, arXiv:1912.07669; Noise2Inverse: Hendriksen
et al., IEEE TCI 2020, arXiv:2001.11801 (evaluation averages the reconstructions of several splits).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.masks import BernoulliSplittingMaskGenerator
from ssibench.physics import Physics

__all__ = [
    "SplittingLoss",
    "SplittingMaskGenerator",
    "SplittingModel",
    "mask_measurements",
    "recorded_split",
]


class SplittingMaskGenerator(Protocol):
    """What a splitting wrapper needs of a split-mask generator (Bernoulli, multiplicative, ...)."""

    def sample(
        self, input_mask: Tensor, generator: torch.Generator, batch_size: int | None = None
    ) -> Tensor:
        """Draw input masks M₁ ⊆ Ω, ``(B, 1, H, W)``, for Ω ``(B|1, 1, H, W)``."""


class SplittingModel(nn.Module):
    """Wrap a model so that it reconstructs from a random split M₁ of the acquired points.

    Training mode: one split per call, x̂ = f(M₁ y, A_{M₁}); with ``update_parameters=True`` the
    split is recorded for the loss (the trainer's own forward does this; extra forwards made inside
    other losses do not overwrite it). Evaluation mode: with ``eval_split_input`` the average of
    ``eval_n_samples`` split reconstructions (1/K) Σₖ f(M₁ᵏ y, A_{M₁ᵏ}), otherwise the plain
    f(y, A).

    With ``input_noise_sigma`` s > 0 (Robust-SSDU), training inputs are also made noisier:
    ỹ₁ = M₁ ⊙ (M₁ y + s ε), ε ~ N(0, I) on every real component, drawn from ``generator`` after the
    mask; evaluation inputs never get extra noise.

    Shapes: y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``; masks ``(B, 1, H, W)``.
    """

    def __init__(
        self,
        model: nn.Module,
        mask_generator: SplittingMaskGenerator,
        generator: torch.Generator,
        eval_n_samples: int = 5,
        eval_split_input: bool = True,
        input_noise_sigma: float = 0.0,
    ) -> None:
        super().__init__()
        if input_noise_sigma < 0:
            raise ValueError(f"input_noise_sigma must be ≥ 0; got {input_noise_sigma}")
        self.model = model
        self.mask_generator = mask_generator
        self.generator = generator
        self.eval_n_samples = eval_n_samples
        self.eval_split_input = eval_split_input
        self.input_noise_sigma = float(input_noise_sigma)
        self.last_input_masks: Tensor | None = None

    def split(self, y: Tensor, physics: Physics) -> tuple[Tensor, Physics, Tensor]:
        """Draw M₁ ⊆ Ω per sample; return (M₁ y [+ M₁ s ε in training], A restricted to M₁, M₁)."""
        input_mask = self.mask_generator.sample(physics.mask, self.generator, batch_size=y.shape[0])
        split_physics = physics.with_mask(input_mask)
        if self.training and self.input_noise_sigma > 0:
            noise = torch.randn(
                y.shape, generator=self.generator, device=self.generator.device, dtype=y.dtype
            )
            y = y + self.input_noise_sigma * noise.to(y.device)
        return mask_measurements(y, input_mask), split_physics, input_mask

    def forward(self, y: Tensor, physics: Physics, update_parameters: bool = False) -> Tensor:
        """Reconstruct from split measurements (see the class docstring)."""
        if not self.training and not self.eval_split_input:
            return self.model(y, physics)
        n_splits = 1 if self.training else self.eval_n_samples
        total = None
        for _ in range(n_splits):
            y_split, split_physics, input_mask = self.split(y, physics)
            if self.training and update_parameters:
                self.last_input_masks = input_mask
            x_split = self.model(y_split, split_physics)
            total = x_split if total is None else total + x_split
        return total / n_splits


def mask_measurements(y: Tensor, mask: Tensor) -> Tensor:
    """M ⊙ y for single-coil ``(B, 2, H, W)`` or multicoil ``(B, 2, N, H, W)`` k-space.

    mask: ``(B|1, 1, H, W)``, broadcast over real/imaginary (and coils).
    """
    return y * (mask.unsqueeze(2) if y.ndim == 5 else mask)


def recorded_split(model: nn.Module, physics: Physics, loss_name: str) -> tuple[Tensor, Tensor]:
    """The split of the trainer's last forward: (M₁ ⊙ Ω, M₂ = Ω − M₁ ⊙ Ω), each ``(B, 1, H, W)``.

    Args:
        model: the :class:`SplittingModel` returned by the loss's ``adapt_model``.
        physics: the batch operator, whose mask is Ω ``(B|1, 1, H, W)``.
        loss_name: the calling loss, named in the error.

    Raises:
        RuntimeError: if ``model`` is not a splitting wrapper or has recorded no split yet.
    """
    if not isinstance(model, SplittingModel) or model.last_input_masks is None:
        raise RuntimeError(
            f"{loss_name} needs the model returned by its adapt_model(), called in training mode "
            "with update_parameters=True before the loss"
        )
    acquired = physics.mask.expand_as(model.last_input_masks)
    input_mask = model.last_input_masks * acquired
    return input_mask, acquired - input_mask


class SplittingLoss(Loss):
    """SSDU / Noise2Inverse measurement-splitting loss (see the module docstring for the formula).

    Args:
        generator: random stream for the split masks (training and, via the wrapper, evaluation).
        split_ratio: fraction ρ of the acquired points given to the network (⌊ρ K⌋ per sample).
        eval_n_samples: number of splits averaged at evaluation when ``eval_split_input``.
        eval_split_input: evaluate on split inputs (Noise2Inverse) instead of the full y (SSDU).
        normalize_loss: divide by the fraction of held-out points m₂/m (the reference default).

    Example:
        >>> loss = SplittingLoss(torch.Generator().manual_seed(0), split_ratio=0.6)
        >>> wrapped = loss.adapt_model(nn.Identity())
        >>> type(wrapped).__name__
        'SplittingModel'
    """

    def __init__(
        self,
        generator: torch.Generator,
        split_ratio: float = 0.6,
        eval_n_samples: int = 5,
        eval_split_input: bool = True,
        normalize_loss: bool = True,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.mask_generator = BernoulliSplittingMaskGenerator(split_ratio)
        self.eval_n_samples = eval_n_samples
        self.eval_split_input = eval_split_input
        self.normalize_loss = normalize_loss

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`SplittingModel` (idempotent)."""
        if isinstance(model, SplittingModel):
            return model
        return SplittingModel(
            model,
            self.mask_generator,
            self.generator,
            eval_n_samples=self.eval_n_samples,
            eval_split_input=self.eval_split_input,
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
        """(m/m₂) · mean((M₂ ⊙ (A x̂ − y))²), M₁ taken from the wrapper's last training forward."""
        _, target_mask = recorded_split(model, physics, "SplittingLoss")
        residual = mask_measurements(physics.A(x_net) - y, target_mask)
        loss = residual.pow(2).mean()
        if self.normalize_loss:
            loss = loss * target_mask.numel() / target_mask.sum().clamp_min(1.0)
        return loss
