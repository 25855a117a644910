"""Config-file helpers that run around schema validation: dropped scenarios, finite numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ssibench.errors import ConfigError

__all__ = ["check_finite_numbers", "drop_disabled_scenarios"]


def drop_disabled_scenarios(config: dict[str, Any]) -> list[str]:
    """Remove the scenarios set to ``null``; return their names.

    Config overlays are merged key by key (``--configfile config.yaml overlay.yaml``), so an
    overlay can add or change a scenario but not delete one; ``name: null`` is how it drops one
    (``config/paper.yaml`` drops the demo's ``sequential`` scenario).
    """
    scenarios = config.get("scenarios")
    if not isinstance(scenarios, dict):
        return []
    dropped = [name for name, spec in scenarios.items() if spec is None]
    for name in dropped:
        del scenarios[name]
    return dropped


def check_finite_numbers(config: Mapping[str, object], prefix: str = "") -> None:
    """Raise at the first NaN or ±inf number anywhere in ``config``.

    YAML reads ``.nan`` and ``.inf`` as floats, and JSON-schema ``minimum``/``maximum`` comparisons
    are false for NaN, so such values pass schema validation; this walk catches them before any
    job runs. Nested mappings and lists are visited in order.

    Args:
        config: the configuration (or a section of it), as loaded from YAML.
        prefix: the dotted key of ``config`` itself (``""`` for the whole configuration).

    Raises:
        ConfigError: naming the dotted key (list items as ``key[3]``) of the first non-finite
            number, e.g. ``train.lr: nan is not a finite number; fix it in the config file (or
            --config) and re-run``.
    """
    for key, value in config.items():
        _check_finite(value, f"{prefix}.{key}" if prefix else str(key))


def _check_finite(value: object, key: str) -> None:
    if isinstance(value, Mapping):
        check_finite_numbers(value, key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_finite(item, f"{key}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{key}: {value!r} is not a finite number; fix it in the config file (or --config) "
            "and re-run"
        )
