"""Typed, frozen records of the ``model``, ``train`` and ``evaluate`` config sections (no torch).

The field defaults here are the package's defaults; the workflow schema
(``workflow/schemas/config.schema.yaml``) states the same values, which a test checks. A job's
``--spec`` carries the config slices as JSON; each is parsed into its record once, unknown keys
and out-of-range values refused with the key and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ssibench.errors import ConfigError

__all__ = [
    "AMP_NAMES",
    "EvaluateConfig",
    "ModelConfig",
    "TrainConfig",
    "parse_evaluate_config",
    "parse_model_config",
    "parse_train_config",
]

#: Mixed-precision settings of ``train.amp`` (their dtypes: :data:`ssibench.device.AMP_MODES`).
AMP_NAMES = ("none", "bf16", "fp16")

_Record = TypeVar("_Record")


@dataclass(frozen=True)
class ModelConfig:
    """MoDL with a UNet denoiser (``model`` in the config)."""

    num_iter: int = 3
    step_order: str = "dc-first"
    scales: int = 4
    width: int = 64
    identity_init: bool = False


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


@dataclass(frozen=True)
class EvaluateConfig:
    """Test-set evaluation (``evaluate`` in the config)."""

    n_samples: int = 5


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
    """``ModelConfig`` from the ``model`` config slice."""
    return _from_mapping(ModelConfig, values, "model")


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
    if config.amp not in AMP_NAMES:
        raise ConfigError(
            f"train.amp: unknown value {config.amp!r}; allowed: {', '.join(AMP_NAMES)}"
        )
    return config


def parse_evaluate_config(values: Mapping[str, Any]) -> EvaluateConfig:
    """``EvaluateConfig`` from the ``evaluate`` config slice."""
    config = _from_mapping(EvaluateConfig, values, "evaluate")
    if isinstance(config.n_samples, bool) or not isinstance(config.n_samples, int):
        raise ConfigError(f"evaluate.n_samples: expected an integer, got {config.n_samples!r}")
    if config.n_samples < 1:
        raise ConfigError(f"evaluate.n_samples: must be ≥ 1; got {config.n_samples}")
    return config
