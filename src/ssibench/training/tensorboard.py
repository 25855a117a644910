"""The ``tensorboard`` sink of ``train.log_to``: a run's curves as TensorBoard event files.

Written to ``<run folder>/tensorboard/``, so ``tensorboard --logdir results/<dataset>/runs`` shows
every run side by side while the workflow trains. All values share one x-axis, the global
optimisation step (from 1); an epoch's values sit at its last step. Tags:

- ``train_step/loss_total`` and ``train_step/loss_<term>``: every step's loss terms (each the
  mean over the step's batch) and their sum;
- ``train/<column>``: every column of ``train_log.csv`` but the validation scores — the epoch
  means ``loss_total`` and ``loss_<term>``, ``lr`` (the rate of the next epoch), ``time_s``
  and ``epoch``;
- ``val/psnr``, ``val/ssim``: the validation scores;
- ``val/reconstruction`` (every validation epoch) and ``val/target`` (once per process): the
  magnitude of the first validation slice, both divided by the target's maximum.

A resumed run appends a new event file to the folder. Epochs are written after their checkpoint is
saved, so a resume never repeats one; a run that starts over (its checkpoint made with other code
or settings) does. Each writer therefore opens with ``purge_step`` at the first step it writes,
which tells TensorBoard to hide whatever earlier files hold from that step on: no curve shows a
step twice.

The writer's own thread writes the events and flushes them every ``_FLUSH_S`` seconds, so the
training loop only queues them: tens of milliseconds per epoch on a CPU, most of it encoding the
image as PNG on validation epochs.

TensorBoard is an optional dependency (``pip install 'ssibench[tensorboard]'``), imported only
when a run asks for this sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssibench.errors import ConfigError
from ssibench.training.sinks import EpochValues

__all__ = ["INSTALL_HINT", "TENSORBOARD_DIR", "TensorBoardLog", "epoch_tag"]

#: The event files' folder inside a run folder.
TENSORBOARD_DIR = "tensorboard"
#: The command that installs what this sink needs.
INSTALL_HINT = "pip install 'ssibench[tensorboard]'"
#: Log columns of the validation scores (``val_psnr`` → ``val/psnr``).
_VALIDATION_PREFIX = "val_"
#: Events the writer's background thread may lag behind by: an epoch's per-step scalars (a few
#: per step) are queued without the training loop waiting for the disk.
_QUEUE_EVENTS = 4096
#: Seconds between the background thread's flushes to disk: how live the curves are. The loop
#: never flushes itself (a flush waits for the disk, ~0.1 s); closing the sink does.
_FLUSH_S = 10


def epoch_tag(column: str) -> str:
    """The TensorBoard tag of a ``train_log.csv`` column.

    Example:
        >>> epoch_tag("val_psnr"), epoch_tag("loss_mc")
        ('val/psnr', 'train/loss_mc')
    """
    if column.startswith(_VALIDATION_PREFIX):
        return "val/" + column.removeprefix(_VALIDATION_PREFIX)
    return "train/" + column


class TensorBoardLog:
    """Writes each finished epoch to TensorBoard event files in ``log_dir``.

    The folder and its first event file are made at the first :meth:`write` (a run resumed
    after its last epoch writes nothing).

    Raises:
        ConfigError: from the constructor, when the ``tensorboard`` package is not installed.
    """

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch's module raises it when tensorboard is missing
            raise ConfigError(
                f"train.log_to: tensorboard needs the tensorboard package, which is not "
                f"installed ({error}); install it with {INSTALL_HINT}, or remove tensorboard "
                "from train.log_to"
            ) from error
        self.log_dir = log_dir
        self._summary_writer = SummaryWriter
        self._writer: Any = None
        self._target_written = False

    def write(self, values: EpochValues) -> None:
        """Queue one epoch's per-step and per-epoch scalars (and images) for the event file."""
        if self._writer is None:
            # hides what earlier files hold from this step on (module docstring)
            self._writer = self._summary_writer(
                log_dir=str(self.log_dir),
                purge_step=values.first_step,
                max_queue=_QUEUE_EVENTS,
                flush_secs=_FLUSH_S,
            )
        writer = self._writer
        totals = values.step_terms.sum(dim=1).tolist()
        per_step = values.step_terms.tolist()
        for offset, (total, terms) in enumerate(zip(totals, per_step, strict=True)):
            step = values.first_step + offset
            writer.add_scalar("train_step/loss_total", total, step)
            for name, value in zip(values.terms, terms, strict=True):
                writer.add_scalar(f"train_step/{name}", value, step)
        for column, value in values.row.items():
            writer.add_scalar(epoch_tag(column), value, values.last_step)
        if values.images:
            target = values.images["target"]
            scale = float(target.max()) or 1.0  # an all-zero target: shown as it is
            if not self._target_written:
                writer.add_image("val/target", target / scale, values.last_step, dataformats="HW")
                self._target_written = True
            reconstruction = (values.images["reconstruction"] / scale).clamp(0.0, 1.0)
            writer.add_image(
                "val/reconstruction", reconstruction, values.last_step, dataformats="HW"
            )

    def close(self) -> None:
        """Flush and close the event file (none was opened if no epoch was written)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
