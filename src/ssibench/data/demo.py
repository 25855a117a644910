"""The embedded demo data set: fastMRI-format multicoil brain volumes built without any download.

Each pseudo-subject starts from the MNI ICBM152 2009 T1 template (1 mm, skull-stripped) that
nilearn ships in its package data (Fonov et al., "Unbiased average age-appropriate atlases for
pediatric studies", NeuroImage 2011). Per subject, from a numpy generator seeded by the ``demo``
stream and the volume number:

1. an axial slab of ``n_slices`` slices, :data:`SLICE_SPACING_MM` apart, whose middle slice lies at
   a random height in :data:`MIDDLE_SLICE_MNI_Z_MM` (lateral ventricles, basal ganglia, thalamus);
2. in-plane geometry: a random rotation (± :data:`MAX_ROTATION_DEG`), zoom, shift and a smooth
   random displacement field (:data:`DEFORMATION_MM` std on a coarse control grid, cubic-spline
   upsampled), sampled by cubic-spline interpolation on a ``height × width`` grid whose field of
   view fits the brain (filling :data:`BRAIN_FILL` of it), after a Gaussian pre-blur against
   aliasing;
3. contrast: a random monotone piecewise-linear map of the template's tissue intensities (CSF, grey
   and white matter), a random power law and a mild smooth multiplicative bias field;
4. a smooth random phase (second-order polynomial in the image coordinates plus a per-slice offset);
5. ``n_coils`` birdcage coil sensitivities Sₙ (:func:`ssibench.physics.birdcage_maps`), readout
   oversampling ×2 (coil images zero-padded along rows to 2·height) and the centred orthonormal FFT,
   plus complex Gaussian thermal noise of std :data:`NOISE_FRACTION` × max |image|.

The files then follow fastMRI's layout: ``kspace`` complex64 (slices, coils, 2·height, width);
``reconstruction_rss`` float32 (slices, height, width) = √(Σₙ |F⁻¹ kₙ|²) centre-cropped to
height × width (rows [height//2, height//2 + height)), exactly what fastMRI stores; an ISMRMRD
header; attrs ``acquisition``, ``max``, ``norm``, ``patient_id``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from ssibench.data.fastmri import center_crop
from ssibench.errors import ConfigError
from ssibench.fft import fft2c, ifft2c
from ssibench.io import atomic_path
from ssibench.physics import birdcage_maps
from ssibench.progress import counted
from ssibench.rng import derive_seed

__all__ = [
    "demo_volume",
    "ismrmrd_header",
    "load_template",
    "write_demo_volumes",
]

#: MNI z range (mm) of the middle slice: basal ganglia to the top of the lateral ventricles.
MIDDLE_SLICE_MNI_Z_MM = (4.0, 24.0)
#: Distance between neighbouring slices of a slab (fastMRI brain slices are ~5 mm thick).
SLICE_SPACING_MM = 3.0
#: Fraction of the field of view the brain's longer in-plane extent fills (before random zoom).
BRAIN_FILL = 0.8
#: Standard deviation of the log random zoom (≈ ±6 % head-size variation).
ZOOM_LOG_STD = 0.06
#: Largest in-plane rotation, degrees (uniform in ± this).
MAX_ROTATION_DEG = 10.0
#: Standard deviation of the random shift of the head in the field of view, mm.
SHIFT_MM = 4.0
#: Control points per side of the coarse grids of the displacement and bias fields
#: (fewer = smoother).
CONTROL_GRID = 5
#: Standard deviation of each control-point displacement, mm.
DEFORMATION_MM = 3.0
#: Template intensities of the contrast knots: background, CSF, grey matter, white matter, maximum
#: (read off the template's histogram: CSF ≈ 0.3, GM ≈ 0.6, WM ≈ 0.85).
TISSUE_KNOTS = (0.0, 0.3, 0.6, 0.85, 1.0)
#: Standard deviation of the log of each contrast segment's slope.
CONTRAST_LOG_STD = 0.3
#: Standard deviation of the log of the power-law exponent γ (image ← image^γ).
GAMMA_LOG_STD = 0.15
#: Standard deviation of the smooth log bias field (≈ ±10 % intensity shading).
BIAS_LOG_STD = 0.1
#: Standard deviation (radians) of the coefficients of the second-order phase polynomial.
PHASE_STD = 1.0
#: Thermal noise std per real/imaginary k-space component, relative to the volume's max |image|.
NOISE_FRACTION = 0.002
#: Gaussian pre-blur std in units of the output pixel size (anti-aliasing when down-sampling).
ANTIALIAS_SIGMA = 0.4
#: Readout oversampling factor of the simulated acquisition (fastMRI brain: rows = 2 × 320).
READOUT_OVERSAMPLING = 2
#: Template intensity above which a voxel counts as brain (for the field-of-view fit).
BRAIN_THRESHOLD = 0.05


@functools.lru_cache(maxsize=1)
def _template() -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The template's voxel array ``(X, Y, Z)`` (RAS) and affine, loaded once per process."""
    from nilearn.datasets import load_mni152_template  # heavy import, only the demo needs it

    image = load_mni152_template(resolution=1)
    return np.asarray(image.get_fdata(), dtype=np.float32), np.asarray(image.affine)


def load_template() -> NDArray[np.float32]:
    """The 1 mm MNI ICBM152 T1 template as axial slices, nose up: ``(Z, Y, X)`` float32 in [0, 1].

    ``slices[z]`` is the axial plane at voxel height z with rows running anterior → posterior and
    columns patient right → left (radiological view), i.e. nilearn's ``data[::-1, ::-1, z].T``.
    Loaded from nilearn's package data (no network); cached for the process.
    """
    data, _ = _template()
    return np.ascontiguousarray(data[::-1, ::-1, :].transpose(2, 1, 0))


class _TemplateGeometry(NamedTuple):
    """The axial template and where its brain lies."""

    slices: NDArray[np.float32]
    """``(Z, Y, X)`` axial slices, nose up (:func:`load_template`)."""
    z_range: tuple[int, int]
    """Slice indices of :data:`MIDDLE_SLICE_MNI_Z_MM`."""
    centre: tuple[float, float]
    """Centre of the brain's bounding box, (row, col) voxels."""
    extent: tuple[float, float]
    """Size of the brain's bounding box, (rows, cols) voxels = mm."""


@functools.lru_cache(maxsize=1)
def _template_geometry() -> _TemplateGeometry:
    """Load the template and measure its brain's bounding box (once per process)."""
    slices = load_template()
    _, affine = _template()
    brain = np.argwhere(slices > BRAIN_THRESHOLD)
    low, high = brain.min(axis=0), brain.max(axis=0)
    z_low, z_high = (round((z - affine[2, 3]) / affine[2, 2]) for z in MIDDLE_SLICE_MNI_Z_MM)
    return _TemplateGeometry(
        slices=slices,
        z_range=(z_low, z_high),
        centre=((low[1] + high[1]) / 2, (low[2] + high[2]) / 2),
        extent=(float(high[1] - low[1] + 1), float(high[2] - low[2] + 1)),
    )


def _smooth_field(rng: np.random.Generator, std: float, shape: tuple[int, int]) -> NDArray:
    """A smooth random field on ``shape``: a coarse Gaussian grid upsampled by cubic splines."""
    coarse = rng.normal(0.0, std, size=(CONTROL_GRID, CONTROL_GRID))
    rows = np.linspace(0, CONTROL_GRID - 1, shape[0])
    cols = np.linspace(0, CONTROL_GRID - 1, shape[1])
    grid = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(coarse, grid, order=3, mode="nearest")


def _contrast(image: NDArray, rng: np.random.Generator) -> NDArray:
    """Random monotone tissue-contrast map, power law and bias field, keeping 0 at 0 and max ≈ 1."""
    knots = np.asarray(TISSUE_KNOTS)
    slopes = np.exp(rng.normal(0.0, CONTRAST_LOG_STD, size=knots.size - 1))
    values = np.concatenate([[0.0], np.cumsum(np.diff(knots) * slopes)])
    mapped = np.interp(image, knots, values / values[-1])
    gamma = math.exp(rng.normal(0.0, GAMMA_LOG_STD))
    bias = np.exp(_smooth_field(rng, BIAS_LOG_STD, image.shape[-2:]))
    return np.power(mapped, gamma) * bias


def demo_volume(
    volume: int,
    n_slices: int,
    height: int,
    width: int,
    n_coils: int,
    seed: int,
) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
    """Simulate the multicoil k-space and RSS target of pseudo-subject ``volume`` (see module doc).

    Args:
        volume: pseudo-subject number (with ``seed``, seeds its numpy generator).
        n_slices: slices S in the slab.
        height: rows H of the reconstructed image.
        width: columns W (phase-encode direction).
        n_coils: receive coils N.
        seed: master seed; the generator is ``default_rng((derive_seed(seed, "demo"), volume))``.

    Returns:
        ``kspace`` complex64 ``(S, N, 2H, W)`` and ``reconstruction_rss`` float32 ``(S, H, W)``.
    """
    rng = np.random.default_rng((derive_seed(seed, "demo"), volume))
    template, (z_low, z_high), centre, extent = _template_geometry()

    # 1. slab around a random middle slice
    middle = int(rng.integers(z_low, z_high + 1))
    offsets = (np.arange(n_slices) - n_slices // 2) * round(SLICE_SPACING_MM)
    slab = template[np.clip(middle + offsets, 0, template.shape[0] - 1)]

    # 2. geometry: output pixel (i, j) → template (row, col) in mm (1 mm voxels)
    pixel_mm = max(extent[0] / height, extent[1] / width) / BRAIN_FILL
    pixel_mm *= math.exp(rng.normal(0.0, ZOOM_LOG_STD))
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    shift = rng.normal(0.0, SHIFT_MM, size=2)
    i, j = np.meshgrid(
        (np.arange(height) + 0.5 - height / 2) * pixel_mm,
        (np.arange(width) + 0.5 - width / 2) * pixel_mm,
        indexing="ij",
    )
    cos, sin = math.cos(angle), math.sin(angle)
    displacement = [_smooth_field(rng, DEFORMATION_MM, (height, width)) for _ in range(2)]
    rows = centre[0] + shift[0] + cos * i - sin * j + displacement[0]
    cols = centre[1] + shift[1] + sin * i + cos * j + displacement[1]
    blur = ANTIALIAS_SIGMA * pixel_mm if pixel_mm > 1 else 0.0
    magnitude = np.stack(
        [
            ndimage.map_coordinates(
                ndimage.gaussian_filter(plane, blur) if blur else plane,
                [rows, cols],
                order=3,
                mode="constant",
                cval=0.0,
            )
            for plane in slab
        ]
    ).clip(0.0, None)

    # 3. contrast, 4. phase
    magnitude = _contrast(magnitude, rng)
    u, v = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    coefficients = rng.normal(0.0, PHASE_STD, size=5)
    phase = sum(c * t for c, t in zip(coefficients, (u, v, u * u, u * v, v * v), strict=True))
    phase = phase[None] + rng.uniform(-math.pi, math.pi, size=(n_slices, 1, 1))
    image = torch.from_numpy((magnitude * np.exp(1j * phase)).astype(np.complex64))

    # 5. coils, readout oversampling, FFT, thermal noise
    coil_images = birdcage_maps(n_coils, height, width) * image[:, None]
    pad_top = (READOUT_OVERSAMPLING * height - height) // 2
    padded = torch.zeros(
        n_slices, n_coils, READOUT_OVERSAMPLING * height, width, dtype=torch.complex64
    )
    padded[:, :, pad_top : pad_top + height] = coil_images
    kspace = fft2c(padded).numpy()
    noise_std = NOISE_FRACTION * float(np.abs(magnitude).max())
    noise = rng.normal(0.0, noise_std, size=(2, *kspace.shape))
    kspace = (kspace + noise[0] + 1j * noise[1]).astype(np.complex64)

    rss = ifft2c(torch.from_numpy(kspace)).abs().square().sum(dim=1).sqrt()
    return kspace, center_crop(rss, (height, width)).numpy().astype(np.float32)


def ismrmrd_header(height: int, width: int, n_slices: int) -> bytes:
    """A minimal ISMRMRD XML header with the fields fastMRI loaders read.

    encodedSpace matrixSize = (2H, W, 1) (readout oversampled), reconSpace = (H, W, 1), 1 mm pixels,
    and ``encodingLimits/kspace_encoding_step_1`` = [0, W − 1], centre W // 2 (all lines acquired).
    """
    rows = READOUT_OVERSAMPLING * height
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <acquisitionSystemInformation>
    <systemVendor>ssibench</systemVendor>
    <systemModel>demo (MNI ICBM152 template)</systemModel>
    <systemFieldStrength_T>3.0</systemFieldStrength_T>
    <receiverChannels>0</receiverChannels>
  </acquisitionSystemInformation>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{rows}</x><y>{width}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{rows}.0</x><y>{width}.0</y><z>{SLICE_SPACING_MM}</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{height}</x><y>{width}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{height}.0</x><y>{width}.0</y><z>{SLICE_SPACING_MM}</z></fieldOfView_mm>
    </reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1>
        <minimum>0</minimum><maximum>{width - 1}</maximum><center>{width // 2}</center>
      </kspace_encoding_step_1>
      <kspace_encoding_step_2>
        <minimum>0</minimum><maximum>0</maximum><center>0</center>
      </kspace_encoding_step_2>
      <slice>
        <minimum>0</minimum><maximum>{n_slices - 1}</maximum><center>{n_slices // 2}</center>
      </slice>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
</ismrmrdHeader>
""".encode()


def write_demo_volumes(
    out_dir: Path | str,
    n_volumes: int,
    n_slices: int,
    height: int,
    width: int,
    n_coils: int,
    seed: int,
) -> list[Path]:
    """Write ``out_dir/demo_000.h5`` … fastMRI-format pseudo-subjects (module docstring).

    Args:
        out_dir: folder to write to (created if needed).
        n_volumes: number of pseudo-subjects.
        n_slices: slices per volume.
        height: reconstructed image rows H (k-space has 2H rows).
        width: image columns W.
        n_coils: receive coils.
        seed: master seed.

    Returns:
        The paths written, in order.

    Raises:
        ConfigError: if a count or size is < 1.
    """
    for name, value in (
        ("--n-volumes", n_volumes),
        ("--n-slices", n_slices),
        ("--height", height),
        ("--width", width),
        ("--n-coils", n_coils),
    ):
        if int(value) < 1:
            raise ConfigError(f"demo data {name}: expected an integer ≥ 1; got {value}")
    out_dir = Path(out_dir)
    header = ismrmrd_header(height, width, n_slices)
    paths = []
    for volume in counted(range(n_volumes), "demo data", "volumes"):
        kspace, rss = demo_volume(volume, n_slices, height, width, n_coils, seed)
        path = out_dir / f"demo_{volume:03d}.h5"
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.create_dataset("kspace", data=kspace)
            handle.create_dataset("reconstruction_rss", data=rss)
            handle.create_dataset("ismrmrd_header", data=np.bytes_(header))
            handle.attrs["acquisition"] = "AXT1"
            handle.attrs["max"] = float(rss.max())
            handle.attrs["norm"] = float(np.linalg.norm(rss))
            handle.attrs["patient_id"] = f"ssibench-demo-seed{seed}-{volume:03d}"
        paths.append(path)
    return paths
