"""The metric registry: what evaluation can write to ``metrics.csv``, one value per test image.

:data:`METRICS` (name → :class:`MetricSpec`) holds the built-ins ``psnr``, ``ssim`` and ``nmse``
(computed in each metric mode as by :func:`~ssibench.evaluation.functional.image_metrics`, whose
module has the maths) and the metrics added with :func:`register_metric`, functions
``(x_hat, x) -> (B,)`` of the complex images ``(B, 2, H, W)``, the same in both modes.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from ssibench.errors import ConfigError
from ssibench.evaluation.functional import (
    BUILTIN_METRICS,
    METRIC_MODES,
    MetricMode,
    builtin_metric,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "MetricSpec",
    "check_metric_names",
    "compute_metrics",
    "register_metric",
]

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


#: What evaluation writes when the config names no metrics (the tables need all three).
DEFAULT_METRICS = BUILTIN_METRICS
#: Columns of ``metrics.csv`` a metric name may not take; ``zf_<name>`` is its baseline column.
RESERVED_NAMES = ("scenario", "method", "seed", "sample", "mode", "store_hash", "code_hash")
#: A metric name: a column of ``metrics.csv`` and an entry of the config's ``metrics`` list.
METRIC_NAME = re.compile(r"^(?!zf_)[A-Za-z][A-Za-z0-9_]*$")


def _builtin_spec(name: str) -> MetricSpec:
    modes = {mode: functools.partial(builtin_metric, name=name, mode=mode) for mode in METRIC_MODES}
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
