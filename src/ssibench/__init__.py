"""ssibench: self-supervised learning benchmark for accelerated MRI reconstruction.

The package owns all math (FFT, MRI physics, masks, models, losses, metrics) and all file formats;
the Snakemake workflow beside it calls the ``ssibench`` command line, one subcommand per rule.

From Python, four calls run the benchmark (:mod:`ssibench.api`): :func:`load_store`, :func:`fit`
(a network with its losses, or a method by name), :func:`score` and :func:`compare`.

The names below are imported on first use, so that modules without tensors (the method registry,
the workflow's planning) can be imported without loading torch.
"""

from __future__ import annotations

from ssibench.lazy import lazy_attributes

__all__ = [
    "BernoulliSplittingMaskGenerator",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "MultiCoilMRI",
    "RandomMaskGenerator",
    "SingleCoilMRI",
    "birdcage_maps",
    "compare",
    "fft2c",
    "fit",
    "ifft2c",
    "load_plugins",
    "load_store",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
    "register_physics",
    "score",
    "to_complex",
    "to_real",
]

__version__ = "0.1.0"

#: Where each top-level name lives.
_LAZY = {
    "BernoulliSplittingMaskGenerator": "ssibench.masks",
    "EquispacedMaskGenerator": "ssibench.masks",
    "GaussianMaskGenerator": "ssibench.masks",
    "RandomMaskGenerator": "ssibench.masks",
    "MultiCoilMRI": "ssibench.physics",
    "SingleCoilMRI": "ssibench.physics",
    "birdcage_maps": "ssibench.physics",
    "compare": "ssibench.api",
    "fit": "ssibench.api",
    "load_store": "ssibench.api",
    "score": "ssibench.api",
    "fft2c": "ssibench.fft",
    "load_plugins": "ssibench.plugins",
    "register_dataset": "ssibench.plugins",
    "register_method": "ssibench.plugins",
    "register_metric": "ssibench.plugins",
    "register_model": "ssibench.plugins",
    "register_physics": "ssibench.plugins",
    "ifft2c": "ssibench.fft",
    "to_complex": "ssibench.fft",
    "to_real": "ssibench.fft",
}


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
