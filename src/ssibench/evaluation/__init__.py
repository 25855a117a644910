"""Evaluation: the image quality metrics and the scoring of a run on the test split.

* :mod:`~ssibench.evaluation.functional`: PSNR, SSIM and NMSE per image, in the two metric modes
  (``ssibench`` and ``fastmri``), torch only;
* :mod:`~ssibench.evaluation.metrics`: the metric registry :data:`METRICS`
  (:func:`register_metric` adds one);
* :mod:`~ssibench.evaluation.checkpoint`: reading a ``model.pt`` or a plain ``state_dict``;
* :mod:`~ssibench.evaluation.evaluate`: :func:`evaluate`, which scores a trained run (and the
  zero-filled baseline) on the test split and writes ``metrics.csv`` and ``samples.npz``, and
  :func:`evaluate_checkpoint`, the same for a checkpoint file.

The package re-exports the metrics only: the trainer's validation imports them, and
:mod:`~ssibench.evaluation.evaluate` imports the trainer's records, so importing the scoring from
here would make the two packages import each other. Import it as
``from ssibench.evaluation.evaluate import evaluate``.
"""

from ssibench.evaluation.functional import (
    BUILTIN_METRICS,
    METRIC_MODES,
    complex_abs,
    image_metrics,
    nmse,
    psnr,
    ssim,
)
from ssibench.evaluation.metrics import (
    DEFAULT_METRICS,
    METRICS,
    MetricSpec,
    check_metric_names,
    compute_metrics,
    register_metric,
)

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
