"""Image quality metrics on magnitude images: PSNR, SSIM, NMSE, one value per image.

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

The registry :data:`METRICS` (name → :class:`MetricSpec`) holds what evaluation can write to
``metrics.csv``: the built-ins ``psnr``, ``ssim`` and ``nmse`` (computed in each metric mode as by
:func:`image_metrics`) and the metrics added with :func:`register_metric`, functions
``(x_hat, x) -> (B,)`` of the complex images ``(B, 2, H, W)``, the same in both modes.

SSIM: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ssibench.errors import ConfigError

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_METRICS",
    "METRICS",
    "METRIC_MODES",
    "MetricSpec",
    "check_metric_names",
    "complex_abs",
    "compute_metrics",
    "image_metrics",
    "nmse",
    "psnr",
    "register_metric",
    "ssim",
]

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
    return {name: _builtin(x_hat, x, name=name, mode=mode) for name in BUILTIN_METRICS}


def _builtin(x_hat: Tensor, x: Tensor, *, name: str, mode: MetricMode) -> Tensor:
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


#: A metric: ``(x_hat, x) -> (B,)``, images ``(B, 2, H, W)`` (real/imaginary in dim 1).
MetricFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MetricSpec:
    """A metric evaluation can write to ``metrics.csv``: one value per test image.

    Attributes:
        fn: ``(x_hat, x) -> (B,)`` of images ``(B, 2, H, W)`` (a built-in's ``ssibench`` mode).
        higher_is_better: whether a larger value is better (PSNR, SSIM) or worse (NMSE).
        modes: metric mode → function for the built-ins; empty (``fn`` in both modes) otherwise.
    """

    fn: MetricFn
    higher_is_better: bool = True
    modes: Mapping[str, MetricFn] = field(default_factory=dict)

    def __call__(self, x_hat: Tensor, x: Tensor, mode: MetricMode = "ssibench") -> Tensor:
        """The metric of ``(B, 2, H, W)`` images in metric ``mode``: ``(B,)``."""
        return self.modes.get(mode, self.fn)(x_hat, x)


#: The built-in metrics, in the column order of ``metrics.csv``.
BUILTIN_METRICS = ("psnr", "ssim", "nmse")
#: What evaluation writes when the config names no metrics (the tables need all three).
DEFAULT_METRICS = BUILTIN_METRICS
#: Columns of ``metrics.csv`` a metric name may not take; ``zf_<name>`` is its baseline column.
RESERVED_NAMES = ("scenario", "method", "seed", "sample", "mode", "store_hash", "code_hash")
#: A metric name: a column of ``metrics.csv`` and an entry of the config's ``metrics`` list.
METRIC_NAME = re.compile(r"^(?!zf_)[A-Za-z][A-Za-z0-9_]*$")


def _builtin_spec(name: str) -> MetricSpec:
    modes = {mode: functools.partial(_builtin, name=name, mode=mode) for mode in METRIC_MODES}
    return MetricSpec(modes["ssibench"], higher_is_better=name != "nmse", modes=modes)


#: Every metric by name: the built-ins, then those added with :func:`register_metric`.
METRICS: dict[str, MetricSpec] = {name: _builtin_spec(name) for name in BUILTIN_METRICS}


def register_metric(
    name: str, fn: Callable[[Tensor, Tensor], Tensor], *, higher_is_better: bool = True
) -> None:
    """Add metric ``name`` to :data:`METRICS`, for the config's ``metrics`` list to choose.

    Evaluation writes it as the column ``<name>`` of ``metrics.csv`` (``zf_<name>`` for the
    zero-filled baseline) in the rows of both metric modes; e.g. the mean absolute error of the
    magnitudes, MAE = (1/HW) Σ ||x̂| − |x||, is
    ``lambda x_hat, x: (complex_abs(x_hat) - complex_abs(x)).abs().mean(dim=(1, 2, 3))``.

    Args:
        name: letters, digits and ``_``, starting with a letter; not a registered metric, not a
            column of ``metrics.csv`` (:data:`RESERVED_NAMES`) and not starting with ``zf_``.
        fn: ``(x_hat, x) -> (B,)`` of ``(B, 2, H, W)`` images (real/imaginary in dim 1).
        higher_is_better: whether a larger value is better.

    Raises:
        ConfigError: a name already registered or not allowed, a non-callable ``fn`` or a
            non-bool ``higher_is_better``; the message names the metric and the fix.
    """
    where = f"register_metric: metric {name!r}"
    if name in METRICS:
        kind = "a built-in metric" if name in BUILTIN_METRICS else "already registered"
        raise ConfigError(f"{where} is {kind}; register yours under another name, e.g. 'my_{name}'")
    if not isinstance(name, str) or not METRIC_NAME.match(name) or name in RESERVED_NAMES:
        raise ConfigError(
            f"{where}: not a valid name; use letters, digits and '_', starting with a letter, "
            f"not zf_… nor a column of metrics.csv ({', '.join(RESERVED_NAMES)})"
        )
    if not callable(fn):
        raise ConfigError(f"{where}: fn must be callable (x_hat, x) -> (B,); got {fn!r}")
    if not isinstance(higher_is_better, bool):
        raise ConfigError(f"{where}: higher_is_better must be a bool; got {higher_is_better!r}")
    METRICS[name] = MetricSpec(fn, higher_is_better)


def check_metric_names(names: object, where: str = "metrics") -> tuple[str, ...]:
    """The names of the config list ``where`` (None: :data:`DEFAULT_METRICS`), all in METRICS.

    Raises:
        ConfigError: not a non-empty list, an unknown (listing the valid ones) or repeated name.
    """
    if names is None:
        return DEFAULT_METRICS
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ConfigError(f"{where}: expected a non-empty list of metric names; got {names!r}")
    for index, name in enumerate(names):
        if not isinstance(name, str) or name not in METRICS:
            close = difflib.get_close_matches(str(name), list(METRICS), n=1)
            raise ConfigError(
                f"{where}[{index}]: unknown metric {name!r}"
                f"{f' (did you mean {close[0]!r}?)' if close else ''}; valid: "
                f"{', '.join(METRICS)} (a plugin registers more with ssibench.register_metric)"
            )
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ConfigError(f"{where}: metric(s) {', '.join(repeated)} listed more than once")
    return tuple(names)


def compute_metrics(
    x_hat: Tensor, x: Tensor, names: Sequence[str], mode: MetricMode
) -> dict[str, Tensor]:
    """Metrics ``names`` of :data:`METRICS` of ``(B, 2, H, W)`` images in ``mode``: name → ``(B,)``.

    Raises:
        ConfigError: for an unknown name, or a metric that does not return a ``(B,)`` tensor.
    """
    values = {}
    for name in check_metric_names(list(names)):
        value = METRICS[name](x_hat, x, mode)
        if not isinstance(value, Tensor) or tuple(value.shape) != (x.shape[0],):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ConfigError(
                f"metric {name!r} returned {got}, not one value per image ({x.shape[0]},); "
                "reduce every dim but the batch dim"
            )
        values[name] = value
    return values
