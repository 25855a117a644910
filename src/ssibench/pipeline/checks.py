"""Config checks the JSON schema cannot express, and the config slices each job is given.

Every check raises :class:`~ssibench.errors.ConfigError` naming the dotted key, the bad value and
what is allowed, when the workflow starts and before any job runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ssibench.config import PHYSICS_KINDS, check_finite_numbers
from ssibench.config.records import parse_evaluate_config, parse_model_config, parse_train_config
from ssibench.data.images import IMAGE_SUFFIXES, image_files, raw_files
from ssibench.data.sources import BUILTIN_SOURCES, DATASETS
from ssibench.data.splits import check_split_sizes
from ssibench.errors import CONFIG_HINT, ConfigError
from ssibench.evaluation.functional import BUILTIN_METRICS
from ssibench.evaluation.metrics import check_metric_names
from ssibench.masks import make_mask_generator
from ssibench.methods import METHODS, method_options, skip_reason
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
#: Volume count of a plugin data set not built yet. Only a dry run shows resources sized for it:
#: Snakemake evaluates the resource functions when it schedules a job, after the data set is built.
PLUGIN_VOLUMES_UNKNOWN = 100

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


def closest_hint(name: str, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to a misspelt ``name``, else ``""``."""
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plugin_raw_dir(data: Config) -> Path:
    return Path("data/raw") / f"{data['name']}-{data['image_size'][0]}x{data['image_size'][1]}"


def volumes_known(data: Config) -> bool:
    """Whether :func:`n_volumes` counts real volumes (a plugin's data set may not be built yet)."""
    return data["source"] in BUILTIN_SOURCES or _plugin_raw_dir(data).is_dir()


def n_volumes(data: Config) -> int:
    """Raw volumes extracted: ``data.demo.n_volumes``, or the files in ``data.raw_dir``.

    Those are the ``.h5`` files for ``fastmri`` and the image files for ``images`` (one volume
    each, :func:`ssibench.data.images.image_files`).
    """
    if data["source"] == "demo":
        return int(data["demo"]["n_volumes"])
    if data["source"] not in BUILTIN_SOURCES:  # a plugin's data set, once built
        built = _plugin_raw_dir(data)
        return len(list(built.glob("*.npy"))) if built.is_dir() else PLUGIN_VOLUMES_UNKNOWN
    if data["source"] == "images":
        return len(image_files(data["raw_dir"]))
    return len(list(Path(data["raw_dir"]).glob("*.h5")))


#: ``train`` keys left out of a job's params at these values (the trainer's defaults).
TRAIN_PARAM_DEFAULTS = {"amp": "none", "tf32": True, "deterministic": False}


def train_config(config: Config, method: str) -> dict[str, Any]:
    """The ``train`` section with the method's overrides from ``method_train`` applied.

    Keys at the trainer's default (``amp: none``, ``tf32: true``, ``deterministic: false``) are
    left out: runs made before the keys existed keep their params (Snakemake reruns a job whose
    params changed).
    """
    train = {**config["train"], **config["method_train"].get(method, {})}
    for key, default in TRAIN_PARAM_DEFAULTS.items():
        if train.get(key) == default:
            del train[key]
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


def _check_data(config: Config) -> None:
    data = config["data"]
    if data["source"] not in BUILTIN_SOURCES and data["source"] not in DATASETS:
        valid = [*BUILTIN_SOURCES, *DATASETS]
        raise ConfigError(
            f"data.source: unknown source {data['source']!r}{closest_hint(data['source'], valid)}; "
            f"valid: {', '.join(valid)} (a plugin registers more with ssibench.register_dataset; "
            f"list its module under plugins:); {CONFIG_HINT}"
        )
    if data["source"] == "images":
        _check_image_folder(data["raw_dir"])
    if data["source"] != "fastmri":
        return
    raw_dir = data["raw_dir"]
    if raw_dir is None:
        raise ConfigError(
            "data.raw_dir: required when data.source is 'fastmri'; set it to the folder of "
            "fastMRI .h5 files, e.g. --config data='{source: fastmri, raw_dir: /data/brain}'"
        )
    if not Path(raw_dir).is_dir():
        raise ConfigError(f"data.raw_dir: {raw_dir!r} is not a folder; {CONFIG_HINT}")
    if not any(Path(raw_dir).glob("*.h5")):
        raise ConfigError(
            f"data.raw_dir: {raw_dir!r} holds no .h5 files; point it to the fastMRI volumes"
        )


def _check_image_folder(raw_dir: str | None) -> None:
    if raw_dir is None:
        raise ConfigError(
            "data.raw_dir: required when data.source is 'images'; set it to the folder of your "
            "images, e.g. --config data='{source: images, raw_dir: /data/my_images}'"
        )
    if not Path(raw_dir).is_dir():
        raise ConfigError(f"data.raw_dir: {raw_dir!r} is not a folder; {CONFIG_HINT}")
    if not image_files(raw_dir):
        others = sorted({path.suffix or path.name for path in raw_files(raw_dir)})
        found = f" (found: {', '.join(others)})" if others else ""
        raise ConfigError(
            f"data.raw_dir: {raw_dir!r} holds no image files{found}; data.source 'images' reads "
            f"{', '.join(IMAGE_SUFFIXES)} files; point data.raw_dir at them"
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
    _check_data(config)
    check_acquired_scenarios(config)
    _check_plugin_methods(config)
    fractions = [split[part] for part in ("train", "val", "test")]
    if volumes_known(data):  # a plugin's data set not built yet is checked at extraction
        check_split_sizes(n_volumes(data), fractions, where="data.split")
