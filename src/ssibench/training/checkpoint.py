"""What a run writes to its folder and what it may resume: checkpoint, log, identity.

A checkpoint holds every piece of state that resuming needs to end bit-identical to an
uninterrupted run (model, optimisers, schedulers, gradient scalers, every random stream, the log),
and the run's identity (:func:`run_identity`): its resolved configuration but ``train.epochs``,
the store's training hash and the code hash. :func:`resume_checkpoint` restores it only when all
of that matches and it is not past the requested epochs (:func:`restart_reason` says why not).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssibench.data.identity import StoreIdentity
from ssibench.errors import DataFileError
from ssibench.io import atomic_path
from ssibench.provenance import code_hash, component_modules, config_differences
from ssibench.safe_load import load_torch_file

__all__ = [
    "CHECKPOINT",
    "MODEL",
    "RUN_RECORD",
    "TRAIN_LOG",
    "RunCheckpoint",
    "TrainingState",
    "restart_reason",
    "resume_checkpoint",
    "run_identity",
    "save_checkpoint",
    "write_log",
]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
TRAIN_LOG = "train_log.csv"
RUN_RECORD = "run.json"


def run_identity(config: Mapping[str, Any], identity: StoreIdentity, method: str) -> dict[str, Any]:
    """What a checkpoint must share to be resumed: configuration but ``train.epochs``, data, code.

    Extending ``epochs`` continues a run; any other change starts over.
    """
    train_config = {k: v for k, v in config["train"].items() if k != "epochs"}
    return {
        "config": json.loads(json.dumps({**config, "train": train_config}, default=str)),
        "training_hash": identity.training_hash,
        "code_hash": code_hash(method, component_modules(config)),
    }


def _csv_cell(value: object) -> str:
    """A log value as pandas' ``to_csv`` writes it: floats by ``repr``, NaN and missing empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def write_log(path: Path, log: list[dict[str, float]]) -> None:
    """Write the per-epoch rows ``log`` to ``train_log.csv`` (epoch and total loss first).

    Columns: ``epoch``, ``loss_total``, then the others in order of first appearance; a value a
    row lacks is empty. Written with the csv module, not pandas, so that a training job does not
    import pandas (~0.7 s of every job).
    """
    first = ["epoch", "loss_total"]
    seen = dict.fromkeys(key for row in log for key in row)
    columns = [c for c in first if c in seen] + [c for c in seen if c not in first]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)  # an empty log is one empty line, as pandas writes it
        writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in log)


@dataclass
class TrainingState:
    """Everything a checkpoint must hold to resume a run exactly, by name."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every part's state, by group and name."""
        return {
            "modules": {k: v.state_dict() for k, v in self.modules.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "generators": {k: v.get_state() for k, v in self.generators.items()},
        }

    def load_state_dict(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore every part from :meth:`state_dict`'s output."""
        for group in ("modules", "optimizers", "schedulers"):
            for name, target in getattr(self, group).items():
                target.load_state_dict(state[group][name])
        for name, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][name])
        for name, generator in self.generators.items():
            generator.set_state(state["generators"][name])


def save_checkpoint(
    path: Path,
    epoch: int,
    method: str,
    seed: int,
    run_id: Mapping[str, Any],
    state: TrainingState,
    log: list[dict[str, float]],
) -> None:
    """Write ``checkpoint.pt`` atomically: the state after ``epoch`` epochs and the identity."""
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


def resume_checkpoint(
    path: Path,
    method: str,
    seed: int,
    run_id: Mapping[str, Any],
    epochs: int,
    state: TrainingState,
) -> tuple[int, list[dict[str, float]]] | None:
    """Restore a checkpoint into ``state``; return (completed epochs, log).

    Returns None (train from scratch, saying why on stderr) when the checkpoint was made on other
    training data, with another configuration, by other code, or is past ``epochs``.
    """
    fix = f"delete it (rm {path}) to restart"
    saved = load_torch_file(path, fix, what="checkpoint")
    wrong = _malformed(saved)
    if wrong is not None:
        raise DataFileError(f"{path}: not a checkpoint of `ssibench train` ({wrong}); {fix}")
    if saved.get("method") != method or saved.get("seed") != seed:
        raise DataFileError(
            f"{path}: checkpoint of method {saved.get('method')!r} seed {saved.get('seed')}, not "
            f"{method!r} seed {seed}; delete it (rm {path}) or use another run directory"
        )
    reason = restart_reason(saved.get("identity"), run_id, saved["epoch"], epochs)
    if reason is not None:
        print(f"{path}: {reason}; training from scratch", file=sys.stderr)
        return None
    try:
        state.load_state_dict(saved["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # parts that do not fit
        cause = " ".join(str(error).split())[:200]
        raise DataFileError(
            f"{path}: its training state does not fit this run ({cause}); {fix}"
        ) from error
    return saved["epoch"], list(saved["log"])


#: The keys of a checkpoint and the types their values must have.
_CHECKPOINT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "epoch": int,
    "method": str,
    "seed": int,
    "identity": dict,
    "state": dict,
    "log": list,
}


def _malformed(saved: object) -> str | None:
    """What makes ``saved`` no checkpoint of :func:`save_checkpoint`, or None if nothing does."""
    if not isinstance(saved, dict):
        return f"a {type(saved).__name__}, not a dict"
    for key, kind in _CHECKPOINT_FIELDS.items():
        value = saved.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{key!r} is {type(value).__name__ if key in saved else 'missing'}"
    return None


def restart_reason(
    saved: Mapping[str, Any], run_id: Mapping[str, Any], saved_epoch: int, epochs: int
) -> str | None:
    """Why a checkpoint cannot be resumed, or None if it can."""
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


@dataclass(frozen=True)
class RunCheckpoint:
    """The checkpoint file of one run and the identity a resume must match.

    Attributes:
        path: ``checkpoint.pt`` of the run folder.
        method: the method name recorded in (and checked against) the checkpoint.
        seed: the training seed, likewise.
        run_id: :func:`run_identity` of the run (configuration, training data, code).
    """

    path: Path
    method: str
    seed: int
    run_id: Mapping[str, Any]

    def resume(
        self, state: TrainingState, epochs: int
    ) -> tuple[int, list[dict[str, float]]] | None:
        """Restore a matching checkpoint into ``state``; (completed epochs, log), or None."""
        if not self.path.exists():
            return None
        return resume_checkpoint(self.path, self.method, self.seed, self.run_id, epochs, state)

    def save(self, epoch: int, state: TrainingState, log: list[dict[str, float]]) -> None:
        """Write the state after ``epoch`` epochs (atomically)."""
        save_checkpoint(self.path, epoch, self.method, self.seed, self.run_id, state, log)
