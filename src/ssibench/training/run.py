"""Train a method by name: resolve it into the loop's collaborators, run the loop, record the run.

:func:`train` is what ``ssibench train`` calls. It locks the run folder, resolves the
configuration (every default filled in), reads the store, builds the network, the method's losses
(:mod:`ssibench.methods.builders`; adversarial methods with their discriminator,
:mod:`ssibench.methods.adversarial`), the optimisers, scheduler, scalers and random streams, and
chooses the step function once; :func:`ssibench.training.loop.fit` then trains.

Provenance is checked, not only written. A checkpoint is resumed only when it was made on the same
training data (the store's ``training_hash``), with the same resolved configuration (model, train
settings but ``epochs``, method options with their defaults, scenario), by the same code
(:func:`ssibench.provenance.code_hash`) and is not past the requested epochs; otherwise training
starts over and the log says why. The finished run writes ``run.json`` (also stored in
``model.pt``): the method, seed, resolved configuration, the store's hashes and the code hash.
The run folder is locked while a trainer writes it, so a second trainer of the same run fails at
once.

Precision (:mod:`ssibench.precision`): with ``train.amp`` the denoiser inside MoDL and the
discriminator run under autocast; data consistency, FFTs, losses and metrics stay float32.
``train.tf32`` and ``train.deterministic`` set the process's math; ``run.json`` records them with
the math environment (library versions, device, CPU instruction set, threads).

Live logs (``train.log_to``, :mod:`ssibench.training.sinks`) are opened before anything is read
(a missing package fails at once) and are not part of the run's identity: turning them on or
off resumes the same checkpoint and leaves ``run.json`` and ``model.pt`` as they were.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssibench import __version__
from ssibench.config.records import (
    TrainConfig,
    parse_model_config,
    parse_train_config,
    without_logging,
)
from ssibench.data.identity import store_identity
from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.errors import ConfigError, DataFileError
from ssibench.io import atomic_path, atomic_write_text
from ssibench.locks import run_lock
from ssibench.methods import get_method
from ssibench.methods.adversarial import ADVERSARIAL_BUILDERS, AdversarialResources
from ssibench.methods.builders import build_losses, method_context, with_noise_level
from ssibench.precision import (
    autocast_forward,
    configure_math,
    grad_scaler,
    math_environment,
)
from ssibench.provenance import code_modules, component_modules
from ssibench.rng import stream
from ssibench.training.adversarial import adversarial_step_function
from ssibench.training.assemble import plain_trainable, training_state
from ssibench.training.checkpoint import (
    CHECKPOINT,
    MODEL,
    RUN_RECORD,
    TRAIN_LOG,
    RunCheckpoint,
    run_identity,
)
from ssibench.training.config import build_network, resolved_config
from ssibench.training.loop import Trainable, fit
from ssibench.training.sinks import EpochSink
from ssibench.training.step import adapt
from ssibench.training.tensorboard import TENSORBOARD_DIR, TensorBoardLog

__all__ = ["SINKS", "build_trainable", "open_sinks", "train"]

#: Live-log sinks by name (``train.log_to``; the names: ``LOG_SINKS``) → builder from the run
#: folder. A builder fails with ConfigError when a package its sink needs is missing.
SINKS: dict[str, Callable[[Path], EpochSink]] = {
    "tensorboard": lambda run_dir: TensorBoardLog(run_dir / TENSORBOARD_DIR),
}


def train(
    data_path: Path,
    out_dir: Path,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
) -> Path:
    """Train ``method`` on the measurement store ``data_path``; return the path of ``model.pt``.

    Args:
        data_path: measurement store written by ``ssibench simulate``.
        out_dir: run directory; receives ``checkpoint.pt`` (every epoch), ``train_log.csv``,
            ``run.json`` and ``model.pt``. A checkpoint of the same method, seed, configuration,
            training data and code is resumed (module docstring).
        method: registered method name (must train).
        seed: training seed (network init, shuffling and the losses' random streams).
        spec: ``{"model": ..., "train": ..., "method_options": ..., "scenario": ...}``.
        device: compute device.

    Raises:
        TrainingDivergedError: a loss term or gradient became NaN or infinite; nothing of the
            diverged epoch, and no ``model.pt``, is written.
        RunLockedError: another trainer is writing ``out_dir``.
    """
    if not get_method(method).trains:
        raise ConfigError(f"method {method!r} has no training step; evaluate it directly")
    with run_lock(out_dir):
        return _train_locked(data_path, out_dir, method, seed, spec, device)


def open_sinks(names: Sequence[str], run_dir: Path) -> list[EpochSink]:
    """The live-log sinks ``names`` (``train.log_to``, already checked) of the folder ``run_dir``.

    Raises:
        ConfigError: a sink's package is not installed (the message names the pip command).
    """
    return [SINKS[name](run_dir) for name in dict.fromkeys(names)]


def _validation_split(path: Path) -> MeasurementSet | None:
    """The ``val`` split, or None when the store has none (validation is then skipped).

    The reference validates on the test split in that case; scoring the test images during
    training would let them into the run's log, so ssibench does not.
    """
    data = read_measurements(path, "val")
    return data if len(data) > 0 else None


def build_trainable(
    method: str,
    seed: int,
    resolved: Mapping[str, Any],
    train_set: MeasurementSet,
    config: TrainConfig,
    device: torch.device,
) -> Trainable:
    """The network, losses, optimisers, scheduler, streams and step function of a run of ``method``.

    The optimisation state is :func:`~ssibench.training.assemble.training_state`'s (as for a
    network of one's own); the streams are ``init`` for the network, then ``shuffle``, ``loss``,
    and for adversarial methods ``unpaired`` and ``discriminator``, so a run is reproducible.

    Args:
        method: a registered method that trains.
        seed: the training seed.
        resolved: :func:`~ssibench.training.config.resolved_config` of the run.
        train_set: the training split, on ``device`` (adversarial methods draw unpaired batches).
        config: the ``train`` record.
        device: the compute device.
    """
    network = build_network(parse_model_config(resolved["model"]), seed).to(device)
    state = training_state(network, config, device, seed)
    # the data's noise level: an acquired store's estimate (its spec says 0: nothing is added)
    scenario = with_noise_level(resolved["scenario"], train_set.sigma)
    options = resolved["method_options"]
    if not get_method(method).adversarial:
        losses = build_losses(method, scenario, options, state.generators["loss"])
        return plain_trainable(network, losses, state)
    state.generators["unpaired"] = stream(seed, "unpaired")
    parts = ADVERSARIAL_BUILDERS[method](
        method_context(method, scenario, options, state.generators["loss"]),
        AdversarialResources(
            train_set, stream(seed, "discriminator"), state.generators["unpaired"]
        ),
    )
    discriminator = autocast_forward(parts.discriminator.to(device), config.amp, device.type)
    state.modules["discriminator"] = discriminator
    state.optimizers["optimizer_d"] = torch.optim.Adam(discriminator.parameters(), lr=config.lr)
    state.scalers["scaler_d"] = grad_scaler(config.amp, device)
    losses = [*parts.generator_losses, *parts.discriminator_losses]
    model = adapt(network, losses)
    optimizer, scaler = state.optimizers["optimizer"], state.scalers["scaler"]
    step = adversarial_step_function(
        model,
        discriminator,
        parts.generator_losses,
        parts.discriminator_losses,
        optimizer,
        state.optimizers["optimizer_d"],
        scaler,
        state.scalers["scaler_d"],
    )
    state.modules["losses"] = nn.ModuleList(losses)
    return Trainable(network, model, losses, step, state, optimizer, state.schedulers["scheduler"])


def _without_logging(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The job's ``spec`` as ``model.pt`` stores it: without ``train.log_to`` (not the run's)."""
    if not isinstance(spec.get("train"), Mapping):
        return dict(spec)
    return {**spec, "train": without_logging(spec["train"])}


def _train_locked(
    data_path: Path,
    out_dir: Path,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
) -> Path:
    started_at = datetime.datetime.now(datetime.timezone.utc)
    resolved = resolved_config(spec, method)
    # from the spec, not the resolved config, which leaves the logging keys (log_to) out
    config = parse_train_config(spec.get("train", {}))
    # before any work, so that a missing package fails at once; a sink holds nothing until written
    sinks = open_sinks(config.log_to, out_dir)
    configure_math(config)
    identity = store_identity(data_path)
    train_set = read_measurements(data_path, "train").to(device)
    if get_method(method).supervised and not train_set.has_ground_truth:
        raise DataFileError(
            f"{data_path}: {train_set.physics_kind} data have no ground truth, which method "
            f"{method!r} trains on; use a self-supervised method on this scenario"
        )
    if len(train_set) == 0:
        raise DataFileError(
            f"{data_path}: the train split is empty; check data.split in the config"
        )
    val_set = _validation_split(data_path)
    if val_set is None:
        why = (
            "data.split.val is 0"
            if train_set.has_ground_truth
            else "measured k-space has no ground truth to validate against"
        )
        print(f"{data_path}: no validation split ({why}): validation is skipped", file=sys.stderr)
    else:
        val_set = val_set.to(device)

    run = build_trainable(method, seed, resolved, train_set, config, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_identity(resolved, identity, method)
    checkpoint = RunCheckpoint(out_dir / CHECKPOINT, method, seed, run_id)
    try:
        _, start_epoch = fit(
            run, train_set, val_set, config, checkpoint, out_dir / TRAIN_LOG, method, sinks
        )
    finally:  # what the sinks hold of the saved epochs is kept, also when training failed
        for sink in sinks:
            sink.close()

    record = {
        "method": method,
        "seed": seed,
        "epochs": config.epochs,
        "resumed_after_epoch": start_epoch,
        "config": json.loads(json.dumps(resolved, default=str)),  # tuples as JSON lists
        "data": {
            "store": str(data_path),
            "training_hash": identity.training_hash,
            "content_hash": identity.content_hash,
            "n_train": len(train_set),
            "n_val": 0 if val_set is None else len(val_set),
            "n_test": identity.n_test,
        },
        "code": {
            "hash": run_id["code_hash"],
            "modules": list(code_modules(method, component_modules(resolved))),
        },
        "ssibench_version": __version__,
        "torch_version": str(torch.__version__),  # a plain str: no TorchVersion in files
        "device": str(device),
        "math": math_environment(config, device),
        "started": started_at.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    model_path = out_dir / MODEL
    with atomic_path(model_path) as tmp:
        torch.save(
            {
                "model": run.network.state_dict(),
                "method": method,
                "seed": seed,
                "spec": _without_logging(spec),
                "epochs": config.epochs,
                "ssibench_version": __version__,
                "record": record,
            },
            tmp,
        )
    atomic_write_text(out_dir / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return model_path
