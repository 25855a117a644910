"""ssibench: self-supervised learning benchmark for accelerated MRI reconstruction.

The package owns all math (FFT, MRI physics, masks, models, losses, metrics) and all file formats;
the Snakemake workflow beside it calls the ``ssibench`` command line, one subcommand per rule.
"""

from ssibench.fft import fft2c, ifft2c, to_complex, to_real
from ssibench.masks import (
    BernoulliSplittingMaskGenerator,
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    RandomMaskGenerator,
)
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

__all__ = [
    "BernoulliSplittingMaskGenerator",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "MultiCoilMRI",
    "RandomMaskGenerator",
    "SingleCoilMRI",
    "birdcage_maps",
    "fft2c",
    "ifft2c",
    "to_complex",
    "to_real",
]

__version__ = "0.1.0"
