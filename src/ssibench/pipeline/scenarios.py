"""Scenario specs as the jobs get them, and the checks of the acquired-k-space scenarios.

:func:`scenario_spec` merges a scenario with the ``simulate`` section and drops the keys of other
physics kinds (so editing them reruns nothing); the acquired-k-space scenarios (``raw-multicoil``)
are checked, or left out where the data source has no raw k-space, before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssibench.config import PHYSICS_KINDS
from ssibench.config.sources import SOURCE_KINDS, source_kind
from ssibench.errors import CONFIG_HINT, ConfigError

__all__ = [
    "ACQUIRED_SCENARIO_KEYS",
    "KSPACE_SOURCES",
    "SIMULATE_KEYS",
    "check_acquired_scenarios",
    "drop_scenarios_without_kspace",
    "scenario_spec",
]

#: Keys of the `simulate` section that every scenario spec inherits.
SIMULATE_KEYS = ("mask", "acceleration", "center_fraction", "center_lines")
#: Scenario keys only the acquired-k-space kinds read (the raw k-space's selection and crop).
ACQUIRED_SCENARIO_KEYS = ("crop", "filter", "slices_per_volume", "espirit")

Config = Mapping[str, Any]


def scenario_spec(config: Config, scenario: str) -> dict[str, Any]:
    """The spec ``simulate``, ``train`` and ``evaluate`` get: the scenario merged with ``simulate``.

    Keys of another physics are dropped: editing them would only trigger needless reruns; so is
    ``center_lines`` when null (specs from before it existed keep their params). An acquired
    scenario's ``crop`` defaults to ``data.image_size``; it has no simulated ``n_coils`` (the
    volumes' own count; ``filter.n_coils`` selects one). A scenario on k-space undersampled at
    acquisition (``measured-multicoil``) inherits no mask keys and names its ``crop``.
    """
    spec = {key: config["simulate"].get(key) for key in SIMULATE_KEYS}
    spec.update(config["scenarios"][scenario])
    kind = PHYSICS_KINDS[spec["physics"]]
    if spec.get("center_lines") is None:
        spec.pop("center_lines", None)
    if (
        spec.get("center_lines") is not None
        and "center_fraction" not in config["scenarios"][scenario]
    ):
        spec["center_fraction"] = None  # a scenario's own centre lines replace simulate's fraction
    if not kind.coils or kind.acquired:
        spec.pop("n_coils", None)
    if not kind.time_series:
        spec.pop("n_frames", None)
        spec.pop("frame_partition", None)
    if kind.ground_truth:
        spec.pop("kspace_dir", None)
    else:  # the acquisition's own sampling: no drawn-mask keys (a scenario's own are refused)
        for key in SIMULATE_KEYS:
            if key not in config["scenarios"][scenario]:
                spec.pop(key, None)
        if spec.get("shared_mask") is False:  # the schema's default
            del spec["shared_mask"]
    if kind.acquired:
        if kind.ground_truth:  # measured k-space names its crop (its width is the data's)
            spec.setdefault("crop", list(config["data"]["image_size"]))
        spec.setdefault("filter", {})
        spec.setdefault("slices_per_volume", 1)
        spec.setdefault("espirit", {})
    else:
        for key in ACQUIRED_SCENARIO_KEYS:
            spec.pop(key, None)
    return spec


#: Data sources whose raw volumes carry multicoil k-space (the acquired-k-space scenarios read it).
KSPACE_SOURCES = tuple(name for name, kind in SOURCE_KINDS.items() if kind.kspace)


def _reads_source_kspace(spec: Mapping[str, Any]) -> bool:
    """Whether a scenario reads the data source's raw k-space (not its own ``kspace_dir``)."""
    kind = PHYSICS_KINDS.get(spec["physics"])
    return kind is not None and kind.acquired and kind.ground_truth


def drop_scenarios_without_kspace(config: Config) -> list[str]:
    """Remove the acquired-k-space scenarios when ``data.source`` has no raw k-space.

    The default config runs ``raw-multicoil`` on the demo; a user's image folder or a plugin's data
    set has no k-space to read, so the scenario is left out (with a note) rather than failing.

    Returns:
        One line per scenario left out, for the log.

    Raises:
        ConfigError: if no scenario is left.
    """
    source = config["data"]["source"]
    if source_kind(source).kspace:
        return []
    dropped = [name for name, spec in config["scenarios"].items() if _reads_source_kspace(spec)]
    if dropped and len(dropped) == len(config["scenarios"]):
        raise ConfigError(
            f"scenarios: {', '.join(dropped)} read the raw volumes' own multicoil k-space, which "
            f"data.source {source!r} does not have; use data.source demo or fastmri, or add a "
            f"simulated scenario; {CONFIG_HINT}"
        )
    for name in dropped:
        del config["scenarios"][name]
    return [
        f"ssibench: scenario {name} left out: data.source {source!r} has no raw multicoil "
        "k-space (it needs demo or fastmri volumes)"
        for name in dropped
    ]


def check_acquired_scenarios(config: Config) -> None:
    """An acquired-k-space scenario's spec and mask are sound (before any job runs)."""
    from ssibench.simulate.acquired_spec import check_acquired_mask, validate_acquired_spec

    for scenario, given in config["scenarios"].items():
        if not PHYSICS_KINDS[given["physics"]].acquired:
            continue
        if not PHYSICS_KINDS[given["physics"]].ground_truth:
            _check_measured_scenario(config, scenario)
            continue
        if not source_kind(config["data"]["source"]).kspace:
            raise ConfigError(
                f"scenarios.{scenario}.physics: {given['physics']} reads the raw volumes' own "
                f"multicoil k-space, which data.source {config['data']['source']!r} does not "
                f"have; use data.source demo or fastmri, or remove the scenario; {CONFIG_HINT}"
            )
        try:
            spec = validate_acquired_spec(scenario, scenario_spec(config, scenario))
            check_acquired_mask(scenario, spec)
        except ConfigError as error:
            raise ConfigError(f"{error}; {CONFIG_HINT}") from None


def _check_measured_scenario(config: Config, scenario: str) -> None:
    """A scenario on k-space undersampled at acquisition: sound spec, volumes in its folder."""
    from pathlib import Path

    from ssibench.simulate.acquired_spec import validate_measured_spec

    try:
        spec = validate_measured_spec(scenario, scenario_spec(config, scenario))
    except ConfigError as error:
        raise ConfigError(f"{error}; {CONFIG_HINT}") from None
    folder = Path(spec["kspace_dir"])
    if not folder.is_dir() or not any(folder.glob("*.h5")):
        raise ConfigError(
            f"scenarios.{scenario}.kspace_dir: {folder} has no .h5 volumes; point it at a folder "
            "of fastMRI-format multicoil files undersampled at acquisition (from fully sampled "
            f"ones: ssibench undersample --raw-dir RAW --out-dir {folder}); {CONFIG_HINT}"
        )
