"""Training of one (scenario, method, seed) run: config records, step, checkpoint, loop.

- :mod:`~ssibench.training.config`: the ``model``/``train`` records and the network they build;
- :mod:`~ssibench.training.step`: one optimisation step and the loss wrappers of the model;
- :mod:`~ssibench.training.checkpoint`: checkpoint, log and the identity a resume must match;
- :mod:`~ssibench.training.loop`: :func:`train`, the epoch loop with validation and the
  divergence guard.
"""

from ssibench.training.checkpoint import CHECKPOINT, MODEL, RUN_RECORD, TRAIN_LOG, run_identity
from ssibench.training.config import (
    ModelConfig,
    TrainConfig,
    build_network,
    parse_model_config,
    parse_train_config,
    resolved_config,
)
from ssibench.training.loop import train, validate
from ssibench.training.step import adapt, forward_train, records_randomness, train_step, unwrap

__all__ = [
    "CHECKPOINT",
    "MODEL",
    "RUN_RECORD",
    "TRAIN_LOG",
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
    "validate",
]
