"""Noise-aware self-supervised losses: Recorrupted-to-Recorrupted, Neighbor2Neighbor, Noise2Score.

Noisy MRI data are y = M ⊙ (A₀ x + σ ε): noise only on the sampled entries (σ per real and imaginary
component). Every noise these losses add is drawn on the sampled entries only, from the generator
given at construction (the reference uses the global RNG and corrupts every entry, including the
unsampled k-space that is exactly 0 in the data).

R2R and Noise2Score wrap the network (``adapt_model``), as measurement splitting does: the trainer's
forward must call the wrapper with ``update_parameters=True`` so that it records this call's noise
for the loss; extra forwards made inside other losses are corrupted too but do not overwrite it.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.losses.sure import measurement_support, standard_normal
from ssibench.physics import Physics, SingleCoilMRI
from ssibench.rng import on_device, randint, randn

__all__ = [
    "NEIGHBOR_PAIRS",
    "Neighbor2NeighborLoss",
    "R2RLoss",
    "R2RModel",
    "ScoreLoss",
    "ScoreModel",
    "neighbor_subsample",
]

#: The 8 ordered pairs of edge-adjacent pixels of a 2×2 block; positions 0 = top-left,
#: 1 = top-right, 2 = bottom-left, 3 = bottom-right.
NEIGHBOR_PAIRS = ((0, 1), (0, 2), (1, 3), (2, 3), (1, 0), (2, 0), (3, 1), (3, 2))


def _noise_level(sigma: float | None, physics: Physics) -> float:
    """The configured σ, or the physics' noise level when none was configured."""
    return physics.sigma if sigma is None else sigma


class R2RModel(nn.Module):
    """Wrap a model so that it reconstructs from recorrupted measurements y₁ = y + √(α/(1−α)) σ ω.

    ω ~ N(0, I) on the sampled entries. Training mode: one recorruption per call, x̂ = f(y₁, A);
    with ``update_parameters=True`` y₁ is recorded for :class:`R2RLoss`. Evaluation mode: the mean
    of ``eval_n_samples`` reconstructions from independent recorruptions.
    Shapes: y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``; output ``(B, 2, H, W)``.
    """

    def __init__(
        self,
        model: nn.Module,
        generator: torch.Generator,
        alpha: float,
        sigma: float | None = None,
        eval_n_samples: int = 5,
    ) -> None:
        super().__init__()
        self.model = model
        self.generator = generator
        self.alpha = alpha
        self.sigma = sigma
        self.eval_n_samples = eval_n_samples
        self.last_recorrupted: Tensor | None = None

    def recorrupt(self, y: Tensor, physics: Physics) -> Tensor:
        """y₁ = y + √(α/(1−α)) σ ω, ω ~ N(0, I) on the sampled entries."""
        scale = math.sqrt(self.alpha / (1 - self.alpha)) * _noise_level(self.sigma, physics)
        return y + scale * standard_normal(y, self.generator) * measurement_support(y, physics)

    def forward(self, y: Tensor, physics: Physics, update_parameters: bool = False) -> Tensor:
        """Reconstruct from recorrupted measurements (see the class docstring)."""
        if self.training:
            y_recorrupted = self.recorrupt(y, physics)
            if update_parameters:
                self.last_recorrupted = y_recorrupted
            return self.model(y_recorrupted, physics)
        total = self.model(self.recorrupt(y, physics), physics)
        for _ in range(self.eval_n_samples - 1):
            total = total + self.model(self.recorrupt(y, physics), physics)
        return total / self.eval_n_samples


class R2RLoss(Loss):
    """Recorrupted-to-Recorrupted loss L = mean((A f(y₁, A) − y₂)²).

    With
        y₁ = y + √(α/(1−α)) σ ω,   y₂ = (y − (1 − α) y₁)/α = y − √((1−α)/α) σ ω,

    ω ~ N(0, I) on the sampled entries (drawn by the :class:`R2RModel` wrapper). The noises of y₁
    and y₂ are independent, so E[L] = mean((A f(y₁) − A x)²) + σ² mean(M)/α: unbiased, up to a
    constant, for the supervised loss in the range of A. x̂ ``(B, 2, H, W)``; returns a 0-dim mean.
    σ defaults to the physics' noise level. Gaussian noise only (the physics' noise model).

    Pang, Zheng, Quan, Ji, "Recorrupted-to-Recorrupted: unsupervised deep learning for image
    denoising", CVPR 2021 (no arXiv version); Monroy, Bacca, Tachella, "Generalized
    Recorrupted-to-Recorrupted: self-supervised learning beyond Gaussian noise", CVPR 2025,
    arXiv:2412.04648. Differences from the reference: recorruption from the injected generator
    (the reference uses the global RNG through torch.distributions) and on sampled entries only.

    Example:
        >>> loss = R2RLoss(torch.Generator().manual_seed(0), alpha=0.5)
        >>> type(loss.adapt_model(nn.Identity())).__name__
        'R2RModel'
    """

    def __init__(
        self,
        generator: torch.Generator,
        alpha: float = 0.15,
        sigma: float | None = None,
        eval_n_samples: int = 5,
    ) -> None:
        super().__init__()
        if not 0 < alpha < 1:
            raise ValueError(f"R2R alpha must be in (0, 1); got {alpha}")
        if eval_n_samples < 1:
            raise ValueError(f"eval_n_samples must be ≥ 1; got {eval_n_samples}")
        self.generator = generator
        self.alpha = alpha
        self.sigma = sigma
        self.eval_n_samples = eval_n_samples

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in an :class:`R2RModel` (idempotent)."""
        if isinstance(model, R2RModel):
            return model
        return R2RModel(model, self.generator, self.alpha, self.sigma, self.eval_n_samples)

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
        """mean((A x̂ − y₂)²) with y₁ taken from the wrapper's last training forward."""
        recorrupted = model.last_recorrupted if isinstance(model, R2RModel) else None
        if recorrupted is None or recorrupted.shape != y.shape:
            raise RuntimeError(
                "R2RLoss needs the model returned by its adapt_model(), called in training mode "
                "with update_parameters=True on this batch before the loss"
            )
        target = (y - (1 - self.alpha) * recorrupted) / self.alpha
        return mse(physics.A(x_net), target)


@functools.cache
def _neighbor_pairs(device: torch.device) -> Tensor:
    """:data:`NEIGHBOR_PAIRS` as an ``(8, 2)`` int64 tensor on ``device``, uploaded once."""
    return on_device(torch.tensor(NEIGHBOR_PAIRS), device)


def neighbor_subsample(x: Tensor, pair_index: Tensor) -> tuple[Tensor, Tensor]:
    """Neighbour sub-images g₁(x), g₂(x): per 2×2 block, the two pixels of the chosen pair.

    Args:
        x: ``(B, C, H, W)`` with even H and W.
        pair_index: ``(B, H/2, W/2)`` int64 in [0, 8), an index into :data:`NEIGHBOR_PAIRS`, shared
            by all channels.

    Returns:
        (g₁(x), g₂(x)), each ``(B, C, H/2, W/2)``.
    """
    batch, channels, height, width = x.shape
    if height % 2 or width % 2:
        raise ValueError(f"Neighbor2Neighbor needs even H and W; got {tuple(x.shape)}")
    blocks = (
        x.reshape(batch, channels, height // 2, 2, width // 2, 2)
        .permute(0, 1, 2, 4, 3, 5)
        .reshape(batch, channels, height // 2, width // 2, 4)
    )
    pairs = _neighbor_pairs(x.device)[pair_index]  # (B, H/2, W/2, 2)
    pairs = pairs.unsqueeze(1).expand(batch, channels, -1, -1, -1)
    first = blocks.gather(-1, pairs[..., :1]).squeeze(-1)
    second = blocks.gather(-1, pairs[..., 1:]).squeeze(-1)
    return first, second


class Neighbor2NeighborLoss(Loss):
    """Neighbor2Neighbor loss for denoising.

    With u = Aᴴ y and neighbour sub-samplers (g₁, g₂),
        L = mean((f₁ − g₂(u))²) + γ mean((f₁ − g₁(x̃) − (g₂(u) − g₂(x̃)))²),

    f₁ = f(F g₁(u), A_half) the network applied to the half-size sub-image (through a fully sampled
    single-coil operator of size H/2 × W/2), x̃ = x̂ detached. One pair per 2×2 block and sample,
    drawn from the generator. Meant for denoising (a fully sampled single-coil mask, where Aᴴ y is
    the image plus white noise); with undersampling the sub-images' errors are aliased, not
    independent. x̂ ``(B, 2, H, W)``, H and W even; returns a 0-dim mean.

    Huang, Li, Jia, Lu, Liu, "Neighbor2Neighbor: self-supervised denoising from single noisy
    images", CVPR 2021, arXiv:2101.02824. Differences from the reference: pairs from the injected
    generator (the reference: global RNG, a Python loop over channels); sub-sampling acts on the
    image Aᴴ y (the reference sub-samples y itself, which only works for image-domain denoising);
    x̃ reuses the trainer's x̂ instead of a second forward of the same input (equal for a
    deterministic network).
    """

    def __init__(self, generator: torch.Generator, gamma: float = 2.0) -> None:
        super().__init__()
        self.generator = generator
        self.gamma = gamma

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
        """Neighbor2Neighbor value (see the class docstring), one extra half-size forward."""
        if not isinstance(physics, SingleCoilMRI):
            raise TypeError(
                "Neighbor2Neighbor needs single-coil physics (denoising); got "
                f"{type(physics).__name__}"
            )
        noisy = physics.A_adjoint(y)
        batch, _, height, width = noisy.shape
        if height % 2 or width % 2:
            raise ValueError(f"Neighbor2Neighbor needs even H and W; got {tuple(noisy.shape)}")
        pair_index = randint(
            len(NEIGHBOR_PAIRS), (batch, height // 2, width // 2), self.generator, y.device
        )
        noisy_1, noisy_2 = neighbor_subsample(noisy, pair_index)
        half = SingleCoilMRI(
            torch.ones(1, 1, height // 2, width // 2, device=y.device, dtype=y.dtype),
            physics.sigma,
        )
        estimate = model(half.A(noisy_1), half)
        ref_1, ref_2 = neighbor_subsample(x_net.detach(), pair_index)
        return mse(estimate, noisy_2) + self.gamma * mse(estimate - ref_1, noisy_2 - ref_2)


class ScoreModel(nn.Module):
    """Noise2Score wrapper: the network estimates the score, the output is Tweedie's denoiser.

    The score of the measurement density is s(ỹ) = A N(ỹ, A) (N the wrapped network, so s lives on
    the sampled entries); the output is x̂ = Aᴴ(y + σ_n² s(y)) (Tweedie; σ_n the data's noise level).
    Training mode: ỹ = y + δ_b ε with ε ~ N(0, I) on the sampled entries and δ_b = δ Z_b,
    Z_b ~ N(0, 1) per sample, δ annealed linearly from δ_max to δ_min over ``total_batches``
    recorded calls and then held at δ_min; with ``update_parameters=True`` the AR-DAE error
    mean((ε + δ_b s(ỹ))²) is recorded for :class:`ScoreLoss` and the schedule advances.
    Evaluation mode: ỹ = y (deterministic).
    In single-coil MRI A is unitary on the sampled entries, so this is exactly the reference's
    image-domain Noise2Score; in multicoil the score is restricted to the range of A.
    """

    def __init__(
        self,
        model: nn.Module,
        generator: torch.Generator,
        sigma: float | None = None,
        total_batches: int = 1000,
        delta: tuple[float, float] = (0.001, 0.1),
    ) -> None:
        super().__init__()
        self.model = model
        self.generator = generator
        self.sigma = sigma
        self.total_batches = total_batches
        self.delta = delta
        self.counter = 0
        self.last_error: Tensor | None = None

    def annealed_delta(self) -> float:
        """δ = δ_max (1 − w) + δ_min w with w = min(counter / total_batches, 1)."""
        progress = min(self.counter / self.total_batches, 1.0)
        delta_min, delta_max = self.delta
        return delta_max * (1 - progress) + delta_min * progress

    def score(self, y: Tensor, physics: Physics) -> Tensor:
        """s(y) = A N(y, A), shaped like ``y``."""
        return physics.A(self.model(y, physics))

    def forward(self, y: Tensor, physics: Physics, update_parameters: bool = False) -> Tensor:
        """Tweedie's estimate Aᴴ(y + σ_n² s) (see the class docstring)."""
        sigma_n = _noise_level(self.sigma, physics)
        if not self.training:
            return physics.A_adjoint(y + sigma_n**2 * self.score(y, physics))
        if update_parameters:
            self.counter += 1
        shape = (y.shape[0],) + (1,) * (y.ndim - 1)
        level = self.annealed_delta() * randn(shape, self.generator, y.device, y.dtype)
        probe = standard_normal(y, self.generator) * measurement_support(y, physics)
        score = self.score(y + level * probe, physics)
        if update_parameters:
            self.last_error = (probe + level * score).pow(2).mean()
        return physics.A_adjoint(y + sigma_n**2 * score)


class ScoreLoss(Loss):
    """Noise2Score's AR-DAE score-matching loss L = mean((ε + δ_b s(y + δ_b ε))²).

    The value is computed by the :class:`ScoreModel` wrapper during the trainer's forward (see
    there for ε, δ_b and s); this loss returns it (0-dim). Gaussian noise only; σ_n defaults to the
    physics' noise level. Kim, Ye, "Noise2Score: Tweedie's approach to self-supervised image
    denoising without clean images", NeurIPS 2021, arXiv:2106.07009.
    Differences from the reference (B10): the annealing is clipped at δ_min instead of continuing
    past it and changing sign; it advances once per training step (recorded calls), not on every
    extra forward made by other losses; evaluation adds no noise; nothing is modified in place;
    noise from the injected generator, on sampled entries only; the score is taken in the
    measurement domain and mapped back by Aᴴ.
    """

    def __init__(
        self,
        generator: torch.Generator,
        sigma: float | None = None,
        total_batches: int = 1000,
        delta: tuple[float, float] = (0.001, 0.1),
    ) -> None:
        super().__init__()
        if total_batches < 1 or not 0 < delta[0] <= delta[1]:
            raise ValueError(
                "ScoreLoss needs total_batches ≥ 1 and 0 < delta_min ≤ delta_max; got "
                f"total_batches={total_batches}, delta={delta}"
            )
        self.generator = generator
        self.sigma = sigma
        self.total_batches = total_batches
        self.delta = delta

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`ScoreModel` (idempotent)."""
        if isinstance(model, ScoreModel):
            return model
        return ScoreModel(model, self.generator, self.sigma, self.total_batches, self.delta)

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
        """The AR-DAE error recorded by the wrapper's last training forward."""
        error = model.last_error if isinstance(model, ScoreModel) else None
        if error is None:
            raise RuntimeError(
                "ScoreLoss needs the model returned by its adapt_model(), called in training mode "
                "with update_parameters=True before the loss"
            )
        return error
