"""Image quality metrics on magnitude images: PSNR, SSIM, NMSE, one value per image (the maths).

Every metric takes ``x_hat`` (reconstruction) and ``x`` (ground truth) shaped ``(B, 1, H, W)`` or
``(B, H, W)`` (a channel dim of any size is averaged over) and returns a ``(B,)`` tensor: there is
no batch reduction, so callers can average over a whole test set with uneven batches. Nothing calls
``.item()``, so the functions work inside or outside ``torch.no_grad()`` and on any device.

Two named conventions (:data:`METRIC_MODES`) for 2-channel complex images, via
:func:`image_metrics`:

* ``"ssibench"`` reproduces the SSIBench leaderboard (DeepInverse metrics on magnitudes): data
  range fixed to 1 (targets are min–max normalised to [0, 1]) and torchmetrics' Gaussian 11×11 SSIM.
* ``"fastmri"`` follows the fastMRI evaluation (Zbontar et al., arXiv:1811.08839): data range =
  target maximum (each slice is its own volume here) and scikit-image's 7×7 uniform-window SSIM.

The registry of what evaluation writes to ``metrics.csv`` is :mod:`ssibench.evaluation.metrics`.

SSIM: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BUILTIN_METRICS",
    "METRIC_MODES",
    "MetricMode",
    "builtin_metric",
    "complex_abs",
    "image_metrics",
    "nmse",
    "psnr",
    "ssim",
]

#: The built-in metrics, in the column order of ``metrics.csv``.
BUILTIN_METRICS = ("psnr", "ssim", "nmse")

#: Names accepted by :func:`image_metrics`.
METRIC_MODES = ("ssibench", "fastmri")

MetricMode = Literal["ssibench", "fastmri"]
SSIMWindow = Literal["gaussian", "uniform"]

#: SSIM stabilisers: c1 = (K1·L)², c2 = (K2·L)² for data range L (Wang et al. 2004).
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: torchmetrics' default Gaussian window: σ = 1.5, size int(3.5σ + 0.5)·2 + 1 = 11.
GAUSSIAN_SIGMA = 1.5
GAUSSIAN_WINDOW = 11
#: scikit-image's default uniform window (used by fastMRI): 7×7, sample covariance.
UNIFORM_WINDOW = 7


def complex_abs(x: Tensor) -> Tensor:
    """Magnitude |x| = √(re² + im²) of a real/imaginary pair in dim 1, kept as a 1-channel dim.

    Args:
        x: ``(B, 2, ...)`` float, e.g. ``(B, 2, H, W)``.

    Returns:
        ``(B, 1, ...)``. The gradient at x = 0 is 0 (not NaN).

    Raises:
        ValueError: if dim 1 does not have size 2.
    """
    if x.ndim < 2 or x.shape[1] != 2:
        raise ValueError(
            f"complex_abs expects a real/imaginary pair in dim 1, shape (B, 2, ...); "
            f"got {tuple(x.shape)}"
        )
    return torch.linalg.vector_norm(x, dim=1, keepdim=True)


def _as_images(x_hat: Tensor, x: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Check equal ``(B, C, H, W)`` or ``(B, H, W)`` shapes; return both as ``(B, C, H, W)``."""
    if x_hat.shape != x.shape:
        raise ValueError(
            f"{name}: x_hat and x must have the same shape; got {tuple(x_hat.shape)} and "
            f"{tuple(x.shape)}"
        )
    if x.ndim == 3:
        return x_hat.unsqueeze(1), x.unsqueeze(1)
    if x.ndim == 4:
        return x_hat, x
    raise ValueError(f"{name}: expected images (B, 1, H, W) or (B, H, W); got {tuple(x.shape)}")


def _per_image_range(data_range: float | Tensor, like: Tensor) -> Tensor:
    """Data range as a ``(B, 1, 1, 1)`` tensor on ``like``'s device and dtype."""
    value = torch.as_tensor(data_range, dtype=like.dtype, device=like.device)
    if value.ndim not in (0, 1) or (value.ndim == 1 and value.shape[0] not in (1, like.shape[0])):
        raise ValueError(
            f"data_range must be a float or a (B,) tensor with B = {like.shape[0]}; "
            f"got shape {tuple(value.shape)}"
        )
    return value.reshape(-1, 1, 1, 1)


def psnr(x_hat: Tensor, x: Tensor, data_range: float | Tensor) -> Tensor:
    """Peak signal-to-noise ratio PSNR = 10 log₁₀(L² / MSE), MSE = mean((x̂ − x)²) per image, in dB.

    Identical images give +inf (DeepInverse adds 1e-8 to MSE/L², capping at 80 dB; below 50 dB the
    two differ by less than 1e-4 dB).

    Args:
        x_hat: reconstruction ``(B, 1, H, W)`` or ``(B, H, W)``.
        x: ground truth, same shape.
        data_range: peak L, a float or a ``(B,)`` tensor (one per image).

    Returns:
        ``(B,)``.
    """
    x_hat, x = _as_images(x_hat, x, "psnr")
    mse = (x_hat - x).pow(2).mean(dim=(1, 2, 3))
    peak = _per_image_range(data_range, x).reshape(-1)
    return 10.0 * torch.log10(peak.pow(2) / mse)


def nmse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Normalised mean squared error NMSE = ‖x̂ − x‖² / ‖x‖² per image.

    Args:
        x_hat: reconstruction ``(B, 1, H, W)`` or ``(B, H, W)``.
        x: ground truth, same shape.

    Returns:
        ``(B,)``.
    """
    x_hat, x = _as_images(x_hat, x, "nmse")
    return (x_hat - x).pow(2).sum(dim=(1, 2, 3)) / x.pow(2).sum(dim=(1, 2, 3))


def _gaussian_kernel(like: Tensor) -> Tensor:
    """Normalised 1-D Gaussian g(t) ∝ exp(−t²/2σ²), t = −5 … 5, shape ``(11,)``."""
    half = (GAUSSIAN_WINDOW - 1) / 2
    t = torch.arange(GAUSSIAN_WINDOW, dtype=like.dtype, device=like.device) - half
    g = torch.exp(-0.5 * (t / GAUSSIAN_SIGMA) ** 2)
    return g / g.sum()


def _separable_filter(images: Tensor, kernel: Tensor) -> Tensor:
    """Valid 2-D correlation of each channel with the outer product kernel ⊗ kernel.

    images: ``(B, C, H, W)``; kernel ``(k,)`` → ``(B, C, H − k + 1, W − k + 1)``.
    """
    channels = images.shape[1]
    size = kernel.shape[0]
    rows = kernel.reshape(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = kernel.reshape(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(images, rows, groups=channels), cols, groups=channels)


def ssim(
    x_hat: Tensor,
    x: Tensor,
    data_range: float | Tensor,
    window: SSIMWindow = "gaussian",
) -> Tensor:
    """Structural similarity, mean of the SSIM map per image.

    With local means μ, variances σ², covariance σ_x̂x over a window, c1 = (0.01 L)², c2 = (0.03 L)²:
    SSIM = (2 μ_x̂ μ_x + c1)(2 σ_x̂x + c2) / ((μ_x̂² + μ_x² + c1)(σ_x̂² + σ_x² + c2)).

    * ``"gaussian"`` (torchmetrics ≥ 1.5 defaults, used by SSIBench): 11×11 Gaussian window σ = 1.5,
      both images reflect-padded by 5, variances E[·²] − μ² clamped at 0, mean over the full H × W
      map (torchmetrics < 1.5 cropped a 5-pixel border before averaging). Needs H, W ≥ 6.
    * ``"uniform"`` (scikit-image ``structural_similarity`` defaults, used by fastMRI): 7×7 uniform
      window, sample (co)variances (× NP/(NP − 1), NP = 49), mean over the valid region, i.e.
      without a 3-pixel border, where the window lies inside the image. Needs H, W ≥ 7.

    Args:
        x_hat: reconstruction ``(B, 1, H, W)`` or ``(B, H, W)``.
        x: ground truth, same shape.
        data_range: L, a float or a ``(B,)`` tensor (one per image).
        window: ``"gaussian"`` or ``"uniform"``.

    Returns:
        ``(B,)``.

    Raises:
        ValueError: on an unknown window, mismatched shapes or an image smaller than the window.
    """
    x_hat, x = _as_images(x_hat, x, "ssim")
    if window == "gaussian":
        kernel = _gaussian_kernel(x)
        pad = (GAUSSIAN_WINDOW - 1) // 2
        min_size = pad + 1  # reflect padding needs pad < size
    elif window == "uniform":
        kernel = torch.full((UNIFORM_WINDOW,), 1.0 / UNIFORM_WINDOW, dtype=x.dtype, device=x.device)
        pad = 0
        min_size = UNIFORM_WINDOW
    else:
        raise ValueError(f"ssim: unknown window {window!r}; valid windows: gaussian, uniform")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"ssim: the {window} window needs images of at least {min_size}×{min_size}; "
            f"got {tuple(x.shape[-2:])}"
        )

    if pad:
        x_hat = F.pad(x_hat, (pad, pad, pad, pad), mode="reflect")
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    channels = x.shape[1]
    stack = torch.cat((x_hat, x, x_hat * x_hat, x * x, x_hat * x), dim=1)
    mu_hat, mu, e_hat2, e_2, e_cross = _separable_filter(stack, kernel).split(channels, dim=1)

    var_hat = e_hat2 - mu_hat.pow(2)
    var = e_2 - mu.pow(2)
    cov = e_cross - mu_hat * mu
    if window == "gaussian":
        var_hat, var = var_hat.clamp_min(0), var.clamp_min(0)
    else:
        n_points = UNIFORM_WINDOW**2
        correction = n_points / (n_points - 1)
        var_hat, var, cov = correction * var_hat, correction * var, correction * cov

    peak = _per_image_range(data_range, x)
    c1 = (SSIM_K1 * peak).pow(2)
    c2 = (SSIM_K2 * peak).pow(2)
    ssim_map = ((2 * mu_hat * mu + c1) * (2 * cov + c2)) / (
        (mu_hat.pow(2) + mu.pow(2) + c1) * (var_hat + var + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3))


def image_metrics(x_hat: Tensor, x: Tensor, mode: MetricMode) -> dict[str, Tensor]:
    """PSNR, SSIM and NMSE of the magnitudes of complex images, under a named convention.

    * ``"ssibench"``: L = 1 (DeepInverse's fixed max 1, min 0), Gaussian SSIM.
    * ``"fastmri"``: L = max |x| per image (the volume maximum, one slice per volume), uniform SSIM.

    NMSE = ‖|x̂| − |x|‖² / ‖|x|‖² in both.

    Args:
        x_hat: reconstruction ``(B, 2, H, W)``, real/imaginary in dim 1.
        x: ground truth ``(B, 2, H, W)``.
        mode: one of :data:`METRIC_MODES`.

    Returns:
        ``{"psnr": (B,), "ssim": (B,), "nmse": (B,)}``.

    Raises:
        ValueError: on an unknown mode (lists the valid ones).
    """
    return {name: builtin_metric(x_hat, x, name=name, mode=mode) for name in BUILTIN_METRICS}


def builtin_metric(x_hat: Tensor, x: Tensor, *, name: str, mode: MetricMode) -> Tensor:
    """Built-in metric ``name`` of the magnitudes of ``(B, 2, H, W)`` images: ``(B,)``."""
    if mode not in METRIC_MODES:
        raise ValueError(f"unknown metric mode {mode!r}; valid modes: {', '.join(METRIC_MODES)}")
    mag_hat, mag = complex_abs(x_hat), complex_abs(x)
    if name == "nmse":
        return nmse(mag_hat, mag)
    data_range = 1.0 if mode == "ssibench" else mag.amax(dim=(1, 2, 3))
    if name == "psnr":
        return psnr(mag_hat, mag, data_range)
    return ssim(mag_hat, mag, data_range, window="gaussian" if mode == "ssibench" else "uniform")
