"""The checks of ``external_runs``: runs made elsewhere that join the leaderboards.

Its own module because a ``transfer`` entry may name a ``model.pt`` this workflow trains, which
only the run plan (:mod:`ssibench.pipeline.plan`, itself built on the config checks) knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssibench.config import PHYSICS_KINDS
from ssibench.config.records import parse_model_config
from ssibench.errors import CONFIG_HINT, ConfigError, closest_hint
from ssibench.evaluation.checkpoint import run_parts
from ssibench.interop.checkpoints import deepinv_layout, peek_checkpoint
from ssibench.methods import METHODS
from ssibench.pipeline.plan import plan_runs

__all__ = ["check_external_runs"]

Config = Mapping[str, Any]


def _planned_models(config: Config) -> set[str]:
    """``model.pt`` paths of the runs the config trains."""
    plan = plan_runs(config)
    return {plan.run_path(*run, "model.pt") for run in plan.runs if METHODS[run[1]].trains}


def _check_method_alone(key: str, path: Path) -> None:
    """``method`` without ``model_spec``: a DeepInverse checkpoint (its model is in its weights).

    The file's structure is read without its tensors (:func:`peek_checkpoint`); one that cannot be
    read so is refused as a plain state_dict would be.
    """
    state = peek_checkpoint(path)
    if state is not None and deepinv_layout(state, path) is not None:
        return
    if state is not None and run_parts(state) is not None:
        raise ConfigError(
            f"{key}: {str(path)!r} is a model.pt of `ssibench train`, which records its method "
            f"and model: leave out `method`; {CONFIG_HINT}"
        )
    raise ConfigError(
        f"{key}: a plain state_dict needs both `method` and `model_spec` ({str(path)!r} is not a "
        "DeepInverse MoDL checkpoint, whose model spec is read from its weights; a model.pt of "
        f"`ssibench train` records both: give neither); {CONFIG_HINT}"
    )


def check_external_runs(config: Config) -> None:
    """Each ``external_runs`` entry: a configured scenario, one existing file, a name of its own."""
    scenarios = list(config["scenarios"])
    for name, run in config.get("external_runs", {}).items():
        key = f"external_runs.{name}"
        if name in METHODS:  # rows, folders and published numbers are keyed by the name
            raise ConfigError(
                f"{key}: {name!r} is a method's name; rename the external run, e.g. "
                f"'{name}-external'; {CONFIG_HINT}"
            )
        if run["scenario"] not in scenarios:
            raise ConfigError(
                f"{key}.scenario: unknown scenario {run['scenario']!r}"
                f"{closest_hint(run['scenario'], scenarios)}; configured: {', '.join(scenarios)}; "
                f"{CONFIG_HINT}"
            )
        if not PHYSICS_KINDS[config["scenarios"][run["scenario"]]["physics"]].ground_truth:
            raise ConfigError(
                f"{key}.scenario: {run['scenario']!r} has no ground truth to score a run on "
                "(measured k-space, training only); score it on a scenario with a reference, "
                f"with `transfer: true` for a model trained on {run['scenario']!r}; {CONFIG_HINT}"
            )
        given = [part for part in ("checkpoint", "metrics") if run.get(part) is not None]
        if len(given) != 1:
            raise ConfigError(
                f"{key}: give exactly one of `checkpoint` (a model.pt or state_dict to evaluate) "
                f"and `metrics` (a metrics.csv computed elsewhere), got "
                f"{' and '.join(given) or 'neither'}; {CONFIG_HINT}"
            )
        if run.get("transfer") and given[0] != "checkpoint":
            raise ConfigError(
                f"{key}.transfer: only a checkpoint is scored on another scenario's data; leave "
                f"transfer out with `metrics`; {CONFIG_HINT}"
            )
        path = Path(run[given[0]])
        if run.get("transfer") and str(path) in _planned_models(config):
            continue  # a run of this workflow: built before it is scored
        if not path.is_file():
            raise ConfigError(
                f"{key}.{given[0]}: no such file {str(path)!r} (relative paths start in the "
                f"working directory, {Path.cwd()}); {CONFIG_HINT}"
            )
        method, model_spec = run.get("method"), run.get("model_spec") or {}
        if (method is not None or model_spec) and given[0] != "checkpoint":
            raise ConfigError(
                f"{key}: `method` and `model_spec` describe a checkpoint; leave them out with "
                f"`metrics`; {CONFIG_HINT}"
            )
        if model_spec and method is None:  # a plain state_dict needs both; model.pt neither
            raise ConfigError(
                f"{key}: a plain state_dict needs both `method` and `model_spec` (a model.pt of "
                f"`ssibench train` records them: give neither); {CONFIG_HINT}"
            )
        if method is not None and not model_spec:
            _check_method_alone(key, path)
        if method is not None and (method not in METHODS or not METHODS[method].trains):
            trained = [m for m, spec in METHODS.items() if spec.trains]
            raise ConfigError(
                f"{key}.method: {method!r} is not a method with a network"
                f"{closest_hint(method, trained)}; valid: {', '.join(trained)}; {CONFIG_HINT}"
            )
        try:
            parse_model_config(model_spec)
        except ConfigError as error:
            raise ConfigError(f"{key}.model_spec: {error}; {CONFIG_HINT}") from None
