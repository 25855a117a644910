"""A run's network as a DeepInverse ``Trainer`` checkpoint (``ssibench export --to deepinv``).

The layer names are those of :mod:`ssibench.interop.checkpoints`, which reads such files back;
this module is apart because it reads a run's ``model.pt`` through
:mod:`ssibench.evaluation.checkpoint`, which itself imports the layout module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssibench import __version__
from ssibench.config.records import DEFAULT_MODEL, parse_model_config, parse_train_config
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.checkpoint import load_file, read_checkpoint, run_parts
from ssibench.interop.checkpoints import DeepInvModel, to_deepinv
from ssibench.io import atomic_path
from ssibench.training import MODEL

__all__ = ["DEEPINV_MIN_SCALES", "export_deepinv"]

#: DeepInverse's UNet refuses fewer levels (ssibench's takes 1).
DEEPINV_MIN_SCALES = 2


def export_deepinv(model_path: Path, out: Path) -> DeepInvModel:
    """Write a run's network as a DeepInverse ``Trainer`` checkpoint that MoDL loads strictly.

    ``out`` holds ``{"state_dict": …, "epoch": E − 1, "ssibench": {method, seed, model, version}}``
    (E = the run's ``train.epochs``; DeepInverse's Trainer numbers epochs from 0 and resumes at
    ``epoch + 1``). No optimiser or scheduler state is written: a Trainer resuming from it starts
    them afresh.

    Args:
        model_path: a run's ``model.pt`` (or its folder).
        out: the file to write (atomically).

    Returns:
        The exported network's shape; ``.deepinv_call`` builds the model that loads it.

    Raises:
        ConfigError: a model DeepInverse does not compute (a plugin model, ``denoiser-first``).
        DataFileError: an unreadable model.pt or weights of another network.
    """
    model_path = Path(model_path)
    if model_path.is_dir():
        model_path = model_path / MODEL
    hint = "pass a run folder of `ssibench train` or its model.pt"
    if not model_path.is_file():
        raise DataFileError(f"{model_path}: no such file; {hint}")
    # read_checkpoint takes other files too (a plain state_dict, a DeepInverse checkpoint), whose
    # refusals speak of evaluation; only a run's own record says what its network is.
    if run_parts(load_file(model_path, torch.device("cpu"), hint)) is None:
        raise DataFileError(f"{model_path}: not a model.pt written by `ssibench train`; {hint}")
    checkpoint = read_checkpoint(model_path)
    config = parse_model_config(checkpoint.spec.get("model", {}))
    if config.name != DEFAULT_MODEL:
        raise ConfigError(
            f"{model_path}: model.name is {config.name!r}; only ssibench's MoDL ({DEFAULT_MODEL}) "
            "has a DeepInverse counterpart, so only its runs are exported"
        )
    if config.step_order != "dc-first":
        raise ConfigError(
            f"{model_path}: model.step_order is {config.step_order!r}; DeepInverse's MoDL runs "
            "data consistency first and ends on the denoiser (dc-first), so this network would "
            "compute something else there; export a run trained with step_order: dc-first"
        )
    if config.scales < DEEPINV_MIN_SCALES:
        raise ConfigError(
            f"{model_path}: model.scales is {config.scales}; DeepInverse's UNet has at least "
            f"{DEEPINV_MIN_SCALES} scales, so this network has no DeepInverse counterpart"
        )
    state, model = to_deepinv(checkpoint.weights, model_path)
    if model.model_spec != {k: getattr(config, k) for k in model.model_spec}:
        raise DataFileError(
            f"{model_path}: its weights are those of {model.model_spec}, its spec says "
            f"{dict(checkpoint.spec['model'])}; the file is damaged: copy it again from its run"
        )
    epochs = parse_train_config(checkpoint.spec.get("train", {})).epochs
    meta: dict[str, Any] = {
        "method": checkpoint.method,
        "seed": checkpoint.seed,
        "model": model.model_spec,
        "version": __version__,
    }
    with atomic_path(out) as tmp:
        torch.save({"state_dict": state, "epoch": epochs - 1, "ssibench": meta}, tmp)
    return model
