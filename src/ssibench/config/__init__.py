"""Configuration (no torch import): typed records, physics kinds, helpers around the schema.

* :mod:`~ssibench.config.records`: the ``model``, ``train`` and ``evaluate`` records (the
  package's defaults) and their parsers;
* :mod:`~ssibench.config.kinds`: the physics kinds a scenario may name and what each implies;
* :mod:`~ssibench.config.files`: dropped scenarios, finite numbers.

A method's options record is :func:`ssibench.methods.options_record`.
"""

from ssibench.config.files import check_finite_numbers, drop_disabled_scenarios
from ssibench.config.kinds import (
    PHYSICS_KINDS,
    SIMULATED_2D_KINDS,
    TIME_SERIES_KINDS,
    PhysicsKind,
    physics_kind,
)
from ssibench.config.records import (
    EvaluateConfig,
    ModelConfig,
    TrainConfig,
    parse_evaluate_config,
    parse_model_config,
    parse_train_config,
)

__all__ = [
    "PHYSICS_KINDS",
    "SIMULATED_2D_KINDS",
    "TIME_SERIES_KINDS",
    "EvaluateConfig",
    "ModelConfig",
    "PhysicsKind",
    "TrainConfig",
    "check_finite_numbers",
    "drop_disabled_scenarios",
    "parse_evaluate_config",
    "parse_model_config",
    "parse_train_config",
    "physics_kind",
]
