"""Workflow configuration helpers that run before schema validation."""

from __future__ import annotations

from typing import Any

__all__ = ["drop_disabled_scenarios"]


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
