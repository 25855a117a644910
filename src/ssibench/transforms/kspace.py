"""Physics-driven augmentations of k-space (or images): random phase error and random noise.

These act on the real/imaginary pair in dim 1 of any ``(B, 2, ..., W)`` tensor: single-coil k-space
``(B, 2, H, W)``, multicoil ``(B, 2, N, H, W)`` or video ``(B, 2, T, H, W)``. SSIBench uses them as
the measurement augmentation T_i of VORTEX and Noise2Recon (:mod:`ssibench.losses.augmentation`),
and RandomNoise as the image transform of DDSSL's EI term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ssibench.fft import to_complex, to_real
from ssibench.rng import on_device, randn
from ssibench.transforms.base import Transform, TransformParams

__all__ = ["RandomNoise", "RandomPhaseError"]


def _uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """U(low, high) of ``shape`` (float64), drawn on the generator's device (fixes bug B4)."""
    draw = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * draw


def _check_range(name: str, value: float | tuple[float, float]) -> tuple[float, float]:
    low, high = (value, value) if isinstance(value, int | float) else value
    if not 0 <= low <= high:
        raise ValueError(
            f"{name} must be ≥ 0 or a range (low, high) with 0 ≤ low ≤ high; got {value}"
        )
    return float(low), float(high)


@dataclass(frozen=True)
class RandomPhaseError(Transform):
    """Random phase error of alternate readout columns: y_k ← exp(−i φ_k) y_k (a complex product).

    φ_k = φ_even on even columns of the last dimension (index 0, 2, …) and φ_odd on odd ones, drawn
    per sample uniformly in [−π s, π s]; with a range ``scale=(lo, hi)`` the scale s is first drawn
    uniformly from it, per sample. Every coil and frame of a sample shares the same φ. The transform
    is unitary (|y_k| is preserved) and its inverse multiplies by exp(+i φ_k). Parameters: ``phase``
    ``(B, 2)`` (φ_even, φ_odd) in radians.

    After Desai et al., "VORTEX: physics-driven data augmentations using consistency training for
    robust accelerated MRI reconstruction", MIDL 2022, arXiv:2111.02549. Differences from the
    reference (DeepInverse ``RandomPhaseError``): a true complex multiplication (Re, Im) ← (Re cos φ
    + Im sin φ, Im cos φ − Re sin φ); the reference multiplies the real channel by cos φ and the
    imaginary channel by −sin φ elementwise (SSIBench bug B1, nearly erasing Im(y) at s = 0.1). One
    draw per sample instead of one per batch; a scale range is drawn on the generator's device (bug
    B4).

    Example:
        >>> y = torch.randn(2, 2, 4, 8, 8)
        >>> RandomPhaseError(scale=0.1)(y, torch.Generator().manual_seed(0)).shape
        torch.Size([2, 2, 4, 8, 8])
    """

    scale: float | tuple[float, float] = 0.2

    unitary = True

    def __post_init__(self) -> None:
        _check_range("RandomPhaseError: scale", self.scale)

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """``{"phase": (B, 2)}``: (φ_even, φ_odd) ~ U(−π s, π s), s ~ U(lo, hi) for a range."""
        batch = x.shape[0]
        low, high = _check_range("RandomPhaseError: scale", self.scale)
        scale = _uniform(low, high, (batch, 1), generator) if low < high else low
        phase = math.pi * scale * _uniform(-1.0, 1.0, (batch, 2), generator)
        return {"phase": on_device(phase.to(x.dtype), x.device)}

    def _rotate_phase(self, x: Tensor, phase: Tensor) -> Tensor:
        columns = torch.arange(x.shape[-1], device=x.device) % 2  # 0 even, 1 odd
        per_column = phase[:, columns]  # (B, W)
        factor = torch.polar(torch.ones_like(per_column), per_column)
        factor = factor.view(x.shape[0], *([1] * (x.ndim - 3)), x.shape[-1])
        return to_real(to_complex(x) * factor)

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Multiply column k of sample b by exp(−i φ_{b,k mod 2})."""
        return self._rotate_phase(x, -params["phase"])

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """Multiply column k of sample b by exp(+i φ_{b,k mod 2})."""
        return self._rotate_phase(x, params["phase"])


@dataclass(frozen=True)
class RandomNoise(Transform):
    """Add Gaussian noise on the non-zero entries: out = (x + σ ε) ⊙ 1[x ≠ 0], ε ~ N(0, I).

    ε is i.i.d. per real and imaginary component (complex noise variance 2σ²). σ is ``sigma``, or
    drawn per sample uniformly from a range ``sigma=(lo, hi)``. On k-space the support 1[x ≠ 0] is
    the acquired set, so unsampled points stay 0; on an image it is the set of non-zero pixels.
    Parameters: ``sigma`` ``(B,)`` and ``noise`` (ε, shaped like x). Not invertible.

    Desai et al., "Noise2Recon: enabling SNR-robust MRI reconstruction with semi-supervised and
    self-supervised learning", MRM 2023, arXiv:2110.00075 (σ range), and VORTEX (arXiv:2111.02549).
    Differences from the reference (DeepInverse ``RandomNoise``): the support is taken per complex
    entry (a point is noised when its real or imaginary part is non-zero; the reference tests each
    real component, so a purely real k-space point such as the DC of a real image got no imaginary
    noise); one σ per sample instead of one per batch; a σ range is drawn on the generator's device
    (SSIBench bug B4, a crash of ``noise2recon-ssdu`` on GPU).

    Example:
        >>> y = torch.zeros(2, 2, 8, 8)
        >>> torch.equal(RandomNoise(sigma=(0.05, 0.2))(y, torch.Generator().manual_seed(0)), y)
        True
    """

    sigma: float | tuple[float, float] = 0.1

    def __post_init__(self) -> None:
        _check_range("RandomNoise: sigma", self.sigma)

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """``{"sigma": (B,), "noise": ε like x}`` (σ drawn first when it is a range)."""
        low, high = _check_range("RandomNoise: sigma", self.sigma)
        if low < high:
            sigma = _uniform(low, high, (x.shape[0],), generator)
        else:
            sigma = torch.full((x.shape[0],), low, dtype=torch.float64)
        noise = randn(x.shape, generator, x.device, x.dtype)
        return {"sigma": on_device(sigma.to(x.dtype), x.device), "noise": noise}

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """(x + σ_b ε) ⊙ 1[x ≠ 0], the support taken per complex entry."""
        sigma = params["sigma"].view(-1, *([1] * (x.ndim - 1)))
        support = (x != 0).any(dim=1, keepdim=True)
        return (x + sigma * params["noise"]) * support
