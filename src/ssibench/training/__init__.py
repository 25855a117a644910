"""Training of one (scenario, method, seed) run: config records, step, checkpoint, loop, run.

- :mod:`~ssibench.training.config`: the network a ``model`` record builds, a run's full config
  (the records are :mod:`ssibench.config.records`);
- :mod:`~ssibench.training.step`: one optimisation step and the loss wrappers of the model;
- :mod:`~ssibench.training.adversarial`: one alternating generator/discriminator step;
- :mod:`~ssibench.training.checkpoint`: checkpoint, log and the identity a resume must match;
- :mod:`~ssibench.training.loop`: :func:`fit`, the epoch loop over built collaborators, with
  validation and the divergence guard;
- :mod:`~ssibench.training.run`: :func:`train`, a method name → collaborators → ``fit`` →
  ``model.pt`` and ``run.json``;
- :mod:`~ssibench.training.sinks`, :mod:`~ssibench.training.tensorboard`: live logs
  (``train.log_to``), what an epoch hands them and the TensorBoard one.
"""

from ssibench.config.records import (
    ModelConfig,
    TrainConfig,
    parse_model_config,
    parse_train_config,
)
from ssibench.training.checkpoint import (
    CHECKPOINT,
    MODEL,
    RUN_RECORD,
    TRAIN_LOG,
    RunCheckpoint,
    run_identity,
)
from ssibench.training.config import build_network, resolved_config
from ssibench.training.loop import Trainable, fit, validate
from ssibench.training.run import build_trainable, train
from ssibench.training.step import adapt, forward_train, records_randomness, train_step, unwrap

__all__ = [
    "CHECKPOINT",
    "MODEL",
    "RUN_RECORD",
    "TRAIN_LOG",
    "ModelConfig",
    "RunCheckpoint",
    "TrainConfig",
    "Trainable",
    "adapt",
    "build_network",
    "build_trainable",
    "fit",
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
