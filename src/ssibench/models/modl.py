"""The unrolled MoDL network around a shared denoiser, and its SSIBench builder.

A reconstruction model is an ``nn.Module`` called ``model(y, physics)`` (the DeepInverse
convention): ``y`` is the measured k-space (``(B, 2, H, W)`` single-coil, ``(B, 2, N, H, W)``
multicoil) and the output an image ``(B, 2, H, W)``, real/imaginary in dim 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ssibench.models.unet import UNet
from ssibench.physics import Physics
from ssibench.physics.base import prox_l2

__all__ = ["INITIAL_STEP_SIZE", "STEP_ORDERS", "MoDL", "build_modl"]

#: Orders of the two half-steps of one MoDL iteration (see :class:`MoDL`).
STEP_ORDERS = ("dc-first", "denoiser-first")

StepOrder = Literal["dc-first", "denoiser-first"]

#: Initial value of every MoDL step size γ_k (as the reference).
INITIAL_STEP_SIZE = 1.0


class MoDL(nn.Module):
    """Unrolled half-quadratic splitting with one shared denoiser D (MoDL).

    Aggarwal, Mani, Jacob, "MoDL: Model-Based Deep Learning Architecture for Inverse Problems",
    IEEE TMI 2019, arXiv:1712.02862. With x₀ = Aᴴy and P_γ(z) = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖²
    (:func:`ssibench.physics.base.prox_l2`: ``physics.prox_l2`` when the operator has one, else
    conjugate gradient on (γ AᴴA + I) u = γ Aᴴy + z, so a user's operator needs only ``A`` and
    ``A_adjoint``), iteration k = 0 … K−1 is

    * ``"dc-first"`` (default): xₖ₊₁ = D(P_γₖ(xₖ)); the output x_K is a denoiser output;
    * ``"denoiser-first"`` (the MoDL paper): xₖ₊₁ = P_γₖ(D(xₖ)); the output is data-consistent.

    The default is ``"dc-first"`` because that is what DeepInverse's ``MoDL`` computes (HQS
    iterator: data step, then prior step, no final data step), and SSIBench's published leaderboard
    was trained with it (see deepinv issue #1231). The step sizes γₖ (init 1.0) are trainable, one
    per iteration. The reference also carries per-iteration λₖ and σₖ scalars, but its plug-and-play
    prior ignores them, so they never receive a gradient; they are omitted here. This model thus has
    the denoiser's parameters plus ``num_iter`` (8,556,997 with the SSIBench U-Net and K = 3, versus
    the reference's 8,557,003).

    Shapes: y ``(B, 2, H, W)`` single-coil or ``(B, 2, N, H, W)`` multicoil; output
    ``(B, 2, H, W)``.

    Args:
        denoiser: image-to-image network ``(B, 2, H, W) → (B, 2, H, W)``, shared by all iterations.
        num_iter: number of unrolled iterations K ≥ 1.
        step_order: ``"dc-first"`` or ``"denoiser-first"``.

    Raises:
        ValueError: on K < 1 or an unknown ``step_order``.

    Example:
        >>> from ssibench.physics import SingleCoilMRI
        >>> model = MoDL(UNet(scales=2, width=4), num_iter=2)
        >>> physics = SingleCoilMRI(torch.ones(1, 1, 8, 8))
        >>> model(torch.randn(3, 2, 8, 8), physics).shape
        torch.Size([3, 2, 8, 8])
    """

    def __init__(
        self, denoiser: nn.Module, num_iter: int = 3, step_order: StepOrder = "dc-first"
    ) -> None:
        super().__init__()
        if num_iter < 1:
            raise ValueError(f"MoDL: num_iter must be a positive integer; got {num_iter}")
        if step_order not in STEP_ORDERS:
            raise ValueError(
                f"MoDL: unknown step_order {step_order!r}; valid orders: {', '.join(STEP_ORDERS)}"
            )
        self.denoiser = denoiser
        self.num_iter = num_iter
        self.step_order = step_order
        #: γ₀ … γ_{K−1}, shape (K,).
        self.step_sizes = nn.Parameter(torch.full((num_iter,), INITIAL_STEP_SIZE))

    def forward(self, y: Tensor, physics: Physics) -> Tensor:
        """Reconstruct an image ``(B, 2, H, W)`` from k-space ``y`` measured through ``physics``."""
        x = physics.A_adjoint(y)
        for gamma in self.step_sizes:
            if self.step_order == "dc-first":
                x = self.denoiser(prox_l2(physics, x, y, gamma))
            else:
                x = prox_l2(physics, self.denoiser(x), y, gamma)
        return x


def build_modl(
    num_iter: int = 3,
    step_order: StepOrder = "dc-first",
    scales: int = 4,
    width: int = 64,
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
    identity_init: bool = False,
) -> MoDL:
    """MoDL around a residual 2 → 2-channel :class:`UNet`; defaults are the SSIBench model.

    With ``identity_init`` the U-Net's output convolution starts at zero, so the residual denoiser
    starts as the identity and the untrained MoDL returns the zero-filled image (every
    data-consistency step leaves Aᴴy unchanged): training starts from the baseline instead of from a
    random residual several dB below it, which matters on a small CPU budget. The reference uses
    PyTorch's default initialisation (``identity_init=False``).

    Args:
        num_iter: unrolled iterations K.
        step_order: ``"dc-first"`` (SSIBench/DeepInverse) or ``"denoiser-first"`` (MoDL paper).
        scales: U-Net resolution levels.
        width: U-Net channels at the first level.
        batch_norm: BatchNorm2d in the U-Net.
        generator: initialise the U-Net from this generator (``rng.stream(seed, "init")``).
        identity_init: zero-initialise the U-Net's output convolution (see above).

    Returns:
        The model, called ``model(y, physics)``.
    """
    unet = UNet(2, 2, scales=scales, width=width, batch_norm=batch_norm, generator=generator)
    if identity_init:
        with torch.no_grad():
            unet.head.weight.zero_()
            unet.head.bias.zero_()
    return MoDL(unet, num_iter=num_iter, step_order=step_order)
