"""The ``model`` and ``train`` config records, the network they build, and a run's full config.

``parse_model_config`` / ``parse_train_config`` turn a job's config slices into frozen records
(an unknown key or a bad value raises ``ConfigError``); :func:`resolved_config` fills every
default, which is what a run records and what a checkpoint must match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ssibench.device import autocast_dtype
from ssibench.errors import ConfigError
from ssibench.methods import method_options
from ssibench.models import build_modl
from ssibench.rng import stream

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "build_network",
    "parse_model_config",
    "parse_train_config",
    "resolved_config",
]


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


def _from_mapping(cls: type, values: Mapping[str, Any], key: str) -> Any:
    """Build the dataclass ``cls`` from ``values``; an unknown key raises ``ConfigError``."""
    fields = cls.__dataclass_fields__
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
    autocast_dtype(config.amp, key="train.amp")
    return config


def build_network(config: ModelConfig, seed: int) -> nn.Module:
    """MoDL + UNet initialised from the ``init`` stream of ``seed`` (the global RNG is not used)."""
    return build_modl(
        num_iter=config.num_iter,
        step_order=config.step_order,
        scales=config.scales,
        width=config.width,
        generator=stream(seed, "init"),
        identity_init=config.identity_init,
    )


def resolved_config(spec: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The full configuration of a run: every default filled in (what ``run.json`` records).

    ``{"model": ..., "train": ..., "method_options": ..., "scenario": ...}`` from the job's spec,
    with the dataclass defaults of ``model`` and ``train`` and the method's option defaults.
    """
    return {
        "model": asdict(parse_model_config(spec.get("model", {}))),
        "train": asdict(parse_train_config(spec.get("train", {}))),
        "method_options": method_options(method, spec.get("method_options")),
        "scenario": dict(spec.get("scenario", {})),
    }
