"""Training: one (scenario, method, seed) run, resumable from its checkpoint.

The loop is explicit: data (in memory), model, losses, optimiser, scheduler, checkpoint writer. Each
epoch shuffles the training split with the ``shuffle`` stream, sums the method's losses per batch
(L = Σᵢ Lᵢ, any weights live inside the losses), steps Adam, then scores the validation split
(PSNR/SSIM, ``ssibench`` metric mode). After every epoch ``checkpoint.pt`` (model, optimiser,
scheduler, gradient scaler, log and every random stream's state) is written atomically, so a killed
job restarted with the same arguments resumes where it stopped and ends with the same weights as an
uninterrupted run.

Provenance is checked, not only written. A checkpoint is resumed only when it was made on the same
training data (the store's ``training_hash``), with the same resolved configuration (model, train
settings but ``epochs``, method options with their defaults, scenario), by the same code
(:func:`ssibench.provenance.code_hash`) and is not past the requested epochs; otherwise training
starts over and the log says why. The finished run writes ``run.json`` (also stored in
``model.pt``): the method, seed, resolved configuration, the store's hashes and the code hash.
A non-finite loss or gradient stops the job (:class:`~ssibench.errors.TrainingDivergedError`)
before anything of the diverged epoch is written. The run folder is locked while a trainer writes
it, so a second trainer of the same run fails at once.

Mixed precision (``train.amp``): the denoiser inside MoDL and the discriminator run under autocast
(:func:`ssibench.device.autocast_forward`); data consistency, FFTs, losses and metrics stay float32.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ssibench import __version__
from ssibench.adversarial import AdversarialResources, adversarial_step
from ssibench.data.measurements import (
    MeasurementSet,
    StoreIdentity,
    read_measurements,
    store_identity,
)
from ssibench.device import autocast_dtype, autocast_forward, grad_scaler
from ssibench.errors import ConfigError, DataFileError, TrainingDivergedError
from ssibench.io import atomic_path, atomic_write_text, run_lock
from ssibench.losses import Loss
from ssibench.methods import build_losses, get_method, method_context, method_options
from ssibench.metrics import image_metrics
from ssibench.models import build_modl
from ssibench.provenance import code_hash, code_modules, config_differences
from ssibench.rng import stream

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "adapt",
    "build_network",
    "forward_train",
    "parse_model_config",
    "parse_train_config",
    "records_randomness",
    "resolved_config",
    "run_identity",
    "train",
    "train_step",
    "unwrap",
]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
TRAIN_LOG = "train_log.csv"
RUN_RECORD = "run.json"


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


def adapt(model: nn.Module, losses: list[Loss]) -> nn.Module:
    """Let each loss wrap the model, in order (measurement splitting does)."""
    for loss in losses:
        model = loss.adapt_model(model)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside any loss wrappers (what ``model.pt`` stores).

    Loss wrappers (measurement splitting, recorruption, ...) keep the wrapped network as ``.model``.
    """
    while isinstance(getattr(model, "model", None), nn.Module):
        model = model.model
    return model


def records_randomness(model: nn.Module) -> bool:
    """Whether ``model`` is a loss wrapper whose forward takes ``update_parameters``."""
    return _forward_takes_update_parameters(type(model))


@functools.cache
def _forward_takes_update_parameters(model_class: type) -> bool:
    # Inspected once per class: the trainer asks on every step.
    return "update_parameters" in inspect.signature(model_class.forward).parameters


def forward_train(model: nn.Module, y: Tensor, physics: Any) -> Tensor:
    """The trainer's forward: wrappers record their randomness for the losses on this call only.

    Extra forwards made inside losses do not pass ``update_parameters``, so they do not overwrite
    what the trainer's forward recorded (the DeepInverse/SSIBench convention).
    """
    if records_randomness(model):
        return model(y, physics, update_parameters=True)
    return model(y, physics)


def _term_name(loss: Loss) -> str:
    """Column name of a loss term in the log, e.g. ``EILoss`` → ``loss_ei``."""
    return "loss_" + type(loss).__name__.removesuffix("Loss").lower()


def _batches(n: int, batch_size: int, order: Tensor | None = None) -> list[Tensor]:
    index = order if order is not None else torch.arange(n)
    return list(index.split(batch_size))


@torch.no_grad()
def validate(model: nn.Module, data: MeasurementSet, batch_size: int) -> dict[str, float]:
    """Mean PSNR and SSIM (``ssibench`` mode) of ``model`` over ``data``, model in eval mode."""
    was_training = model.training
    model.eval()
    sums = {
        "psnr": torch.zeros((), device=data.x.device),
        "ssim": torch.zeros((), device=data.x.device),
    }
    for index in _batches(len(data), batch_size):
        scores = image_metrics(model(data.y[index], data.physics(index)), data.x[index], "ssibench")
        for name in sums:
            sums[name] += scores[name].sum()
    model.train(was_training)
    return {f"val_{name}": float(total) / max(len(data), 1) for name, total in sums.items()}


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


def run_identity(config: Mapping[str, Any], identity: StoreIdentity, method: str) -> dict[str, Any]:
    """What a checkpoint must share to be resumed: configuration but ``train.epochs``, data, code.

    Extending ``epochs`` continues a run; any other change starts over.
    """
    train_config = {k: v for k, v in config["train"].items() if k != "epochs"}
    return {
        "config": json.loads(json.dumps({**config, "train": train_config}, default=str)),
        "training_hash": identity.training_hash,
        "code_hash": code_hash(method),
    }


def _validation_split(path: Path) -> MeasurementSet | None:
    """The ``val`` split, or None when the store has none (validation is then skipped).

    The reference validates on the test split in that case; scoring the test images during
    training would let them into the run's log, so ssibench does not.
    """
    data = read_measurements(path, "val")
    return data if len(data) > 0 else None


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
    model_config = parse_model_config(resolved["model"])
    config = parse_train_config(resolved["train"])
    scenario = resolved["scenario"]
    identity = store_identity(data_path)
    train_set = read_measurements(data_path, "train").to(device)
    if len(train_set) == 0:
        raise DataFileError(
            f"{data_path}: the train split is empty; check data.split in the config"
        )
    val_set = _validation_split(data_path)
    if val_set is None:
        print(
            f"{data_path}: no validation split (data.split.val is 0): validation is skipped",
            file=sys.stderr,
        )
    else:
        val_set = val_set.to(device)

    method_spec = get_method(method)
    network = build_network(model_config, seed).to(device)
    autocast_forward(network.denoiser, config.amp, device.type)
    state = _TrainingState(
        modules={"model": network},
        optimizers={"optimizer": torch.optim.Adam(network.parameters(), lr=config.lr)},
        generators={"shuffle": stream(seed, "shuffle"), "loss": stream(seed, "loss", device)},
        scalers={"scaler": grad_scaler(config.amp, device)},
    )
    loss_generator = state.generators["loss"]
    adversarial = None
    if method_spec.build_adversarial is not None:
        state.generators["unpaired"] = stream(seed, "unpaired", device)
        adversarial = method_spec.build_adversarial(
            method_context(method, scenario, spec.get("method_options"), loss_generator),
            AdversarialResources(
                train_set, stream(seed, "discriminator", device), state.generators["unpaired"]
            ),
        )
        discriminator = autocast_forward(
            adversarial.discriminator.to(device), config.amp, device.type
        )
        state.modules["discriminator"] = discriminator
        state.optimizers["optimizer_d"] = torch.optim.Adam(discriminator.parameters(), lr=config.lr)
        state.scalers["scaler_d"] = grad_scaler(config.amp, device)
        losses = [*adversarial.generator_losses, *adversarial.discriminator_losses]
    else:
        losses = build_losses(method, scenario, spec.get("method_options"), loss_generator)
    state.modules["losses"] = nn.ModuleList(losses)
    model = adapt(network, losses)
    optimizer = state.optimizers["optimizer"]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.lr_milestones), gamma=config.lr_gamma
    )
    state.schedulers["scheduler"] = scheduler
    log: list[dict[str, float]] = []
    start_epoch = 0

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out_dir / CHECKPOINT
    run_id = run_identity(resolved, identity, method)
    if checkpoint_path.exists():
        resumed = _resume(checkpoint_path, method, seed, run_id, config.epochs, state)
        if resumed is not None:
            start_epoch, log = resumed
            print(f"resuming {checkpoint_path} after epoch {start_epoch}", file=sys.stderr)

    steps_per_epoch = -(-len(train_set) // config.batch_size)
    progress = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"train {method}",
        file=sys.stderr,
        disable=None,
    )
    # Parameters whose gradients the divergence guard checks; fp16 loss scaling skips steps with
    # non-finite gradients itself (that is how it finds its scale), so there only losses count.
    guarded = (
        [] if config.amp == "fp16" else [p for m in state.modules.values() for p in m.parameters()]
    )
    model.train()
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        term_sums = torch.zeros(len(losses), device=device)
        # per step: whether a loss term or gradient was non-finite (checked once per epoch,
        # where the epoch's log already waits for the device: no extra host sync per step)
        diverged = torch.zeros(steps_per_epoch, dtype=torch.bool, device=device)
        order = torch.randperm(len(train_set), generator=state.generators["shuffle"])
        for step, index in enumerate(_batches(len(train_set), config.batch_size, order)):
            x, y, physics = train_set.x[index], train_set.y[index], train_set.physics(index)
            if adversarial is not None:
                terms = torch.cat(
                    adversarial_step(
                        model,
                        state.modules["discriminator"],
                        adversarial.generator_losses,
                        adversarial.discriminator_losses,
                        optimizer,
                        state.optimizers["optimizer_d"],
                        x,
                        y,
                        physics,
                        epoch,
                        state.scalers["scaler"],
                        state.scalers["scaler_d"],
                    )
                )
            else:
                terms = train_step(
                    model, losses, optimizer, state.scalers["scaler"], x, y, physics, epoch
                )
            diverged[step] = ~_all_finite(terms, guarded)
            term_sums += terms * len(index)
            progress.update()
        means = (term_sums / len(train_set)).tolist()  # one host sync per epoch
        if bool(diverged.any()):
            raise _divergence(method, epoch, diverged, steps_per_epoch, losses, means, optimizer)
        scheduler.step()
        row: dict[str, float] = {"epoch": epoch + 1}
        row["loss_total"] = sum(means)
        row.update({_term_name(loss): value for loss, value in zip(losses, means, strict=True)})
        is_validation_epoch = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
        if val_set is not None and is_validation_epoch:
            row.update(validate(model, val_set, config.batch_size))
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["time_s"] = time.perf_counter() - started
        log.append(row)
        progress.set_postfix(
            loss=f"{row['loss_total']:.3g}", val_psnr=f"{row.get('val_psnr', float('nan')):.2f}"
        )
        _write_log(out_dir / TRAIN_LOG, log)
        _save_checkpoint(checkpoint_path, epoch + 1, method, seed, run_id, state, log)
    progress.close()
    _write_log(out_dir / TRAIN_LOG, log)
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
        "code": {"hash": run_id["code_hash"], "modules": list(code_modules(method))},
        "ssibench_version": __version__,
        "torch_version": torch.__version__,
        "device": str(device),
        "started": started_at.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    model_path = out_dir / MODEL
    with atomic_path(model_path) as tmp:
        torch.save(
            {
                "model": network.state_dict(),
                "method": method,
                "seed": seed,
                "spec": dict(spec),
                "epochs": config.epochs,
                "ssibench_version": __version__,
                "record": record,
            },
            tmp,
        )
    atomic_write_text(out_dir / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return model_path


def _all_finite(terms: Tensor, parameters: list[nn.Parameter]) -> Tensor:
    """0-dim bool on the device: every loss term and every gradient is finite."""
    finite = torch.isfinite(terms).all()
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads:
        finite = finite & torch.isfinite(torch.nn.utils.get_total_norm(grads))
    return finite


def _divergence(
    method: str,
    epoch: int,
    diverged: Tensor,
    steps_per_epoch: int,
    losses: list[Loss],
    means: list[float],
    optimizer: torch.optim.Optimizer,
) -> TrainingDivergedError:
    step = int(diverged.nonzero()[0, 0]) + 1
    bad_terms = [
        _term_name(loss) for loss, m in zip(losses, means, strict=True) if not math.isfinite(m)
    ]
    what = f"loss term(s) {', '.join(bad_terms)}" if bad_terms else "a gradient"
    lr = optimizer.param_groups[0]["lr"]
    return TrainingDivergedError(
        f"{method}: training diverged at epoch {epoch + 1}, step {step} of {steps_per_epoch}: "
        f"{what} not finite (lr {lr:g}); no model.pt or metrics were written. Lower the learning "
        f"rate (train.lr, or method_train.{method}.lr), or use train.amp: none, then re-run"
    )


def _write_log(path: Path, log: list[dict[str, float]]) -> None:
    columns = ["epoch", "loss_total"]
    frame = pd.DataFrame(log)
    frame = frame[[*columns, *[c for c in frame.columns if c not in columns]]] if log else frame
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def train_step(
    model: nn.Module,
    losses: list[Loss],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    x: Tensor,
    y: Tensor,
    physics: Any,
    epoch: int,
) -> Tensor:
    """One step on L = Σᵢ Lᵢ(x̂), x̂ = f(y, A); returns the detached terms ``(len(losses),)``.

    The backward pass runs on s·L and the optimiser steps on the gradients divided by s, skipping
    the step if they are not finite (fp16 loss scaling); a disabled ``scaler`` (s = 1, no check)
    makes this a plain step.
    """
    optimizer.zero_grad(set_to_none=True)
    x_net = forward_train(model, y, physics)
    terms = torch.stack(
        [loss(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=epoch) for loss in losses]
    )
    scaler.scale(terms.sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    return terms.detach()


@dataclass
class _TrainingState:
    """Everything a checkpoint must hold to resume a run exactly, by name."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {
            "modules": {k: v.state_dict() for k, v in self.modules.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "generators": {k: v.get_state() for k, v in self.generators.items()},
        }

    def load_state_dict(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        for group in ("modules", "optimizers", "schedulers"):
            for name, target in getattr(self, group).items():
                target.load_state_dict(state[group][name])
        # Checkpoints from before mixed precision have no scalers: theirs were disabled ({}).
        saved_scalers = state.get("scalers", {})
        for name, scaler in self.scalers.items():
            scaler.load_state_dict(saved_scalers.get(name, {}))
        for name, generator in self.generators.items():
            generator.set_state(state["generators"][name])


def _save_checkpoint(
    path: Path,
    epoch: int,
    method: str,
    seed: int,
    run_id: Mapping[str, Any],
    state: _TrainingState,
    log: list[dict[str, float]],
) -> None:
    with atomic_path(path) as tmp:
        torch.save(
            {
                "epoch": epoch,
                "method": method,
                "seed": seed,
                "identity": dict(run_id),
                "state": state.state_dict(),
                "log": log,
            },
            tmp,
        )


def _resume(
    path: Path,
    method: str,
    seed: int,
    run_id: Mapping[str, Any],
    epochs: int,
    state: _TrainingState,
) -> tuple[int, list[dict[str, float]]] | None:
    """Restore a checkpoint into ``state``; return (completed epochs, log).

    Returns None (train from scratch, saying why on stderr) when the checkpoint was made on other
    training data, with another configuration, by other code, or is past ``epochs``.
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file: say which and how to recover
        raise DataFileError(
            f"{path}: cannot read the checkpoint ({error}); delete it (rm {path}) to restart"
        ) from error
    if saved.get("method") != method or saved.get("seed") != seed:
        raise DataFileError(
            f"{path}: checkpoint of method {saved.get('method')!r} seed {saved.get('seed')}, not "
            f"{method!r} seed {seed}; delete it (rm {path}) or use another run directory"
        )
    reason = _restart_reason(saved.get("identity"), run_id, int(saved.get("epoch", 0)), epochs)
    if reason is not None:
        print(f"{path}: {reason}; training from scratch", file=sys.stderr)
        return None
    state.load_state_dict(saved["state"])
    return int(saved["epoch"]), list(saved["log"])


def _restart_reason(
    saved: Mapping[str, Any] | None, run_id: Mapping[str, Any], saved_epoch: int, epochs: int
) -> str | None:
    """Why a checkpoint cannot be resumed, or None if it can."""
    if saved is None:
        return "made by an older ssibench (no record of its data and configuration)"
    if saved.get("training_hash") != run_id["training_hash"]:
        return (
            f"trained on other data (store training hash {str(saved.get('training_hash'))[:12]}, "
            f"now {run_id['training_hash'][:12]})"
        )
    changed = config_differences(saved.get("config"), run_id["config"])
    if changed:
        return f"made with another configuration ({'; '.join(changed)})"
    if saved.get("code_hash") != run_id["code_hash"]:
        return (
            f"made by other code (code hash {str(saved.get('code_hash'))[:12]}, "
            f"now {run_id['code_hash'][:12]})"
        )
    if saved_epoch > epochs:
        return f"trained for {saved_epoch} epochs, more than the {epochs} requested"
    return None
