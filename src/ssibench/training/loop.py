"""The training loop: epochs over built collaborators, with validation, checkpoints and a guard.

:func:`fit` knows nothing of methods: it takes the network, its losses, a step function chosen
once (plain or adversarial), the state to checkpoint, the data and a :class:`RunCheckpoint`.
Each epoch shuffles the training split with the ``shuffle`` stream, runs the step on every batch
(L = Σᵢ Lᵢ, any weights live inside the losses), steps the scheduler, then scores the validation
split (PSNR/SSIM, ``ssibench`` metric mode). After every epoch ``checkpoint.pt`` (modules,
optimisers, schedulers, gradient scalers, log and every random stream's state) is written
atomically, so a killed job restarted with the same arguments resumes where it stopped and ends
with the same weights as an uninterrupted run. A non-finite loss or gradient stops training
(:class:`~ssibench.errors.TrainingDivergedError`) before anything of the diverged epoch is written.

:func:`ssibench.training.run.train` builds these collaborators from a method name.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ssibench.config.records import TrainConfig
from ssibench.data.measurements import MeasurementSet
from ssibench.errors import TrainingDivergedError
from ssibench.evaluation.metrics import image_metrics
from ssibench.losses import Loss
from ssibench.training.checkpoint import RunCheckpoint, TrainingState, write_log
from ssibench.training.step import StepFunction, all_finite

__all__ = ["Trainable", "fit", "validate"]


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


@dataclass(frozen=True)
class Trainable:
    """What :func:`fit` trains: the built collaborators of one run.

    Attributes:
        network: the reconstruction network (what ``model.pt`` stores).
        model: ``network`` as the losses see it (some losses wrap it; see
            :func:`~ssibench.training.step.adapt`).
        losses: every loss term, in the order of the log's ``loss_*`` columns.
        step: (x, y, physics, epoch) → the detached loss terms ``(len(losses),)``; one optimiser
            step (or an adversarial G then D step), chosen once for the run.
        state: the modules, optimisers, schedulers, scalers and random streams a checkpoint holds
            (``generators["shuffle"]`` orders the batches).
        optimizer: the network's optimiser (its learning rate is logged).
        scheduler: stepped once per epoch.
    """

    network: nn.Module
    model: nn.Module
    losses: list[Loss]
    step: StepFunction
    state: TrainingState
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


def fit(
    run: Trainable,
    train_set: MeasurementSet,
    val_set: MeasurementSet | None,
    config: TrainConfig,
    checkpoint: RunCheckpoint,
    log_path: Path,
    name: str,
) -> tuple[list[dict[str, float]], int]:
    """Train ``run`` for ``config.epochs`` epochs, resuming from ``checkpoint`` when it matches.

    Args:
        run: the collaborators (:class:`Trainable`).
        train_set: the training split, on the training device.
        val_set: the validation split (None: validation is skipped).
        config: epochs, batch size, validation interval, mixed precision.
        checkpoint: written after every epoch; resumed at the start when its identity matches.
        log_path: ``train_log.csv``, rewritten after every epoch.
        name: the method's name, for the progress bar and error messages.

    Returns:
        The log (one row per epoch) and the number of epochs resumed from the checkpoint.

    Raises:
        TrainingDivergedError: a loss term or gradient became NaN or infinite; nothing of the
            diverged epoch is written.
    """
    state, losses, optimizer = run.state, run.losses, run.optimizer
    log: list[dict[str, float]] = []
    start_epoch = 0
    resumed = checkpoint.resume(state, config.epochs)
    if resumed is not None:
        start_epoch, log = resumed
        print(f"resuming {checkpoint.path} after epoch {start_epoch}", file=sys.stderr)

    device = train_set.x.device
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    progress = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"train {name}",
        file=sys.stderr,
        disable=None,
    )
    # Parameters whose gradients the divergence guard checks; fp16 loss scaling skips steps with
    # non-finite gradients itself (that is how it finds its scale), so there only losses count.
    guarded = (
        [] if config.amp == "fp16" else [p for m in state.modules.values() for p in m.parameters()]
    )
    run.model.train()
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        term_sums = torch.zeros(len(losses), device=device)
        # per step: whether a loss term or gradient was non-finite (checked once per epoch,
        # where the epoch's log already waits for the device: no extra host sync per step)
        diverged = torch.zeros(steps_per_epoch, dtype=torch.bool, device=device)
        order = torch.randperm(len(train_set), generator=state.generators["shuffle"])
        for step, index in enumerate(_batches(len(train_set), config.batch_size, order)):
            x, y, physics = train_set.x[index], train_set.y[index], train_set.physics(index)
            terms = run.step(x, y, physics, epoch)
            diverged[step] = ~all_finite(terms, guarded)
            term_sums += terms * len(index)
            progress.update()
        means = (term_sums / len(train_set)).tolist()  # one host sync per epoch
        if bool(diverged.any()):
            raise _divergence(name, epoch, diverged, steps_per_epoch, losses, means, optimizer)
        run.scheduler.step()
        row: dict[str, float] = {"epoch": epoch + 1}
        row["loss_total"] = sum(means)
        row.update({_term_name(loss): value for loss, value in zip(losses, means, strict=True)})
        is_validation_epoch = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
        if val_set is not None and is_validation_epoch:
            row.update(validate(run.model, val_set, config.batch_size))
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["time_s"] = time.perf_counter() - started
        log.append(row)
        progress.set_postfix(
            loss=f"{row['loss_total']:.3g}", val_psnr=f"{row.get('val_psnr', float('nan')):.2f}"
        )
        write_log(log_path, log)
        checkpoint.save(epoch + 1, state, log)
    progress.close()
    write_log(log_path, log)
    return log, start_epoch


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
