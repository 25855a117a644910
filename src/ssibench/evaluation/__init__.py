"""Evaluation: the image quality metrics and the scoring of a run on the test split.

* :mod:`~ssibench.evaluation.metrics`: PSNR, SSIM and NMSE per image, in the two metric modes
  (``ssibench`` and ``fastmri``), torch only;
* :mod:`~ssibench.evaluation.evaluate`: :func:`evaluate`, which scores a trained run (and the
  zero-filled baseline) on the test split and writes ``metrics.csv`` and ``samples.npz``.

The package re-exports the metrics only: the trainer's validation imports them, and
:mod:`~ssibench.evaluation.evaluate` imports the trainer's records, so importing the scoring from
here would make the two packages import each other. Import it as
``from ssibench.evaluation.evaluate import evaluate``.
"""

from ssibench.evaluation.metrics import (
    METRIC_MODES,
    complex_abs,
    image_metrics,
    nmse,
    psnr,
    ssim,
)

__all__ = [
    "METRIC_MODES",
    "complex_abs",
    "image_metrics",
    "nmse",
    "psnr",
    "ssim",
]
