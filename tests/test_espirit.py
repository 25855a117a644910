import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssibench.fft import fft2c, ifft2c
from ssibench.physics import birdcage_maps
from ssibench.physics.espirit import espirit_maps

SIZE = 64
N_COILS = 8
CALIB = 24
#: Pixels removed from the object's edge before maps are judged (ESPIRiT is vague at edges).
ERODE = 3
MIN_CORRELATION = 0.95


def phantom(height, width, centre=(0.0, 0.0), dtype=torch.complex64):
    """An ellipse with smooth magnitude and phase, and its support: ``(H, W)`` complex, bool."""
    y = (torch.arange(height, dtype=torch.float64) - height / 2) / (height / 2) - centre[0]
    x = (torch.arange(width, dtype=torch.float64) - width / 2) / (width / 2) - centre[1]
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    support = (yy / 0.7) ** 2 + (xx / 0.55) ** 2 <= 1
    magnitude = 1 + 0.3 * torch.cos(3 * xx) * torch.sin(2 * yy)
    phase = 0.8 * xx - 0.5 * yy**2
    return (support * torch.polar(magnitude, phase)).to(dtype), support


def erode(support, pixels=ERODE):
    """Binary erosion by a (2p + 1)² square: a pixel survives if its whole neighbourhood is in."""
    outside = (~support).to(torch.float32)[None, None]
    return F.max_pool2d(outside, 2 * pixels + 1, stride=1, padding=pixels)[0, 0] == 0


def simulate(height=SIZE, width=SIZE, n_coils=N_COILS, centre=(0.0, 0.0), dtype=torch.complex64):
    """Fully sampled k-space of the phantom seen by birdcage coils: k, true maps, eroded support."""
    image, support = phantom(height, width, centre, dtype)
    maps = birdcage_maps(n_coils, height, width).to(dtype)
    return fft2c(maps * image), maps, erode(support)


def add_noise(kspace, relative, seed=0):
    """k + n with complex Gaussian n scaled so that ‖n‖ = relative · ‖k‖."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(kspace.shape, generator=generator, dtype=kspace.dtype)
    return kspace + noise * (relative * kspace.norm() / noise.norm())


def correlation(a, b):
    """Per-pixel |⟨a, b⟩| / (‖a‖ ‖b‖) over coils (dim −3), 0 where either is zero."""
    inner = (a.conj() * b).sum(dim=-3).abs()
    norms = a.norm(dim=-3) * b.norm(dim=-3)
    return torch.where(norms > 0, inner / norms.clamp_min(1e-30), 0.0)


def support_of(maps):
    """Where the maps are not zero: ``(..., H, W)`` bool."""
    return maps.abs().sum(dim=-3) > 0


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_recovers_the_coil_maps_inside_the_object(noise):
    kspace, true_maps, inside = simulate()
    maps = espirit_maps(add_noise(kspace, noise), CALIB)
    assert correlation(maps, true_maps)[inside].mean() >= MIN_CORRELATION
    # Unit norm over coils wherever kept, and nothing inside the object is cropped.
    energy = (maps.abs() ** 2).sum(dim=0)
    torch.testing.assert_close(energy[inside], torch.ones_like(energy[inside]), atol=1e-4, rtol=0)


def test_sense_projection_reproduces_the_coil_images():
    kspace, _, inside = simulate()
    maps = espirit_maps(kspace, CALIB)
    coil_images = ifft2c(kspace)
    projected = maps * (maps.conj() * coil_images).sum(dim=0)
    error = (projected - coil_images)[:, inside].norm() / coil_images[:, inside].norm()
    assert error <= 0.02


def test_phase_is_relative_to_the_first_coil():
    kspace, _, _ = simulate()
    first = espirit_maps(kspace, CALIB)[0]
    assert torch.all(first.imag.abs() <= 1e-6)
    assert torch.all(first.real >= 0)


def test_crop_keeps_fewer_pixels_as_it_rises():
    kspace, _, inside = simulate()
    kept = [support_of(espirit_maps(kspace, CALIB, crop=crop)) for crop in (0.0, 0.9, 0.99)]
    assert kept[0].all()
    assert torch.all(kept[1] >= kept[2])  # a subset
    assert kept[1].sum() > kept[2].sum()
    assert kept[2][inside].all()
    assert not kept[1][0, 0]  # the corner is air, far from the object


def test_batch_equals_a_loop_over_samples():
    samples = [simulate(centre=c)[0] for c in ((0.0, 0.0), (0.1, -0.15))]
    samples[1] = add_noise(samples[1], 0.05)
    batch = espirit_maps(torch.stack(samples), CALIB)
    assert batch.shape == (2, N_COILS, SIZE, SIZE)
    for sample, maps in zip(samples, batch, strict=True):
        single = espirit_maps(sample, CALIB)
        assert single.shape == (N_COILS, SIZE, SIZE)
        torch.testing.assert_close(maps, single, atol=1e-5, rtol=0)
    assert not torch.allclose(batch[0], batch[1], atol=1e-2)


@pytest.mark.parametrize("calib_size", [(SIZE, 20), (20, SIZE), (20, 28)])
def test_rectangular_calibration_block(calib_size):
    kspace, true_maps, inside = simulate()
    maps = espirit_maps(kspace, calib_size)
    assert correlation(maps, true_maps)[inside].mean() >= MIN_CORRELATION


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_output_dtype_follows_the_input(dtype):
    kspace, _, _ = simulate(dtype=dtype)
    maps = espirit_maps(kspace, CALIB)
    assert maps.dtype == dtype
    assert maps.shape == kspace.shape


def test_single_and_double_precision_agree():
    kspace, _, inside = simulate(dtype=torch.complex128)
    double = espirit_maps(kspace, CALIB)
    single = espirit_maps(kspace.to(torch.complex64), CALIB)
    torch.testing.assert_close(
        single[:, inside], double[:, inside].to(single.dtype), atol=1e-4, rtol=0
    )


def literal_espirit(kspace, calib_size, kernel_size, threshold, crop):
    """The paper's construction step by step, one coil image of one kernel at a time.

    kspace: ``(N, H, W)`` complex128. A slow oracle for the lag-domain shortcut of the module.
    """
    n_coils, height, width = kspace.shape
    rows, cols = calib_size
    top, left = height // 2 - rows // 2, width // 2 - cols // 2
    calib = kspace[:, top : top + rows, left : left + cols]
    windows = [
        calib[:, r : r + kernel_size, c : c + kernel_size].reshape(-1)
        for r in range(rows - kernel_size + 1)
        for c in range(cols - kernel_size + 1)
    ]
    _, singular, vh = torch.linalg.svd(torch.stack(windows), full_matrices=False)
    kernels = vh[singular > threshold * singular[0]].reshape(-1, n_coils, kernel_size, kernel_size)
    gram = torch.zeros(height, width, n_coils, n_coils, dtype=kspace.dtype)
    for kernel in kernels:
        padded = torch.zeros(n_coils, height, width, dtype=kspace.dtype)
        r0, c0 = height // 2 - kernel_size // 2, width // 2 - kernel_size // 2
        padded[:, r0 : r0 + kernel_size, c0 : c0 + kernel_size] = kernel
        image = ifft2c(padded).permute(1, 2, 0)  # (H, W, N)
        gram += image[..., :, None] * image[..., None, :].conj()
    gram *= height * width / kernel_size**2
    values, vectors = torch.linalg.eigh(gram)
    maps = vectors[..., -1].permute(2, 0, 1)
    maps = maps * maps[0].conj() / maps[0].abs()
    return maps * (values[..., -1] > crop), values[..., -1]


@pytest.mark.parametrize(
    ("shape", "calib_size", "kernel_size"),
    [((31, 36), (15, 17), 5), ((32, 32), (16, 16), 6), ((24, 40), (24, 12), 7)],
)
def test_matches_the_literal_construction(shape, calib_size, kernel_size):
    kspace, _, _ = simulate(*shape, n_coils=4, dtype=torch.complex128)
    kspace = add_noise(kspace, 0.02)
    expected, eigenvalue = literal_espirit(kspace, calib_size, kernel_size, 0.02, 0.95)
    maps = espirit_maps(kspace, calib_size, kernel_size=kernel_size)
    # Pixels whose eigenvalue sits on the crop level may fall either way by rounding.
    clear = (eigenvalue - 0.95).abs() > 1e-9
    torch.testing.assert_close(maps[:, clear], expected[:, clear], atol=1e-8, rtol=0)
    assert support_of(expected).any()


def test_runs_on_the_meta_device():
    # Meta tensors hold no data, so any host sync or data-dependent shape would raise here.
    kspace = torch.empty(2, 4, 32, 32, dtype=torch.complex64, device="meta")
    maps = espirit_maps(kspace, 16)
    assert maps.shape == kspace.shape
    assert maps.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_agrees_with_cpu():
    kspace, _, inside = simulate()
    cpu = espirit_maps(kspace, CALIB)
    cuda = espirit_maps(kspace.cuda(), CALIB)
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu()[:, inside], cpu[:, inside], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("kspace", "calib_size", "options", "message"),
    [
        (torch.ones(4, 32, 32), 16, {}, r"complex.*torch\.float32 \(4, 32, 32\)"),
        (torch.ones(32, 32, dtype=torch.complex64), 16, {}, r"\(B, N, H, W\).*\(32, 32\)"),
        (torch.ones(1, 1, 4, 32, 32, dtype=torch.complex64), 16, {}, r"\(1, 1, 4, 32, 32\)"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 40, {}, r"\(40, 40\) is larger.*\(32, 32\)"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), (32, 33), {}, r"larger"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 5, {}, r"\(5, 5\) is smaller.*\(6, 6\)"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), (16, 8), {"kernel_size": 9}, r"smaller"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), (16, 16, 16), {}, r"pair of ints"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 16.0, {}, r"got 16\.0"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 16, {"kernel_size": 0}, r"kernel_size"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 16, {"threshold": 1.0}, r"threshold"),
        (torch.ones(4, 32, 32, dtype=torch.complex64), 16, {"crop": -0.1}, r"crop.*-0\.1"),
    ],
)
def test_bad_input_raises_a_clear_error(kspace, calib_size, options, message):
    with pytest.raises(ValueError, match=message):
        espirit_maps(kspace, calib_size, **options)


@pytest.mark.parametrize(("shape", "calib_width"), [((SIZE, SIZE), CALIB), ((63, 60), 23)])
def test_agrees_with_sigpy(shape, calib_width):
    sigpy = pytest.importorskip("sigpy")
    pytest.importorskip("sigpy.mri")
    kspace, _, inside = simulate(*shape)
    kspace = add_noise(kspace, 0.02)
    reference = sigpy.mri.app.EspiritCalib(
        kspace.numpy(),
        calib_width=calib_width,
        thresh=0.02,
        kernel_width=6,
        crop=0.95,
        device=sigpy.cpu_device,
        show_pbar=False,
    ).run()
    reference = torch.from_numpy(np.asarray(reference))
    maps = espirit_maps(kspace, calib_width)
    ours, theirs = support_of(maps), support_of(reference)
    # sigpy's power iteration may leave pixels whose eigenvalue is near the crop level undecided.
    assert (ours ^ theirs).float().mean() <= 0.01
    both = ours & theirs
    assert both[inside].all()
    assert correlation(maps, reference)[both].mean() >= 0.999
    # Both are phase-normalised to coil 0, so they agree as values, not only up to a phase.
    assert (maps - reference)[:, both].abs().max() <= 1e-3
    assert math.isclose(float(correlation(maps, reference)[inside].min()), 1.0, abs_tol=1e-4)
