"""Measurement-splitting losses: SSDU and Noise2Inverse.

The acquired k-space points Ω are split into an input set M₁ ⊆ Ω and a target set M₂ = Ω − M₁. The
network sees only M₁ y (with the operator restricted to M₁) and is scored on the held-out points:

    L = (m / m₂) · mean((M₂ ⊙ (A f(M₁ y, A_{M₁}) − y))²),   m = #mask entries, m₂ = Σ M₂,

i.e. the squared error summed over the held-out points divided by their number (per coil for
multicoil). Yaman et al., "Self-supervised learning of physics-guided reconstruction neural networks
without fully sampled reference data" (SSDU), MRM 2020, arXiv:1912.07669; Noise2Inverse: Hendriksen
et al., IEEE TCI 2020, arXiv:2001.11801 (evaluation averages the reconstructions of several splits).

Differences from the reference (DeepInverse ``SplittingLoss``): masks are ``(B, 1, H, W)``, shared
by the real and imaginary parts, so only the pixel-wise split exists (``pixelwise=False``,
independent real/imaginary splits, is refused: it is wrong for MRI); the output-split
evaluation averages the held-out k-space points of the image F x̂ (the reference averages x̂ itself,
which needs x and y in one domain).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.losses.base import Loss
from ssibench.masks import BernoulliSplittingMaskGenerator
from ssibench.physics import Physics
from ssibench.rng import randn

__all__ = [
    "SplittingLoss",
    "SplittingMaskGenerator",
    "SplittingModel",
    "mask_measurements",
    "output_split_average",
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
    f(y, A). With ``eval_split_input`` and ``eval_split_output`` the evaluation instead combines the
    held-out points of each split (the reference's output-split path, here in k-space, see
    :func:`output_split_average`): x̂ = F⁻¹[Σₖ M₂ᵏ ⊙ F x̂ₖ / Σₖ M₂ᵏ] (0 where Σₖ M₂ᵏ = 0), with
    x̂ₖ = f(M₁ᵏ y, A_{M₁ᵏ}) and M₂ᵏ = Ω − M₁ᵏ ⊙ Ω.

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
        eval_split_output: bool = False,
    ) -> None:
        super().__init__()
        if input_noise_sigma < 0:
            raise ValueError(f"input_noise_sigma must be ≥ 0; got {input_noise_sigma}")
        if eval_n_samples < 1:
            raise ValueError(f"eval_n_samples must be ≥ 1; got {eval_n_samples}")
        self.model = model
        self.mask_generator = mask_generator
        self.generator = generator
        self.eval_n_samples = eval_n_samples
        self.eval_split_input = eval_split_input
        self.input_noise_sigma = float(input_noise_sigma)
        self.eval_split_output = eval_split_output
        self.last_input_masks: Tensor | None = None

    def split(self, y: Tensor, physics: Physics) -> tuple[Tensor, Physics, Tensor]:
        """Draw M₁ ⊆ Ω per sample; return (M₁ y [+ M₁ s ε in training], A restricted to M₁, M₁)."""
        input_mask = self.mask_generator.sample(physics.mask, self.generator, batch_size=y.shape[0])
        split_physics = physics.with_mask(input_mask)
        if self.training and self.input_noise_sigma > 0:
            noise = randn(y.shape, self.generator, y.device, y.dtype)
            y = y + self.input_noise_sigma * noise
        return mask_measurements(y, input_mask), split_physics, input_mask

    def forward(self, y: Tensor, physics: Physics, update_parameters: bool = False) -> Tensor:
        """Reconstruct from split measurements (see the class docstring)."""
        if not self.training and not self.eval_split_input:
            return self.model(y, physics)
        if not self.training and self.eval_split_output:
            return self._output_split_forward(y, physics)
        n_splits = 1 if self.training else self.eval_n_samples
        total = None
        for _ in range(n_splits):
            y_split, split_physics, input_mask = self.split(y, physics)
            if self.training and update_parameters:
                self.last_input_masks = input_mask
            x_split = self.model(y_split, split_physics)
            total = x_split if total is None else total + x_split
        return total / n_splits

    def _output_split_forward(self, y: Tensor, physics: Physics) -> Tensor:
        """Evaluation: combine the held-out k-space points of ``eval_n_samples`` split outputs."""
        outputs = []
        target_masks = []
        for _ in range(self.eval_n_samples):
            y_split, split_physics, input_mask = self.split(y, physics)
            outputs.append(self.model(y_split, split_physics))
            acquired = physics.mask.expand_as(input_mask)
            target_masks.append(acquired - input_mask * acquired)
        return output_split_average(torch.stack(outputs), torch.stack(target_masks))


def output_split_average(outputs: Tensor, target_masks: Tensor) -> Tensor:
    """Average split outputs over their held-out k-space points: F⁻¹[Σₖ M₂ᵏ ⊙ F x̂ₖ / Σₖ M₂ᵏ].

    The reference's output-split evaluation weights the outputs by M₂ directly,
    which assumes x and y share a domain; for MRI the masks live in k-space, so the weighting is
    applied to the centred orthonormal FFT of each image and the result brought back. Points held
    out by no split (Σₖ M₂ᵏ = 0, including every unacquired point) are set to 0, as the reference.

    Args:
        outputs: x̂ₖ, ``(K, B, 2, H, W)`` real/imaginary images.
        target_masks: M₂ᵏ, ``(K, B, 1, H, W)`` 0/1 k-space masks.

    Returns:
        ``(B, 2, H, W)`` image.
    """
    spectra = fft2c(to_complex(outputs.flatten(0, 1))).view(*outputs.shape[:2], *outputs.shape[3:])
    weights = target_masks.squeeze(2)
    numerator = (weights * spectra).sum(dim=0)
    denominator = weights.sum(dim=0)
    average = torch.where(denominator > 0, numerator / denominator.clamp_min(1.0), 0)
    return to_real(ifft2c(average)).contiguous()


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
        mask_generator: split-mask generator with ``sample(input_mask, generator, batch_size)``
            (e.g. :class:`~ssibench.masks.MultiplicativeSplittingMaskGenerator`); default (None) a
            :class:`~ssibench.masks.BernoulliSplittingMaskGenerator` of ``split_ratio``, which is
            ignored when a generator is given.
        eval_split_output: with ``eval_split_input``, evaluate by averaging the held-out k-space
            points of the split outputs (see :func:`output_split_average`) instead of the outputs.
        pixelwise: must be True: one split shared by the real and imaginary parts. The reference's
            ``pixelwise=False`` (independent real/imaginary splits) needs 2-channel masks, which
            the MRI operators here do not have (and it is meaningless for MRI).

    Raises:
        ValueError: for ``pixelwise=False``.

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
        mask_generator: SplittingMaskGenerator | None = None,
        eval_split_output: bool = False,
        pixelwise: bool = True,
    ) -> None:
        super().__init__()
        if not pixelwise:
            raise ValueError(
                "SplittingLoss: pixelwise=False (independent splits of the real and imaginary "
                "channels) is not supported: MRI masks are (B, 1, H, W), shared by the real and "
                "imaginary parts of a k-space point, so a split must keep or drop both; use "
                "pixelwise=True"
            )
        self.generator = generator
        self.mask_generator: SplittingMaskGenerator = (
            BernoulliSplittingMaskGenerator(split_ratio)
            if mask_generator is None
            else mask_generator
        )
        self.eval_n_samples = eval_n_samples
        self.eval_split_input = eval_split_input
        self.eval_split_output = eval_split_output
        self.pixelwise = pixelwise
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
            eval_split_output=self.eval_split_output,
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
