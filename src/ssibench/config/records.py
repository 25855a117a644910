"""Typed, frozen records of the ``model``, ``train`` and ``evaluate`` config sections (no torch).

The field defaults here are the package's defaults; the workflow schema
(``workflow/schemas/config.schema.yaml``) states the same values, which a test checks. A job's
``--spec`` carries the config slices as JSON; each is parsed into its record once, unknown keys
and out-of-range values refused with the key and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ssibench.errors import ConfigError, closest_hint

__all__ = [
    "AMP_NAMES",
    "DEFAULT_MODEL",
    "LOGGING_KEYS",
    "LOG_SINKS",
    "EvaluateConfig",
    "ModelConfig",
    "TrainConfig",
    "parse_evaluate_config",
    "parse_model_config",
    "parse_train_config",
    "without_logging",
]

#: Mixed-precision settings of ``train.amp`` (their dtypes: :data:`ssibench.precision.AMP_MODES`).
AMP_NAMES = ("none", "bf16", "fp16")

#: Live training logs of ``train.log_to`` (their writers: :data:`ssibench.training.run.SINKS`).
LOG_SINKS = ("tensorboard",)

#: ``train`` keys that say how a run is watched, not what it computes: left out of the run's
#: resolved configuration (``run.json``, ``model.pt``, the checkpoint's identity) and of the
#: evaluation's spec, so turning them on or off never restarts or invalidates a run.
LOGGING_KEYS = ("log_to",)

_Record = TypeVar("_Record")


#: The built-in reconstruction model, whose settings are the fields of :class:`ModelConfig`.
DEFAULT_MODEL = "modl"


@dataclass(frozen=True)
class ModelConfig:
    """The reconstruction network (``model`` in the config).

    ``name`` is ``modl`` (MoDL with a UNet denoiser, set by the other fields) or a model registered
    by a plugin (:func:`ssibench.register_model`), built with the keyword arguments ``options``.
    """

    num_iter: int = 3
    step_order: str = "dc-first"
    scales: int = 4
    width: int = 64
    identity_init: bool = False
    name: str = DEFAULT_MODEL
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``train`` in the config)."""

    epochs: int = 150
    batch_size: int = 4
    lr: float = 1e-3
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    val_every: int = 1
    amp: str = "none"
    tf32: bool = True
    """TF32 tensor cores for float32 convolutions and matmuls on NVIDIA Ampere and newer
    (PyTorch's own default for convolutions; ``false`` computes float32 in float32)."""
    deterministic: bool = False
    """Deterministic GPU kernels where PyTorch has them, and no TF32 (slower)."""
    log_to: tuple[str, ...] = ()
    """Live training logs written under the run folder, names of :data:`LOG_SINKS` (none by
    default); one of the :data:`LOGGING_KEYS`, outside the run's identity."""


#: The values of ``evaluate.final_dc`` (:mod:`ssibench.evaluation.consistency` applies them).
FINAL_DC_MODES = ("none", "hard", "noiseless")


@dataclass(frozen=True)
class EvaluateConfig:
    """Test-set evaluation (``evaluate`` in the config)."""

    n_samples: int = 5
    final_dc: str = "none"
    """``none`` | ``hard`` | ``noiseless``: an ablation, x̂ + A†(y − A x̂) after the network
    (everywhere, or where the data are noiseless; :mod:`ssibench.evaluation.consistency`); the
    reference has none."""


def _from_mapping(cls: type[_Record], values: Mapping[str, Any], key: str) -> _Record:
    """Build the dataclass ``cls`` from ``values``; an unknown key raises ``ConfigError``."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(fields)}"
        )
    return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def parse_model_config(values: Mapping[str, Any]) -> ModelConfig:
    """``ModelConfig`` from the ``model`` config slice.

    Raises:
        ConfigError: an unknown key, or ``options`` given to MoDL (whose settings are the
            record's own fields).
    """
    config = _from_mapping(ModelConfig, values, "model")
    if not isinstance(config.options, Mapping):
        raise ConfigError(f"model.options: expected a mapping; got {config.options!r}")
    if config.name == DEFAULT_MODEL and config.options:
        raise ConfigError(
            f"model.options: MoDL takes none (got {dict(config.options)}); set its keys "
            "num_iter, step_order, scales, width, identity_init directly under model"
        )
    return config


def parse_train_config(values: Mapping[str, Any]) -> TrainConfig:
    """``TrainConfig`` from the ``train`` config slice, checked for sane values."""
    config = _from_mapping(TrainConfig, values, "train")
    finite = all(math.isfinite(v) for v in (config.lr, config.lr_gamma))
    if (
        not finite
        or config.epochs < 0
        or config.batch_size < 1
        or config.lr <= 0
        or config.val_every < 1
    ):
        raise ConfigError(
            "train: epochs must be ≥ 0, batch_size ≥ 1, lr a finite number > 0, lr_gamma finite, "
            f"val_every ≥ 1; got {config}"
        )
    for flag in ("tf32", "deterministic"):
        value = getattr(config, flag)
        if not isinstance(value, bool):
            raise ConfigError(f"train.{flag}: expected true or false; got {value!r}")
    if config.amp not in AMP_NAMES:
        raise ConfigError(
            f"train.amp: unknown value {config.amp!r}; allowed: {', '.join(AMP_NAMES)}"
        )
    _check_log_sinks(config.log_to)
    return config


def _check_log_sinks(log_to: object) -> None:
    """Refuse a ``train.log_to`` that is not a list of :data:`LOG_SINKS` names."""
    valid = ", ".join(LOG_SINKS)
    if not isinstance(log_to, tuple) or not all(isinstance(name, str) for name in log_to):
        raise ConfigError(
            f"train.log_to: expected a list of sink names, e.g. [tensorboard]; got {log_to!r}; "
            f"valid names: {valid}"
        )
    for name in log_to:
        if name not in LOG_SINKS:
            raise ConfigError(
                f"train.log_to: unknown sink {name!r}{closest_hint(name, LOG_SINKS)}; "
                f"valid: {valid}"
            )


def without_logging(train: Mapping[str, Any]) -> dict[str, Any]:
    """A ``train`` slice without its :data:`LOGGING_KEYS`: what a run's identity is made of.

    Example:
        >>> without_logging({"epochs": 3, "log_to": ["tensorboard"]})
        {'epochs': 3}
    """
    return {key: value for key, value in train.items() if key not in LOGGING_KEYS}


def parse_evaluate_config(values: Mapping[str, Any]) -> EvaluateConfig:
    """``EvaluateConfig`` from the ``evaluate`` config slice."""
    config = _from_mapping(EvaluateConfig, values, "evaluate")
    if isinstance(config.n_samples, bool) or not isinstance(config.n_samples, int):
        raise ConfigError(f"evaluate.n_samples: expected an integer, got {config.n_samples!r}")
    if config.n_samples < 1:
        raise ConfigError(f"evaluate.n_samples: must be ≥ 1; got {config.n_samples}")
    if config.final_dc not in FINAL_DC_MODES:
        raise ConfigError(
            f"evaluate.final_dc: got {config.final_dc!r}; allowed: {', '.join(FINAL_DC_MODES)}"
        )
    return config
