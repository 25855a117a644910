"""Config checks the JSON schema cannot express, and the config slices each job is given.

Every check raises :class:`~ssibench.errors.ConfigError` naming the dotted key, the bad value and
what is allowed, when the workflow starts and before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssibench.config import PHYSICS_KINDS, check_finite_numbers
from ssibench.config.records import parse_evaluate_config, parse_model_config, parse_train_config
from ssibench.data.splits import check_split_sizes
from ssibench.errors import CONFIG_HINT, ConfigError, closest_hint
from ssibench.evaluation.functional import BUILTIN_METRICS
from ssibench.evaluation.metrics import check_metric_names
from ssibench.masks import make_mask_generator
from ssibench.methods import METHODS, method_options, skip_reason
from ssibench.pipeline.data_source import check_data_source, n_volumes, volumes_known
from ssibench.pipeline.scenarios import (
    ACQUIRED_SCENARIO_KEYS,
    SIMULATE_KEYS,
    check_acquired_scenarios,
    drop_scenarios_without_kspace,
    scenario_spec,
)
from ssibench.plugins import load_plugins

__all__ = [
    "ACQUIRED_SCENARIO_KEYS",
    "CONFIG_HINT",
    "SIMULATE_KEYS",
    "apply_plugins",
    "check_config_values",
    "closest_hint",
    "drop_scenarios_without_kspace",
    "n_volumes",
    "scenario_spec",
    "ssibench_command",
    "train_config",
]

#: Tolerance of the check that the split fractions sum to 1.
SPLIT_SUM_TOLERANCE = 1e-6
Config = Mapping[str, Any]


def apply_plugins(config: dict[str, Any]) -> tuple[str, ...]:
    """Import the config's ``plugins`` and add ``extra_methods`` to ``methods`` (in place).

    Runs before the other checks, so the names a plugin registers (methods, models, metrics,
    physics, data sets) are valid everywhere in the config.

    Returns:
        The plugin modules loaded (config plugins and installed entry points).

    Raises:
        ConfigError: a plugin that cannot be imported or that registers a taken name.
    """
    loaded = load_plugins(config.get("plugins", []))
    methods = list(config["methods"])
    methods += [name for name in config.get("extra_methods", []) if name not in methods]
    config["methods"] = methods
    return loaded


def ssibench_command(config: Config) -> str:
    """The command line prefix of every job: ``ssibench`` plus ``--plugin <module>`` per plugin."""
    return " ".join(["ssibench", *(f"--plugin {name}" for name in config.get("plugins", []))])


def train_config(config: Config, method: str) -> dict[str, Any]:
    """The ``train`` section with the method's overrides from ``method_train`` applied.

    ``log_to: []`` (no live log, the default) is left out: how a run is watched is not part of
    it, so a job's params, and the run, stay the same with or without it unless it is turned on.
    """
    train = {**config["train"], **config["method_train"].get(method, {})}
    if not train.get("log_to"):
        train.pop("log_to", None)
    return train


def _check_method_names(config: Config) -> None:
    valid = ", ".join(METHODS)
    for index, method in enumerate(config["methods"]):
        if method not in METHODS:
            raise ConfigError(
                f"methods[{index}]: unknown method {method!r}"
                f"{closest_hint(method, list(METHODS))}; valid: {valid}; {CONFIG_HINT}"
            )
    for section in ("method_options", "method_train"):
        for method in config[section]:
            if method not in METHODS:
                raise ConfigError(
                    f"{section}.{method}: unknown method{closest_hint(method, list(METHODS))}; "
                    f"valid: {valid}; {CONFIG_HINT}"
                )


def _check_plugin_methods(config: Config) -> None:
    """Build each plugin method's losses once per scenario it applies to, before any job runs.

    A builder that fails, or a loss the trainer cannot call, then stops the workflow at once
    instead of in a training job after the data jobs.
    """
    import torch

    from ssibench.methods.builders import build_losses

    for method in config["methods"]:
        if METHODS[method].plugin is None:
            continue
        for scenario in config["scenarios"]:
            spec = scenario_spec(config, scenario)
            if skip_reason(method, spec) is not None:
                continue
            options = config["method_options"].get(method)
            try:
                build_losses(method, spec, options, torch.Generator())
            except ConfigError as error:
                raise ConfigError(f"{error}; {CONFIG_HINT}") from None
            except Exception as error:  # the plugin's own bug: name it, keep the cause
                raise ConfigError(
                    f"method {method!r} (plugin {METHODS[method].plugin!r}): building its losses "
                    f"for scenario {scenario!r} failed with {type(error).__name__}: {error}"
                ) from error


#: The time-series kinds a scenario may simulate (the others only come from stores).
SIMULATED_TIME_SERIES = ("sequential",)


def _check_physics_names(config: Config) -> None:
    """Every scenario names a physics it can be simulated with (built in or from a plugin)."""
    valid = [
        name
        for name, kind in PHYSICS_KINDS.items()
        if not kind.time_series or name in SIMULATED_TIME_SERIES
    ]
    for scenario, spec in config["scenarios"].items():
        if spec["physics"] not in valid:
            raise ConfigError(
                f"scenarios.{scenario}.physics: unknown physics {spec['physics']!r}"
                f"{closest_hint(spec['physics'], valid)}; valid: {', '.join(valid)} (a plugin "
                f"registers more with ssibench.register_physics); {CONFIG_HINT}"
            )


def _check_metric_names(config: Config) -> None:
    """``metrics`` names registered metrics (after the plugins), the built-ins among them."""
    try:
        names = check_metric_names(config.get("metrics"))
    except ConfigError as error:
        raise ConfigError(f"{error}; {CONFIG_HINT}") from None
    missing = [name for name in BUILTIN_METRICS if name not in names]
    if missing:
        raise ConfigError(
            f"metrics: {', '.join(missing)} missing (the tables and figures need "
            f"{', '.join(BUILTIN_METRICS)}); add your metrics after them; {CONFIG_HINT}"
        )


def check_config_values(config: Config) -> None:
    """Raise ``ConfigError`` for what the schema cannot check: cross-key rules, registries, files.

    Args:
        config: the workflow config after the schema filled its defaults.
    """
    check_finite_numbers(config)
    data = config["data"]
    split = data["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > SPLIT_SUM_TOLERANCE:
        raise ConfigError(
            f"data.split: train + val + test = {total:g}, must be 1 (got {split}); {CONFIG_HINT}"
        )
    _check_method_names(config)
    _check_physics_names(config)
    _check_metric_names(config)
    for method, overrides in config["method_options"].items():
        method_options(method, overrides)  # names the option, the value and what is allowed
    try:  # the values the jobs will parse, checked now rather than after the data jobs
        parse_model_config(config["model"])
        parse_evaluate_config(config["evaluate"])
        for method in config["methods"]:
            parse_train_config(train_config(config, method))
    except ConfigError as error:
        raise ConfigError(f"{error}; {CONFIG_HINT}") from None
    n_samples = config["evaluate"]["n_samples"]
    if config["report"]["sample_index"] >= n_samples:
        raise ConfigError(
            f"report.sample_index: {config['report']['sample_index']} is not below "
            f"evaluate.n_samples = {n_samples} (the number of saved test slices); {CONFIG_HINT}"
        )
    simulate = config["simulate"]
    try:  # the line counts at this image width must be feasible
        masks = make_mask_generator(
            simulate["mask"], simulate["acceleration"], simulate["center_fraction"]
        )
        masks.pdf(data["image_size"][1])
    except ValueError as error:
        raise ConfigError(
            f"simulate (at data.image_size {data['image_size']}): {error}; {CONFIG_HINT}"
        ) from None
    check_data_source(config["data"])
    check_acquired_scenarios(config)
    _check_plugin_methods(config)
    fractions = [split[part] for part in ("train", "val", "test")]
    if volumes_known(data):  # a plugin's data set not built yet is checked at extraction
        check_split_sizes(n_volumes(data), fractions, where="data.split")
