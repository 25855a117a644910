"""The network a ``model`` record builds, and a run's full configuration.

The records themselves (``ModelConfig``, ``TrainConfig``) live in :mod:`ssibench.config.records`;
:func:`resolved_config` fills every default, which is what a run records and what a checkpoint
must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from torch import nn

from ssibench.config.records import ModelConfig, parse_model_config, parse_train_config
from ssibench.methods import method_options
from ssibench.models.modl import build_modl
from ssibench.rng import stream

__all__ = ["build_network", "resolved_config"]


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
