"""Measurement-splitting masks: an input mask M₁ ⊆ Ω and a loss mask M₂ = Ω − M₁ per sample."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssibench.masks.acquisition import MaskGenerator
from ssibench.rng import on_device, rand

__all__ = ["BernoulliSplittingMaskGenerator", "MultiplicativeSplittingMaskGenerator"]


@dataclass(frozen=True)
class BernoulliSplittingMaskGenerator:
    """Split an acquisition mask Ω into an input mask M₁ ⊆ Ω for measurement splitting (SSDU).

    Pixel-wise: for each sample, exactly ⌊ρ K⌋ of the K sampled k-space points of Ω are kept, chosen
    uniformly without replacement (ρ = ``split_ratio``); the loss mask is M₂ = Ω − M₁. Vectorised
    by ranking i.i.d. uniforms within Ω (Yaman et al., "Self-supervised learning of physics-guided
    reconstruction neural networks without fully sampled reference data", MRM 2020,
    arXiv:1912.07669; as DeepInverse's ``BernoulliSplittingMaskGenerator`` with an input mask).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> omega = torch.ones(2, 1, 8, 8)
        >>> BernoulliSplittingMaskGenerator(0.5).sample(omega, g).sum(dim=(1, 2, 3)).tolist()
        [32.0, 32.0]
    """

    split_ratio: float = 0.6

    def __post_init__(self) -> None:
        if not 0 < self.split_ratio < 1:
            raise ValueError(f"split_ratio must be in (0, 1); got {self.split_ratio}")

    def sample(
        self, input_mask: Tensor, generator: torch.Generator, batch_size: int | None = None
    ) -> Tensor:
        """Draw M₁ ⊆ Ω for each sample.

        Args:
            input_mask: Ω, ``(B, 1, H, W)``, or a shared ``(1, 1, H, W)`` split independently
                ``batch_size`` times.
            generator: a CPU stream (B·H·W uniforms whatever Ω).
            batch_size: number of splits of a shared mask (default: Ω's batch size).

        Returns:
            ``(B, 1, H, W)`` float 0/1 on Ω's device, with exactly ⌊ρ Σ Ω_b⌋ ones per sample.
        """
        batch = batch_size if batch_size is not None else input_mask.shape[0]
        omega = input_mask.expand(batch, *input_mask.shape[1:]).flatten(1) != 0
        # The kept points of row b are the ⌊ρ K_b⌋ smallest of i.i.d. uniforms on the grid, those
        # outside Ω ranked last. One draw of B·H·W uniforms on the CPU stream (the same count
        # whatever the mask, so nothing about the device data is read on the host), and a
        # per-row threshold from one sort: no host sync, whatever K_b.
        uniform = rand(omega.shape, generator, omega.device).masked_fill(~omega, 2.0)
        keep = torch.floor(self.split_ratio * omega.sum(dim=1, keepdim=True)).long()  # (B, 1)
        ranked = uniform.sort(dim=1).values
        threshold = ranked.gather(1, (keep - 1).clamp_min(0))
        split = (uniform <= threshold) & (keep > 0)
        return split.to(input_mask.dtype).view(batch, *input_mask.shape[1:])


#: Acquisition-mask generators by config name.
@dataclass(frozen=True)
class MultiplicativeSplittingMaskGenerator:
    """Split an acquisition mask Ω line-wise by intersecting it with a random column mask.

    M₁ = M_split ⊙ Ω, where M_split is a fresh draw of ``split_generator`` per sample (e.g. a
    Gaussian column density at acceleration 2 without a centre block: W/2 columns); the loss mask
    is M₂ = Ω − M₁. The split is a whole-line (column) split, unlike the pixel-wise Bernoulli
    split, and the number of kept lines varies with how many split columns fall inside Ω.
    Millard & Chiew, "A theoretical framework for self-supervised MR image reconstruction using
    sub-sampling via variable density Noisier2Noise", IEEE TCI 2023, arXiv:2205.10278 (as
    DeepInverse's ``MultiplicativeSplittingMaskGenerator`` with an input mask).

    Example:
        >>> from ssibench.masks import GaussianMaskGenerator
        >>> g = torch.Generator().manual_seed(0)
        >>> splitter = MultiplicativeSplittingMaskGenerator(GaussianMaskGenerator(2, 0.0))
        >>> splitter.sample(torch.ones(3, 1, 8, 16), g).sum(dim=(1, 2, 3)).tolist()
        [64.0, 64.0, 64.0]
    """

    split_generator: MaskGenerator

    def __post_init__(self) -> None:
        if not isinstance(self.split_generator, MaskGenerator):
            raise TypeError(
                "split_generator must be a MaskGenerator (e.g. GaussianMaskGenerator(2, 0.0)); "
                f"got {type(self.split_generator).__name__}"
            )

    def sample(
        self, input_mask: Tensor, generator: torch.Generator, batch_size: int | None = None
    ) -> Tensor:
        """Draw M₁ = M_split ⊙ Ω for each sample, all samples in one call of the split generator.

        Args:
            input_mask: Ω, ``(B, 1, H, W)``, or a shared ``(1, 1, H, W)`` split independently
                ``batch_size`` times.
            generator: source of randomness (the split generator's draws for B samples).
            batch_size: number of splits of a shared mask (default: Ω's batch size).

        Returns:
            ``(B, 1, H, W)`` float 0/1 on Ω's device and dtype, M₁ ⊆ Ω.
        """
        batch = batch_size if batch_size is not None else input_mask.shape[0]
        height, width = input_mask.shape[-2:]
        split = self.split_generator.sample(batch, height, width, generator)
        return on_device(split.to(input_mask.dtype), input_mask.device) * input_mask
