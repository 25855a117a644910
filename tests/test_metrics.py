from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from ssibench.evaluation import METRIC_MODES, complex_abs, image_metrics, nmse, psnr, ssim


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(2024)


def as_complex_image(magnitude: Tensor) -> Tensor:
    """(B, 1, H, W) magnitude → (B, 2, H, W) with a zero imaginary part."""
    return torch.cat((magnitude, torch.zeros_like(magnitude)), dim=1)


# ------------------------------------------------------ slow, independent SSIM reference (numpy)


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float, window: str) -> float:
    """SSIM of two (H, W) images by explicit loops over windows, in float64.

    gaussian: torchmetrics — 11×11 weights exp(−t²/4.5) normalised, images reflect-padded by 5
    (numpy 'reflect' = edge not repeated), one window per pixel, population moments, variances
    clamped at 0, mean over all H×W windows.
    uniform: scikit-image — every 7×7 window inside the image, sample moments (ddof = 1).
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    if window == "gaussian":
        t = np.arange(11) - 5.0
        g = np.exp(-(t**2) / (2 * 1.5**2))
        w = np.outer(g, g) / np.outer(g, g).sum()
        pa, pb = np.pad(a, 5, mode="reflect"), np.pad(b, 5, mode="reflect")
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                wa, wb = pa[i : i + 11, j : j + 11], pb[i : i + 11, j : j + 11]
                ma, mb = (w * wa).sum(), (w * wb).sum()
                va = max((w * (wa - ma) ** 2).sum(), 0.0)
                vb = max((w * (wb - mb) ** 2).sum(), 0.0)
                cov = (w * (wa - ma) * (wb - mb)).sum()
                values.append(
                    (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
                )
    else:
        for wa, wb in zip(
            np.lib.stride_tricks.sliding_window_view(a, (7, 7)).reshape(-1, 49),
            np.lib.stride_tricks.sliding_window_view(b, (7, 7)).reshape(-1, 49),
            strict=True,
        ):
            ma, mb = wa.mean(), wb.mean()
            va, vb = wa.var(ddof=1), wb.var(ddof=1)
            cov = np.cov(wa, wb, ddof=1)[0, 1]
            values.append(
                (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_matches_slow_reference(window: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16))
    x_hat = np.clip(x + 0.1 * rng.standard_normal((2, 16, 16)), 0, None)
    data_range = np.array([1.0, 1.7])
    expected = [reference_ssim(x_hat[b], x[b], data_range[b], window) for b in range(2)]
    got = ssim(
        torch.from_numpy(x_hat), torch.from_numpy(x), torch.from_numpy(data_range), window=window
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_float32_close_to_float64(window: str, generator: torch.Generator) -> None:
    x = torch.rand(2, 1, 16, 16, generator=generator, dtype=torch.float64)
    x_hat = x + 0.05 * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    exact = ssim(x_hat, x, 1.0, window=window)
    single = ssim(x_hat.float(), x.float(), 1.0, window=window)
    torch.testing.assert_close(single.double(), exact, rtol=0, atol=1e-5)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_of_an_image_with_itself_is_one(window: str, generator: torch.Generator) -> None:
    x = torch.rand(3, 1, 16, 16, generator=generator)
    torch.testing.assert_close(ssim(x, x, 1.0, window=window), torch.ones(3))


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_of_constant_images_is_the_luminance_term(window: str) -> None:
    # σ = 0 everywhere, so SSIM = (2ab + c1)(0 + c2) / ((a² + b² + c1)(0 + c2)).
    a, b, data_range = 0.6, 0.5, 1.0
    c1 = (0.01 * data_range) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)  # = 0.6001 / 0.6101
    x_hat = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    x = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    torch.testing.assert_close(
        ssim(x_hat, x, data_range, window=window),
        torch.tensor([expected], dtype=torch.float64),
    )


def test_ssim_windows_differ(generator: torch.Generator) -> None:
    x = torch.rand(1, 1, 16, 16, generator=generator)
    x_hat = x + 0.1 * torch.randn(x.shape, generator=generator)
    gaussian, uniform = ssim(x_hat, x, 1.0), ssim(x_hat, x, 1.0, window="uniform")
    assert abs(gaussian.item() - uniform.item()) > 1e-3


def test_ssim_accepts_three_dim_images(generator: torch.Generator) -> None:
    x = torch.rand(2, 16, 16, generator=generator)
    x_hat = torch.rand(2, 16, 16, generator=generator)
    torch.testing.assert_close(ssim(x_hat, x, 1.0), ssim(x_hat[:, None], x[:, None], 1.0))


def test_ssim_rejects_unknown_window_and_tiny_images() -> None:
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="valid windows: gaussian, uniform"):
        ssim(x, x, 1.0, window="box")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 7"):
        ssim(x[..., :6, :6], x[..., :6, :6], 1.0, window="uniform")


# ------------------------------------------------------------------------------------- PSNR


def test_psnr_of_constant_offset_is_20_db(generator: torch.Generator) -> None:
    x = torch.rand(3, 1, 8, 8, generator=generator, dtype=torch.float64)
    # MSE = 0.01 → PSNR = 10 log₁₀(1 / 0.01) = 20 dB.
    torch.testing.assert_close(psnr(x + 0.1, x, 1.0), torch.full((3,), 20.0, dtype=torch.float64))


def test_psnr_per_image_data_range(generator: torch.Generator) -> None:
    x = torch.rand(2, 8, 8, generator=generator, dtype=torch.float64)
    # peaks 1 and 10 with MSE 0.01: 20 dB and 40 dB.
    got = psnr(x - 0.1, x, torch.tensor([1.0, 10.0], dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor([20.0, 40.0], dtype=torch.float64))


def test_psnr_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(1, 1, 8, 8\) and \(1, 1, 8, 9\)"):
        psnr(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9), 1.0)


def test_data_range_of_wrong_length_is_rejected() -> None:
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="B = 2"):
        psnr(x, x + 0.1, torch.ones(3))


# ------------------------------------------------------------------------------------- NMSE


def test_nmse_hand_case() -> None:
    # ‖x‖² = 1 + 4 + 9 + 16 = 30, ‖x̂ − x‖² = 1 + 0 + 0 + 4 = 5 → 1/6.
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.float64)
    x_hat = torch.tensor([[[2.0, 2.0], [3.0, 2.0]]], dtype=torch.float64)
    torch.testing.assert_close(nmse(x_hat, x), torch.tensor([1 / 6], dtype=torch.float64))


# -------------------------------------------------------------------------------- complex_abs


def test_complex_abs_is_the_magnitude_with_a_finite_gradient_at_zero() -> None:
    x = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]], requires_grad=True)  # (1, 2, 1, 2)
    magnitude = complex_abs(x)
    assert magnitude.shape == (1, 1, 1, 2)
    torch.testing.assert_close(magnitude.detach(), torch.tensor([[[[5.0, 0.0]]]]))
    magnitude.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_complex_abs_rejects_a_missing_complex_dim() -> None:
    with pytest.raises(ValueError, match=r"got \(1, 3, 4, 4\)"):
        complex_abs(torch.rand(1, 3, 4, 4))


# ------------------------------------------------------------------------------ image_metrics


@pytest.mark.parametrize("mode", METRIC_MODES)
def test_image_metrics_return_one_value_per_image(mode: str, generator: torch.Generator) -> None:
    x = torch.rand(3, 2, 16, 16, generator=generator)
    x_hat = x + 0.05 * torch.randn(x.shape, generator=generator)
    values = image_metrics(x_hat, x, mode)
    assert set(values) == {"psnr", "ssim", "nmse"}
    for value in values.values():
        assert value.shape == (3,)
        assert torch.isfinite(value).all()


def test_image_metrics_use_the_magnitude(generator: torch.Generator) -> None:
    # Rotating the phase leaves every magnitude metric unchanged.
    x = torch.rand(2, 2, 16, 16, generator=generator)
    x_hat = torch.rand(2, 2, 16, 16, generator=generator)
    rotated = torch.stack((-x_hat[:, 1], x_hat[:, 0]), dim=1)  # multiply by i
    for mode in METRIC_MODES:
        a, b = image_metrics(x_hat, x, mode), image_metrics(rotated, x, mode)
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_fastmri_mode_uses_the_target_maximum_as_data_range(generator: torch.Generator) -> None:
    magnitude = torch.rand(2, 1, 16, 16, generator=generator, dtype=torch.float64)
    magnitude[0, 0, 3, 4] = 2.0
    magnitude[1, 0, 7, 1] = 4.0
    x = as_complex_image(magnitude)
    x_hat = as_complex_image(magnitude + 0.2)  # MSE = 0.04 on nonnegative magnitudes
    fastmri = image_metrics(x_hat, x, "fastmri")
    ssibench = image_metrics(x_hat, x, "ssibench")
    expected_psnr = [10 * math.log10(4.0 / 0.04), 10 * math.log10(16.0 / 0.04)]  # 20, 26.02 dB
    torch.testing.assert_close(fastmri["psnr"], torch.tensor(expected_psnr, dtype=torch.float64))
    torch.testing.assert_close(
        ssibench["psnr"], torch.full((2,), 10 * math.log10(1 / 0.04), dtype=torch.float64)
    )
    peaks = torch.tensor([2.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(
        fastmri["ssim"], ssim(magnitude + 0.2, magnitude, peaks, window="uniform")
    )
    torch.testing.assert_close(ssibench["ssim"], ssim(magnitude + 0.2, magnitude, 1.0))
    torch.testing.assert_close(fastmri["nmse"], ssibench["nmse"])


def test_image_metrics_are_differentiable(generator: torch.Generator) -> None:
    x = torch.rand(2, 2, 16, 16, generator=generator)
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=generator)).requires_grad_()
    for mode in METRIC_MODES:
        values = image_metrics(x_hat, x, mode)
        total = sum(v.sum() for v in values.values())
        (grad,) = torch.autograd.grad(total, x_hat)
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


def test_image_metrics_unknown_mode_lists_valid_modes() -> None:
    x = torch.rand(1, 2, 16, 16)
    with pytest.raises(ValueError, match="valid modes: ssibench, fastmri"):
        image_metrics(x, x, "skimage")  # type: ignore[arg-type]
