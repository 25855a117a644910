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
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ssibench import __version__
from ssibench.adversarial import AdversarialResources, adversarial_step
from ssibench.data.measurements import MeasurementSet, read_measurements, store_identity
from ssibench.device import autocast_forward, grad_scaler
from ssibench.errors import ConfigError, DataFileError, TrainingDivergedError
from ssibench.io import atomic_path, atomic_write_text, run_lock
from ssibench.losses import Loss
from ssibench.methods import build_losses, get_method, method_context
from ssibench.metrics import image_metrics
from ssibench.provenance import code_modules
from ssibench.rng import stream
from ssibench.training.checkpoint import (
    CHECKPOINT,
    MODEL,
    RUN_RECORD,
    TRAIN_LOG,
    TrainingState,
    resume_checkpoint,
    run_identity,
    save_checkpoint,
    write_log,
)
from ssibench.training.config import (
    build_network,
    parse_model_config,
    parse_train_config,
    resolved_config,
)
from ssibench.training.step import adapt, all_finite, train_step

__all__ = ["train", "validate"]


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
    state = TrainingState(
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
        resumed = resume_checkpoint(checkpoint_path, method, seed, run_id, config.epochs, state)
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
            diverged[step] = ~all_finite(terms, guarded)
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
        write_log(out_dir / TRAIN_LOG, log)
        save_checkpoint(checkpoint_path, epoch + 1, method, seed, run_id, state, log)
    progress.close()
    write_log(out_dir / TRAIN_LOG, log)
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
