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
Each saved epoch prints one progress line (:func:`epoch_line`, silenced by ``ssibench --quiet``)
and, when the run has live logs (``train.log_to``, :mod:`ssibench.training.sinks`), goes to them
with every step's loss terms and a validation image; without one the loop keeps neither.

:func:`ssibench.training.run.train` builds these collaborators from a method name.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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
from ssibench.training.sinks import EpochSink, EpochValues
from ssibench.training.step import StepFunction, all_finite

__all__ = [
    "Trainable",
    "Validation",
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
    return _validation_pass(model, data, batch_size, first_image=False)[0]


def _magnitude(x: Tensor) -> Tensor:
    """|x| of one image ``(2, *, H, W)`` (real/imaginary in dim 0): ``(H, W)``, the first frame."""
    magnitude = x.float().square().sum(dim=0).sqrt()
    return magnitude.reshape(-1, *magnitude.shape[-2:])[0]


@torch.no_grad()
def _validation_pass(
    model: nn.Module, data: MeasurementSet, batch_size: int, first_image: bool
) -> tuple[Tensor, Tensor | None]:
    """:func:`validation_sums`, and with ``first_image`` the first slice's magnitudes.

    The magnitudes ``(2, H, W)`` (reconstruction, target) stay on the device. The image comes
    from the validation's own forward: an extra one could draw from a loss wrapper's random
    stream and so change the training.
    """
    sums = torch.zeros(2, device=data.x.device)
    first = None
    for index in _batches(len(data), batch_size, data.x.device):
        x_net = model(data.y[index], data.physics(index))
        scores = image_metrics(x_net, data.x[index], "ssibench")
        sums += torch.stack([scores["psnr"].sum(), scores["ssim"].sum()])
        if first_image and first is None:
            first = torch.stack([_magnitude(x_net[0]), _magnitude(data.x[index][0])])
    return sums, first


class Validation(NamedTuple):
    """The scores of a validation and, when asked for, its image (:func:`validate`).

    Attributes:
        scores: ``val_psnr`` and ``val_ssim``, the means over the split.
        images: ``{"reconstruction": (H, W), "target": (H, W)}`` on the host, the magnitudes of
            the first slice; empty unless asked for.
    """

    scores: dict[str, float]
    images: dict[str, Tensor]


def validate(
    model: nn.Module, data: MeasurementSet, batch_size: int, image: bool = False
) -> Validation:
    """Mean PSNR and SSIM (``ssibench`` mode) of ``model`` over ``data``, model in eval mode.

    With ``image``, also the magnitudes of the first slice's reconstruction and target, read in
    the same transfer as the scores.
    """
    was_training = model.training
    model.eval()
    sums, first = _validation_pass(model, data, batch_size, first_image=image)
    model.train(was_training)
    images: dict[str, Tensor] = {}
    if first is None:
        psnr, ssim = sums.tolist()  # the one host sync of a validation
    else:
        host = torch.cat([sums, first.flatten()]).cpu()  # the one host sync, image included
        psnr, ssim = host[:2].tolist()
        reconstruction, target = host[2:].view(first.shape)
        images = {"reconstruction": reconstruction, "target": target}
    n = max(len(data), 1)
    return Validation({"val_psnr": psnr / n, "val_ssim": ssim / n}, images)


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
    sinks: Sequence[EpochSink] = (),
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
        sinks: live logs, each written after every saved epoch (:class:`EpochValues`); the
            caller closes them. Without one, no per-step values or images are kept.

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
    terms = tuple(_term_name(loss) for loss in losses)
    # No per-step bar: one line per epoch is readable in a log file and in a terminal alike.
    loop_started = time.perf_counter()
    guarded = divergence_guarded(run, config)
    run.model.train()
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        # each step's terms, kept on the device until the epoch's sync; only for a live log
        step_terms = (
            torch.zeros(steps_per_epoch, len(losses), device=train_set.x.device) if sinks else None
        )
        term_sums, diverged = run_epoch(
            run, train_set, config.batch_size, epoch, guarded, step_terms
        )
        # the epoch's one planned host sync: its log line and the divergence check
        means, host_step_terms = _epoch_means(term_sums, len(train_set), step_terms)
        if bool(diverged.any()):
            raise _divergence(name, epoch, diverged, steps_per_epoch, losses, means, optimizer)
        run.scheduler.step()
        row: dict[str, float] = {"epoch": epoch + 1}
        row["loss_total"] = sum(means)
        row.update({_term_name(loss): value for loss, value in zip(losses, means, strict=True)})
        is_validation_epoch = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
        images: dict[str, Tensor] = {}
        if val_set is not None and is_validation_epoch:
            validation = validate(run.model, val_set, config.batch_size, image=bool(sinks))
            row.update(validation.scores)
            images = validation.images
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["time_s"] = time.perf_counter() - started
        log.append(row)
        write_log(log_path, log)
        checkpoint.save(epoch + 1, state, log)
        if host_step_terms is not None:
            # after the save: an epoch a sink holds is one a restart does not train again
            values = EpochValues(epoch + 1, steps_per_epoch, terms, host_step_terms, row, images)
            for sink in sinks:
                sink.write(values)
        # after the save, so a printed epoch is one a restart resumes after; the pace includes
        # validation and the checkpoint write, as the remaining epochs will
        pace = (time.perf_counter() - loop_started) / (epoch + 1 - start_epoch)
        progress(epoch_line(row, config.epochs, pace))
    write_log(log_path, log)
    return log, start_epoch


def _epoch_means(
    term_sums: Tensor, n: int, step_terms: Tensor | None
) -> tuple[list[float], Tensor | None]:
    """The epoch means of the loss terms, and the per-step terms on the host when kept.

    One transfer either way: the per-step terms ride along with the means.
    """
    means = term_sums / n
    if step_terms is None:
        return means.tolist(), None
    host = torch.cat([means[None], step_terms]).cpu()
    return host[0].tolist(), host[1:]


def divergence_guarded(run: Trainable, config: TrainConfig) -> list[nn.Parameter]:
    """The parameters whose gradients the divergence guard checks.

    fp16 loss scaling skips steps with non-finite gradients itself (that is how it finds its
    scale), so there only the loss terms count.
    """
    if config.amp == "fp16":
        return []
    return [p for m in run.state.modules.values() for p in m.parameters()]


def run_epoch(
    run: Trainable,
    train_set: MeasurementSet,
    batch_size: int,
    epoch: int,
    guarded: list,
    step_terms: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The steps of one epoch, without a host sync: (Σ_b |b| Lᵢ ``(len(losses),)``, diverged).

    The batches follow a permutation drawn from the ``shuffle`` stream on the CPU and moved to
    the device once. ``diverged`` ``(steps,)`` bool says, per step, whether a loss term or a
    gradient of ``guarded`` was not finite; the caller checks it once per epoch, where the log
    already waits for the device. ``step_terms`` ``(steps, len(losses))`` on the device, when
    given, receives each step's loss terms (a device copy, no sync).
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
        if step_terms is not None:
            step_terms[step] = terms
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
