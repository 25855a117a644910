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
Each saved epoch prints one progress line (:func:`epoch_line`, silenced by ``ssibench --quiet``).

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

from ssibench.config.records import TrainConfig
from ssibench.data.measurements import MeasurementSet
from ssibench.errors import TrainingDivergedError
from ssibench.evaluation.functional import image_metrics
from ssibench.losses import Loss
from ssibench.progress import format_duration, progress
from ssibench.rng import on_device
from ssibench.training.checkpoint import RunCheckpoint, TrainingState, write_log
from ssibench.training.step import StepFunction, all_finite

__all__ = [
    "Trainable",
    "divergence_guarded",
    "epoch_line",
    "fit",
    "run_epoch",
    "validate",
    "validation_sums",
]


def _term_name(loss: Loss) -> str:
    """Column name of a loss term in the log, e.g. ``EILoss`` → ``loss_ei``."""
    return "loss_" + type(loss).__name__.removesuffix("Loss").lower()


def epoch_line(row: dict[str, float], epochs: int, seconds_per_epoch: float) -> str:
    """The progress line of a finished epoch, from its log ``row``.

    E.g. ``epoch 3/150  loss_mc 0.0123  loss_ei 0.0456  val_psnr 31.20  12.3 s/epoch  ETA
    0:30:08``: every loss term, the validation PSNR on validation epochs, the mean wall time of
    the epochs of this process and the time the remaining epochs take at that pace.
    """
    epoch = int(row["epoch"])
    fields = [f"epoch {epoch}/{epochs}"]
    # the terms, not loss_total: their sum, which the log has
    terms = [key for key in row if key.startswith("loss_") and key != "loss_total"]
    fields += [f"{key} {row[key]:.4g}" for key in terms]
    if "val_psnr" in row:
        fields.append(f"val_psnr {row['val_psnr']:.2f}")
    fields.append(f"{seconds_per_epoch:.3g} s/epoch")
    fields.append(f"ETA {format_duration(seconds_per_epoch * (epochs - epoch))}")
    return "  ".join(fields)


def _batches(n: int, batch_size: int, device: torch.device, order: Tensor | None = None) -> list:
    """Row indices of each batch, on ``device`` (indexing device data with a CPU index syncs)."""
    if order is None:
        return [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    return list(on_device(order, device).split(batch_size))


@torch.no_grad()
def validation_sums(model: nn.Module, data: MeasurementSet, batch_size: int) -> Tensor:
    """Σ PSNR and Σ SSIM (``ssibench`` mode) of ``model`` over ``data``: ``(2,)`` on the device.

    No host sync: the caller reads the sums once (:func:`validate`).
    """
    sums = torch.zeros(2, device=data.x.device)
    for index in _batches(len(data), batch_size, data.x.device):
        scores = image_metrics(model(data.y[index], data.physics(index)), data.x[index], "ssibench")
        sums += torch.stack([scores["psnr"].sum(), scores["ssim"].sum()])
    return sums


def validate(model: nn.Module, data: MeasurementSet, batch_size: int) -> dict[str, float]:
    """Mean PSNR and SSIM (``ssibench`` mode) of ``model`` over ``data``, model in eval mode."""
    was_training = model.training
    model.eval()
    sums = validation_sums(model, data, batch_size)
    model.train(was_training)
    psnr, ssim = sums.tolist()  # the one host sync of a validation
    n = max(len(data), 1)
    return {"val_psnr": psnr / n, "val_ssim": ssim / n}


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
        name: the method's name, for error messages.

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

    steps_per_epoch = -(-len(train_set) // config.batch_size)
    # No per-step bar: one line per epoch is readable in a log file and in a terminal alike.
    loop_started = time.perf_counter()
    guarded = divergence_guarded(run, config)
    run.model.train()
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        term_sums, diverged = run_epoch(run, train_set, config.batch_size, epoch, guarded)
        # the epoch's one planned host sync: its log line and the divergence check
        means = (term_sums / len(train_set)).tolist()
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
        write_log(log_path, log)
        checkpoint.save(epoch + 1, state, log)
        # after the save, so a printed epoch is one a restart resumes after; the pace includes
        # validation and the checkpoint write, as the remaining epochs will
        pace = (time.perf_counter() - loop_started) / (epoch + 1 - start_epoch)
        progress(epoch_line(row, config.epochs, pace))
    write_log(log_path, log)
    return log, start_epoch


def divergence_guarded(run: Trainable, config: TrainConfig) -> list[nn.Parameter]:
    """The parameters whose gradients the divergence guard checks.

    fp16 loss scaling skips steps with non-finite gradients itself (that is how it finds its
    scale), so there only the loss terms count.
    """
    if config.amp == "fp16":
        return []
    return [p for m in run.state.modules.values() for p in m.parameters()]


def run_epoch(
    run: Trainable, train_set: MeasurementSet, batch_size: int, epoch: int, guarded: list
) -> tuple[Tensor, Tensor]:
    """The steps of one epoch, without a host sync: (Σ_b |b| Lᵢ ``(len(losses),)``, diverged).

    The batches follow a permutation drawn from the ``shuffle`` stream on the CPU and moved to
    the device once. ``diverged`` ``(steps,)`` bool says, per step, whether a loss term or a
    gradient of ``guarded`` was not finite; the caller checks it once per epoch, where the log
    already waits for the device.
    """
    device = train_set.x.device
    order = torch.randperm(len(train_set), generator=run.state.generators["shuffle"])
    batches = _batches(len(train_set), batch_size, device, order)
    term_sums = torch.zeros(len(run.losses), device=device)
    diverged = torch.zeros(len(batches), dtype=torch.bool, device=device)
    for step, index in enumerate(batches):
        x, y, physics = train_set.x[index], train_set.y[index], train_set.physics(index)
        terms = run.step(x, y, physics, epoch)
        diverged[step] = ~all_finite(terms, guarded)
        term_sums += terms * index.shape[0]
    return term_sums, diverged


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
