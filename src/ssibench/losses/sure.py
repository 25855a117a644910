"""Stein's-unbiased-risk-estimate losses: SURE (Gaussian, Poisson, Poisson–Gaussian) and ENSURE.

Noisy MRI data are y = M ⊙ (A₀ x + σ ε) (A₀ the fully sampled operator, ε ~ N(0, I) per real and
imaginary component, per coil in multicoil), so noise lives only on the sampled entries
S = {M = 1} and y = 0 elsewhere. For h(y) = A f(y, A), which is re-masked and hence 0 off S,
Stein's lemma on S gives for every sample

    E‖h(y) − A x‖² = E[ ‖h(y) − y‖² + 2σ² div_S h(y) − σ² |S| ],   div_S h = Σ_{i∈S} ∂hᵢ/∂yᵢ.

The divergence is estimated by Monte Carlo (Ramani, Blu, Unser, "Monte-Carlo SURE: a black-box
optimization of regularization parameters for general denoising algorithms", IEEE TIP 2008):
div_S h ≈ bᵀ(h(y + τ b) − h(y)) / τ with b ~ N(0, I) on S, one extra network forward with grad.

Perturbation support (a deliberate difference from the reference, which perturbs every entry of y):
b is drawn on the sampled entries only. Both estimate the same divergence, since h is 0 off S for
any network. When the network reads y only through Aᴴ and the data-consistency prox, which both
re-mask (MoDL), the two give identical values and gradients for the same draw; for any other network
ours never shows it an input outside the data's support and has lower variance.

All losses return the batch mean of the per-sample values (0-dim), every term a mean over all
entries of y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``, as the reference normalises them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.masks import MaskGenerator, inclusion_probabilities
from ssibench.physics import Physics
from ssibench.rng import on_device, rand, randn

__all__ = [
    "ENSURELoss",
    "SureGaussianLoss",
    "SurePGLoss",
    "SurePoissonLoss",
    "mc_divergence",
    "measurement_support",
    "standard_normal",
]

#: Probability of the negative value of the asymmetric two-point probe of SurePGLoss; with it the
#: probe has mean 0, variance 1 and third moment 1 (reference value).
PG_PROBE_P = 0.7236
#: Floor on a column's sampling probability before ENSURE inverts it. A column that is never
#: sampled has M = 0 in every measurement, so its weight never multiplies data; the floor only
#: avoids 0 · ∞ = NaN (the reference's bug B15).
MIN_PROBABILITY = 1e-6


def measurement_support(y: Tensor, physics: Physics) -> Tensor:
    """The sampling mask M broadcastable against ``y``: ``(B|1,1,H,W)`` or ``(B|1,1,1,H,W)``."""
    return physics.mask.unsqueeze(2) if y.ndim == 5 else physics.mask


def standard_normal(y: Tensor, generator: torch.Generator) -> Tensor:
    """ε ~ N(0, I) shaped like ``y``, drawn from the (CPU) ``generator``, on ``y``'s device."""
    return randn(y.shape, generator, y.device, y.dtype)


def _rademacher(y: Tensor, generator: torch.Generator) -> Tensor:
    """±1 with probability ½ each, shaped like ``y``."""
    uniform = torch.rand(y.shape, generator=generator, device=generator.device, dtype=y.dtype)
    return on_device(2.0 * (uniform > 0.5).to(y.dtype) - 1.0, y.device)


def mc_divergence(
    model: nn.Module,
    y: Tensor,
    physics: Physics,
    h_y: Tensor,
    probe: Tensor,
    tau: float,
    weight: Tensor | None = None,
) -> Tensor:
    """Monte-Carlo divergence mean(b ⊙ w ⊙ (A f(y + τ b, A) − h(y))) / τ, a 0-dim tensor.

    With E[b bᵀ] the identity on the probe's support, E_b of the sum (not the mean) is the trace of
    W J_h(y) over that support: exactly for a linear h, to first order in τ otherwise. One extra
    network forward, with grad.

    Args:
        model: the network f(y, A).
        y: measurements ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``.
        physics: the operator A of the batch.
        h_y: A f(y, A), shaped like ``y``.
        probe: b, shaped like ``y`` (zero off the sampled entries).
        tau: finite-difference step τ.
        weight: optional diagonal weight w broadcastable against ``y`` (ENSURE).
    """
    difference = physics.A(model(y + tau * probe, physics)) - h_y
    if weight is not None:
        difference = weight * difference
    return (probe * difference).mean() / tau


class SureGaussianLoss(Loss):
    """SURE for Gaussian noise: L = mean((A x̂ − y)²) + 2σ² div − σ² mean(M).

    div = mean(b ⊙ (A f(y + τ b, A) − A x̂)) / τ, b ~ N(0, I) on the sampled entries (see the module
    docstring). E[L] equals the mean squared error of the clean measurement, mean((A x̂ − A x)²),
    so minimising L trains f as if supervised in the range of A. Shapes: x̂ ``(B, 2, H, W)``;
    y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``. Returns the 0-dim mean over the batch.

    With ``unsure=True`` σ² is unknown and learnt by gradient ascent with momentum in training mode
    (UNSURE): v ← β v + (1 − β) ∂L/∂σ², σ² ← σ² + step · v, ∂L/∂σ² = 2 div. The state is not saved
    in checkpoints.

    Stein, "Estimation of the mean of a multivariate normal distribution", Ann. Statist. 1981;
    Metzler, Mousavi, Heckel, Baraniuk, "Unsupervised learning with Stein's unbiased risk
    estimator", arXiv:1805.10531 (2018); UNSURE: Tachella, Davies, Jacques, "UNSURE: self-supervised
    learning with unknown noise level and Stein's unbiased risk estimate", ICLR 2025,
    arXiv:2409.01985.

    Differences from the reference: the probe comes from the injected generator (the reference uses
    the global RNG) and perturbs sampled entries only; the constant is σ² mean(M) instead of σ², so
    the value is unbiased for undersampled data too (same gradients); UNSURE applies its momentum
    and detaches the updated σ² (bug B9: momentum unused, σ²'s graph growing every step).

    Example:
        >>> loss = SureGaussianLoss(0.1, torch.Generator().manual_seed(0))
        >>> loss.tau
        0.01
    """

    def __init__(
        self,
        sigma: float,
        generator: torch.Generator,
        tau: float = 1e-2,
        unsure: bool = False,
        step_size: float = 1e-4,
        momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if sigma < 0 or tau <= 0:
            raise ValueError(f"SURE needs sigma ≥ 0 and tau > 0; got sigma={sigma}, tau={tau}")
        self.generator = generator
        self.tau = tau
        self.unsure = unsure
        self.step_size = step_size
        self.momentum = momentum
        self.sigma2 = torch.tensor(float(sigma) ** 2, dtype=torch.float64)
        self._velocity = torch.zeros((), dtype=torch.float64)

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
        """mean((A x̂ − y)²) + 2σ² div − σ² mean(M), one extra forward of ``model``."""
        support = measurement_support(y, physics)
        h_y = physics.A(x_net)
        probe = standard_normal(y, self.generator) * support
        divergence = mc_divergence(model, y, physics, h_y, probe, self.tau)
        # a 0-dim CPU tensor until UNSURE's first ascent: a scalar to the device, not a copy
        sigma2 = self.sigma2.to(dtype=y.dtype)
        loss = (h_y - y).pow(2).mean() + 2 * sigma2 * divergence - sigma2 * physics.mask.mean()
        if self.unsure and self.training:
            self._ascend(divergence.detach())
        return loss

    def _ascend(self, divergence: Tensor) -> None:
        """One momentum step of gradient ascent on σ² (UNSURE), without a graph."""
        gradient = 2 * divergence.to(torch.float64)
        # the 0-dim CPU starting values combine with the device gradient as scalars
        self._velocity = self.momentum * self._velocity + (1 - self.momentum) * gradient
        self.sigma2 = self.sigma2 + self.step_size * self._velocity


class SurePoissonLoss(Loss):
    """Poisson unbiased risk estimate (PURE) for y = γ · Poisson(A x / γ).

        L = mean((A x̂ − y)²) − γ mean(y) + (2γ/τ) mean(b ⊙ y ⊙ (A f(y + τ b, A) − A x̂)),

    b = ±1 (Rademacher) on the sampled entries. E[L] = mean((A x̂ − A x)²) to first order in τ
    (exact for a linear f). Returns the 0-dim batch mean; shapes as :class:`SureGaussianLoss`.
    Not used by SSIBench's MRI methods (their noise is Gaussian); kept for the loss catalogue.
    Luisier, Blu, Unser, "Image denoising in mixed Poisson–Gaussian noise", IEEE TIP 2011 (no arXiv
    version). Difference from the reference: generator injected; probe on sampled entries only.
    """

    def __init__(self, gain: float, generator: torch.Generator, tau: float = 1e-3) -> None:
        super().__init__()
        if gain <= 0 or tau <= 0:
            raise ValueError(f"PURE needs gain > 0 and tau > 0; got gain={gain}, tau={tau}")
        self.gain = gain
        self.generator = generator
        self.tau = tau

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
        """PURE value (see the class docstring), one extra forward of ``model``."""
        h_y = physics.A(x_net)
        probe = _rademacher(y, self.generator) * measurement_support(y, physics)
        h_perturbed = physics.A(model(y + self.tau * probe, physics))
        return (
            (h_y - y).pow(2).mean()
            - self.gain * y.mean()
            + (2 * self.gain / self.tau) * (probe * y * (h_perturbed - h_y)).mean()
        )


class SurePGLoss(Loss):
    """SURE for mixed Poisson–Gaussian noise y = γ · Poisson(A x / γ) + σ ε (PG-URE).

        L = mean((A x̂ − y)²) + (2/τ₁) mean(b₁ ⊙ (γ y + σ²) ⊙ (A f(y + τ₁ b₁) − A x̂))
            − γ mean(y) − σ² mean(M)
            [ − (2σ²γ/τ₂²) mean(b₂ ⊙ (A f(y + τ₂ b₂) + A f(y − τ₂ b₂) − 2 A x̂)) ]

    b₁ Rademacher; b₂ = −√((1−p)/p) with probability p, +√(p/(1−p)) otherwise (p = 0.7236: mean 0,
    variance 1, third moment 1); the bracketed second-derivative term only if
    ``second_derivative``. One extra forward (three with the second derivative). Returns the 0-dim
    batch mean. Le Montagner, Angelini, Olivo-Marin, "An unbiased risk estimator for image
    denoising in the presence of mixed Poisson–Gaussian noise", IEEE TIP 2014 (no arXiv version).
    Differences from the reference: generator injected; probes on sampled entries only; b₂ drawn
    only when used; constant σ² mean(M) instead of σ²; default and sign of the second-derivative
    term follow the reference code, not its docstring (B12); no UNSURE variant.
    """

    def __init__(
        self,
        sigma: float,
        gain: float,
        generator: torch.Generator,
        tau1: float = 1e-3,
        tau2: float = 1e-2,
        second_derivative: bool = False,
    ) -> None:
        super().__init__()
        if sigma < 0 or gain <= 0 or tau1 <= 0 or tau2 <= 0:
            raise ValueError(
                "PG-SURE needs sigma ≥ 0, gain > 0 and tau1, tau2 > 0; got "
                f"sigma={sigma}, gain={gain}, tau1={tau1}, tau2={tau2}"
            )
        self.sigma2 = float(sigma) ** 2
        self.gain = gain
        self.generator = generator
        self.tau1 = tau1
        self.tau2 = tau2
        self.second_derivative = second_derivative

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
        """PG-SURE value (see the class docstring)."""
        support = measurement_support(y, physics)
        h_y = physics.A(x_net)
        probe = _rademacher(y, self.generator) * support
        h_perturbed = physics.A(model(y + self.tau1 * probe, physics))
        loss = (
            (h_y - y).pow(2).mean()
            + (2 / self.tau1) * (probe * (self.gain * y + self.sigma2) * (h_perturbed - h_y)).mean()
            - self.gain * y.mean()
            - self.sigma2 * physics.mask.mean()
        )
        if self.second_derivative:
            uniform = rand(y.shape, self.generator, y.device, y.dtype)
            p = PG_PROBE_P
            values = torch.where(uniform < p, -math.sqrt((1 - p) / p), math.sqrt(p / (1 - p)))
            probe2 = values.to(y.dtype) * support
            h_plus = physics.A(model(y + self.tau2 * probe2, physics))
            h_minus = physics.A(model(y - self.tau2 * probe2, physics))
            loss = (
                loss
                - (2 * self.sigma2 * self.gain / self.tau2**2)
                * (probe2 * (h_plus + h_minus - 2 * h_y)).mean()
            )
        return loss


class ENSURELoss(Loss):
    """Ensemble SURE for training over random sampling masks (ENSURE).

        L = mean(w ⊙ (A x̂ − y)²) + 2σ² div − σ² mean(w ⊙ M),   w = 1 / max(p, 10⁻⁶),

    p = E[M] the probability that each k-space column is sampled by the acquisition mask generator
    (exact, :func:`ssibench.masks.inclusion_probabilities`), broadcast along W. E_M[w ⊙ M] = 1, so
    the weighted k-space error estimates the full image error ‖x̂ − x‖² on average over masks.
    div = mean(b ⊙ (A f(y + τ b, A) − A x̂)) / τ as in :class:`SureGaussianLoss` (the reference
    code); with ``weighted_divergence=True`` it is mean(b ⊙ w ⊙ (…)) / τ, which makes L an unbiased
    estimate of mean(w ⊙ (A x̂ − A x)²) for every mask (each sampled entry's Stein identity is
    weighted by its w). The reference's unweighted divergence penalises noise fitting on a rarely
    sampled column 1/p times less than its data term rewards it. τ defaults to σ/10.
    Shapes: x̂ ``(B, 2, H, W)``; y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``; returns the 0-dim
    batch mean.

    Aggarwal, Pramanik, John, Jacob, "ENSURE: a general approach for unsupervised training of deep
    image reconstruction algorithms", IEEE TMI 2023, arXiv:2010.10631.

    Differences from the reference: p is computed exactly instead of from 2000 draws of the shared
    RNG, and floored (B15: a never-sampled column gave NaN); the probe comes from the injected
    generator and perturbs sampled entries only; the constant is σ² mean(w ⊙ M), whose expectation
    over masks is the reference's σ² (same gradients); multicoil data are accepted (the weighted
    error sums over coils, Σₙ|Sₙ|² = 1); the inverse FFT the reference applies to the weighted
    residual is dropped (F is unitary, so the value is unchanged).

    Example:
        >>> from ssibench.masks import GaussianMaskGenerator
        >>> loss = ENSURELoss(0.1, GaussianMaskGenerator(6.0), torch.Generator().manual_seed(0))
        >>> loss.column_weights(320).shape
        torch.Size([320])
    """

    def __init__(
        self,
        sigma: float,
        mask_generator: MaskGenerator,
        generator: torch.Generator,
        tau: float | None = None,
        weighted_divergence: bool = False,
    ) -> None:
        super().__init__()
        tau = 0.1 * sigma if tau is None else tau
        if sigma <= 0 or tau <= 0:
            raise ValueError(f"ENSURE needs sigma > 0 and tau > 0; got sigma={sigma}, tau={tau}")
        self.sigma2 = float(sigma) ** 2
        self.mask_generator = mask_generator
        self.generator = generator
        self.tau = tau
        self.weighted_divergence = weighted_divergence
        self._weights: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}

    def column_weights(self, width: int) -> Tensor:
        """Column weights 1 / max(p, 10⁻⁶), ``(W,)`` float64 on the CPU."""
        probability = inclusion_probabilities(self.mask_generator, width)
        return 1.0 / probability.clamp_min(MIN_PROBABILITY)

    def _weight_like(self, y: Tensor) -> Tensor:
        """Column weights for ``y``'s width, device and dtype (computed once per key)."""
        key = (y.shape[-1], y.device, y.dtype)
        if key not in self._weights:
            self._weights[key] = on_device(self.column_weights(y.shape[-1]).to(y.dtype), y.device)
        return self._weights[key]

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
        """ENSURE value (see the class docstring), one extra forward of ``model``."""
        weight = self._weight_like(y)
        h_y = physics.A(x_net)
        probe = standard_normal(y, self.generator) * measurement_support(y, physics)
        divergence = mc_divergence(
            model,
            y,
            physics,
            h_y,
            probe,
            self.tau,
            weight=weight if self.weighted_divergence else None,
        )
        data = (weight * (h_y - y).pow(2)).mean()
        return data + 2 * self.sigma2 * divergence - self.sigma2 * (weight * physics.mask).mean()
