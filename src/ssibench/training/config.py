"""The network a ``model`` record builds, and a run's full configuration.

The records themselves (``ModelConfig``, ``TrainConfig``) live in :mod:`ssibench.config.records`;
:func:`resolved_config` fills every default, which is what a run records and what a checkpoint
must match.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from torch import nn

from ssibench.config.records import (
    DEFAULT_MODEL,
    ModelConfig,
    parse_model_config,
    parse_train_config,
    without_logging,
)
from ssibench.methods import method_options
from ssibench.models.build import build_model, model_builder
from ssibench.models.modl import build_modl
from ssibench.rng import stream

__all__ = ["build_network", "resolved_config"]


def build_network(config: ModelConfig, seed: int) -> nn.Module:
    """The network of ``config``, initialised from the ``init`` stream of ``seed``.

    MoDL + UNet by default (the global RNG is not used); a model registered by a plugin is built
    with ``config.options``, plus ``generator=`` the ``init`` stream when its builder takes one.
    """
    if config.name != DEFAULT_MODEL:
        build = model_builder(config.name)
        options = dict(config.options)
        if "generator" in inspect.signature(build).parameters:
            options["generator"] = stream(seed, "init")
        return build_model(config.name, **options)
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
    The ``train`` keys of :data:`~ssibench.config.records.LOGGING_KEYS` (``log_to``) are checked
    but left out: how a run is watched is not part of what it is.
    """
    model = asdict(parse_model_config(spec.get("model", {})))
    return {
        "model": model,
        "train": without_logging(asdict(parse_train_config(spec.get("train", {})))),
        "method_options": method_options(method, spec.get("method_options")),
        "scenario": dict(spec.get("scenario", {})),
    }
