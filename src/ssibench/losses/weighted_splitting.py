"""K-weighted measurement splitting (weighted SSDU) and Robust SSDU, with exact sampling densities.

Both losses split the acquired lines Ω line-wise, M₁ = M_split ⊙ Ω with M_split a fresh random
column mask (:class:`~ssibench.masks.MultiplicativeSplittingMaskGenerator`), train f(M₁ y, A_{M₁})
on the held-out points M₂ = Ω − M₁, and weight k-space column j by

    w_j = (1 − K_j)^(−1/2),  K_j = (1 − P_j) / (1 − P̃_j P_j),
    i.e.  w_j² = (1 − P̃_j P_j) / (P_j (1 − P̃_j)),

where P_j and P̃_j are the probabilities that column j is in an acquisition mask and in a split mask.
This is the diagonal (I − K)^(−1/2) of Millard & Chiew's variable-density Noisier2Noise analysis,
which makes the expected loss equal (up to a constant) to a fully sampled loss.

P and P̃ are the exact inclusion probabilities of the two column samplers
(:func:`ssibench.masks.inclusion_probabilities`), not Monte-Carlo estimates. The reference
(DeepInverse's ``WeightedSplittingLoss``) instead averages 2000 sequential draws of each generator,
consuming 4000 draws of the shared generator and leaving ~13 % error on rare columns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.losses.splitting import SplittingModel, mask_measurements, recorded_split
from ssibench.masks import (
    MaskGenerator,
    MultiplicativeSplittingMaskGenerator,
    inclusion_probabilities,
)
from ssibench.physics import Physics
from ssibench.rng import on_device

__all__ = [
    "RobustSplittingLoss",
    "WeightedSplittingLoss",
    "kspace_weights",
]

#: Clamp of the reference for 1 − P̃P, 1 − K and P̃ ≤ 1 − ε (keeps the weights finite).
WEIGHT_EPS = 1e-9
#: Robust-SSDU default ratio α of the extra noise level to the measurement noise level (reference).
DEFAULT_ALPHA = 0.75


def kspace_weights(
    acquisition_masks: MaskGenerator,
    split_masks: MaskGenerator,
    width: int,
    eps: float = WEIGHT_EPS,
) -> Tensor:
    """Column weights w = (1 − K)^(−1/2), K = (1 − P) / (1 − P̃ P), of the weighted splitting loss.

    With P̃ ← min(P̃, 1 − ε) and both denominators clamped at ε, as the reference does; in closed form
    w² = (1 − P̃P) / (P (1 − P̃)): 1 on always-sampled columns, ≈ 1/P on rarely sampled ones.

    Args:
        acquisition_masks: the generator of the acquisition masks Ω (P).
        split_masks: the column generator of the split masks M_split (P̃; not multiplied by Ω).
        width: W.
        eps: the clamp ε.

    Returns:
        ``(W,)`` float64 on the CPU.
    """
    acquired = inclusion_probabilities(acquisition_masks, width)
    split = inclusion_probabilities(split_masks, width).clamp(max=1 - eps)
    k = (1 - acquired) / (1 - split * acquired).clamp_min(eps)
    return (1 - k).clamp_min(eps).rsqrt()


def _adapt(
    model: nn.Module,
    mask_generator: MultiplicativeSplittingMaskGenerator,
    generator: torch.Generator,
    input_noise_sigma: float,
    loss_name: str,
) -> SplittingModel:
    """Wrap ``model`` in a training-only line splitter (full input at evaluation); idempotent."""
    if isinstance(model, SplittingModel):
        if (
            model.mask_generator != mask_generator
            or model.input_noise_sigma != input_noise_sigma
            or model.eval_split_input
        ):
            raise ValueError(
                f"{loss_name}: the model is already wrapped by another splitting loss (split "
                f"{model.mask_generator}, noise {model.input_noise_sigma}); a method can combine "
                "only splitting losses that split the same way"
            )
        return model
    return SplittingModel(
        model,
        mask_generator,
        generator,
        eval_n_samples=1,
        eval_split_input=False,
        input_noise_sigma=input_noise_sigma,
    )


class WeightedSplittingLoss(Loss):
    """K-weighted SSDU: L = mean(w_col² · (M₂ ⊙ (A f(M₁ y, A_{M₁}) − y))²).

    M₁ = M_split ⊙ Ω (line-wise split by ``split_masks``), M₂ = Ω − M₁, w from
    :func:`kspace_weights` broadcast along W. The mean runs over every entry of y,
    ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``, with **no** m/m₂ normalisation (the reference's
    ``normalize_loss=False``). Evaluation uses the full input f(y, A). Returns a 0-dim tensor.

    Millard & Chiew, "A theoretical framework for self-supervised MR image reconstruction using
    sub-sampling via variable density Noisier2Noise", IEEE TCI 2023, arXiv:2205.10278.
    Differences from the reference (DeepInverse ``WeightedSplittingLoss``): P and P̃ are exact
    inclusion probabilities, not averages of 2000 draws each (so construction draws nothing from the
    shared generator); weights are computed lazily per width and cached; the split masks are drawn
    for the whole batch at once.

    Args:
        generator: random stream of the split masks.
        acquisition_masks: generator of the acquisition masks (defines P).
        split_masks: column generator of the split (reference: Gaussian, acceleration 2, no centre).
        eps: clamp ε of the weight formula.

    Example:
        >>> from ssibench.masks import GaussianMaskGenerator
        >>> loss = WeightedSplittingLoss(
        ...     torch.Generator(), GaussianMaskGenerator(6), GaussianMaskGenerator(2, 0.0)
        ... )
        >>> loss.kspace_weight(32).shape
        torch.Size([32])
    """

    def __init__(
        self,
        generator: torch.Generator,
        acquisition_masks: MaskGenerator,
        split_masks: MaskGenerator,
        eps: float = WEIGHT_EPS,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.acquisition_masks = acquisition_masks
        self.mask_generator = MultiplicativeSplittingMaskGenerator(split_masks)
        self.eps = eps
        self._weights: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}

    def kspace_weight(
        self,
        width: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """The column weights w ``(W,)`` on ``device`` in ``dtype`` (cached)."""
        key = (int(width), torch.device(device), dtype)
        if key not in self._weights:
            weights = kspace_weights(
                self.acquisition_masks, self.mask_generator.split_generator, width, self.eps
            )
            self._weights[key] = on_device(weights.to(dtype), device)  # once per device
        return self._weights[key]

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`SplittingModel` that splits line-wise in training only."""
        return _adapt(model, self.mask_generator, self.generator, 0.0, type(self).__name__)

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
        """mean(w² (M₂ ⊙ (A x̂ − y))²) with M₁ from the wrapper's last training forward."""
        _, target_mask = recorded_split(model, physics, type(self).__name__)
        residual = mask_measurements(physics.A(x_net) - y, target_mask)
        weight = self.kspace_weight(y.shape[-1], y.device, y.dtype)
        return (weight * residual).pow(2).mean()


class RobustSplittingLoss(Loss):
    """Robust SSDU: weighted SSDU on noisier inputs plus a Noisier2Noise term on the input points.

    Training input ỹ₁ = M₁ ⊙ (M₁ y + α σ ε), ε ~ N(0, I) per real component; x̂ = f(ỹ₁, A_{M₁}).

        L = mean(w² (M₂ ⊙ (A x̂ − y))²) + mean(((1 + 1/α²) · M₁ ⊙ (A x̂ − y))²),

    means over every entry of y (the factor enters squared, as in the reference). Evaluation uses
    the full, un-noised input f(y, A). Returns a 0-dim tensor.

    Millard & Chiew, "Clean self-supervised MRI reconstruction from noisy, sub-sampled training data
    with Robust SSDU", Bioengineering 2024, arXiv:2210.01696 (Eqs. 34–35, in DeepInverse's form).
    Differences from the reference (DeepInverse ``RobustSplittingLoss``): the extra noise level α σ
    is computed into this loss, never written back into a shared noise model (bug B11); weights as
    in :class:`WeightedSplittingLoss`; the extra noise is drawn from the loss generator.

    Args:
        generator: random stream of the split masks and the extra noise.
        acquisition_masks: generator of the acquisition masks (defines P).
        split_masks: column generator of the split (reference: Gaussian, acceleration 2, no centre).
        sigma: noise level σ of the measurements (per real component).
        alpha: ratio α of the extra noise level to σ.
        eps: clamp ε of the weight formula.
    """

    def __init__(
        self,
        generator: torch.Generator,
        acquisition_masks: MaskGenerator,
        split_masks: MaskGenerator,
        sigma: float,
        alpha: float = DEFAULT_ALPHA,
        eps: float = WEIGHT_EPS,
    ) -> None:
        super().__init__()
        if sigma < 0 or alpha <= 0:
            raise ValueError(f"Robust SSDU needs sigma ≥ 0 and alpha > 0; got {sigma}, {alpha}")
        self.weighted = WeightedSplittingLoss(generator, acquisition_masks, split_masks, eps)
        self.alpha = float(alpha)
        self.noise_sigma = float(alpha) * float(sigma)

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` so that training inputs are split line-wise and made noisier."""
        return _adapt(
            model,
            self.weighted.mask_generator,
            self.weighted.generator,
            self.noise_sigma,
            type(self).__name__,
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
        """Weighted SSDU loss + mean(((1 + 1/α²) M₁ ⊙ (A x̂ − y))²)."""
        input_mask, _ = recorded_split(model, physics, type(self).__name__)
        weighted = self.weighted(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=epoch)
        factor = 1 + 1 / self.alpha**2
        residual = mask_measurements(physics.A(x_net) - y, input_mask)
        return weighted + (factor * residual).pow(2).mean()
