"""Live training logs (``train.log_to``): what a finished epoch hands them.

The trainer's own log is ``train_log.csv`` (one row per epoch). A sink is an optional second
reader of the same numbers while the run trains, plus what the CSV cannot hold: every step's
loss terms and a validation image. It costs nothing unless asked for: without a sink the
trainer keeps no per-step values and no image.

The step's contract holds with a sink too (no data-dependent host sync inside a step): the
trainer gathers the per-step loss terms on the device and hands them over once per epoch, in
the epoch's one planned transfer (:func:`ssibench.training.loop.fit`). A sink writes an epoch
only after that epoch's checkpoint is saved, so a resumed run never writes an epoch twice.

The sinks by name (:data:`ssibench.training.run.SINKS`; the names are
:data:`ssibench.config.records.LOG_SINKS`):

- ``tensorboard``: TensorBoard event files in ``<run folder>/tensorboard/``
  (:mod:`ssibench.training.tensorboard`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

__all__ = ["EpochSink", "EpochValues"]


@dataclass(frozen=True)
class EpochValues:
    """What a finished epoch hands the sinks; everything on the host.

    Attributes:
        epoch: the epoch just finished, from 1.
        steps_per_epoch: optimisation steps per epoch (the last batch may be smaller).
        terms: the log's names of the loss terms (``loss_mc``, ``loss_ei``, ...), in the order
            of ``step_terms``' columns.
        step_terms: ``(steps_per_epoch, len(terms))`` float32: each step's loss terms (each the
            mean over its batch), in step order.
        row: the epoch's row of ``train_log.csv`` (``epoch``, ``loss_total``, the terms' epoch
            means, ``val_psnr``/``val_ssim`` on validation epochs, ``lr``, ``time_s``).
        images: on validation epochs ``{"reconstruction": (H, W), "target": (H, W)}`` float32,
            the magnitudes |x̂| and |x| of the first validation slice (its first frame for a
            time series); empty otherwise.
    """

    epoch: int
    steps_per_epoch: int
    terms: tuple[str, ...]
    step_terms: Tensor
    row: Mapping[str, float]
    images: Mapping[str, Tensor]

    @property
    def first_step(self) -> int:
        """The global number of the epoch's first optimisation step, from 1."""
        return (self.epoch - 1) * self.steps_per_epoch + 1

    @property
    def last_step(self) -> int:
        """The global number of the epoch's last optimisation step (its per-epoch values' step)."""
        return self.epoch * self.steps_per_epoch


class EpochSink(Protocol):
    """A live training log: written after every saved epoch, closed when training ends.

    Building one only checks that it can work (its package is installed); it opens nothing
    until its first :meth:`write`, so a run that fails before training leaves no trace of it.
    """

    def write(self, values: EpochValues) -> None:
        """Record one finished epoch."""
        ...

    def close(self) -> None:
        """Flush and release what the sink holds (also after a failed training)."""
        ...
