"""Scenario specs: the keys every simulated scenario shares, their checks, and its acquisition mask.

Scenario spec (JSON object; key → meaning), common to every physics kind:

- ``physics``: ``"single-coil"`` | ``"multicoil"`` (2-D, :mod:`~ssibench.simulate.cartesian`) or
  ``"sequential"`` (:mod:`~ssibench.simulate.sequential`, which adds its own keys);
- ``sigma``: noise standard deviation per real/imaginary k-space component, ≥ 0;
- ``shared_mask``: one mask for every sample of every split (default false);
- ``n_coils``: number of birdcage coils, ≥ 1 (required for multicoil; ignored for single-coil);
- ``mask``: acquisition mask generator, one of :data:`ssibench.masks.MASK_GENERATORS`;
- ``acceleration``: R ≥ 1;
- ``center_fraction``: fully sampled centre fraction in [0, 1), or null for the default;
- ``center_lines``: a fixed number of fully sampled centre (ACS) columns instead, or null (left out
  of the validated spec when null, so stores of specs without it keep their hashes).

The key checks (:func:`check_unknown_keys`, :func:`check_required_keys`) and the mask draw
(:func:`draw_acquisition_masks`) are shared by every simulator, so their messages and their
random draws are the same whatever the physics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.errors import ConfigError
from ssibench.masks import MASK_GENERATORS, MaskGenerator, make_mask_generator

__all__ = [
    "SPEC_KEYS",
    "acquisition_mask_generator",
    "check_center_lines",
    "check_required_keys",
    "check_unknown_keys",
    "draw_acquisition_masks",
    "is_integer",
    "validate_spec",
]

#: Allowed spec keys and their defaults (``...`` = required).
SPEC_KEYS: dict[str, object] = {
    "physics": ...,
    "sigma": ...,
    "shared_mask": False,
    "n_coils": None,
    "mask": ...,
    "acceleration": ...,
    "center_fraction": None,
    "center_lines": None,
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: object, minimum: int) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``) ≥ ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_unknown_keys(where: str, spec: Mapping[str, Any], allowed: Mapping[str, object]) -> None:
    """Refuse keys of ``spec`` that are not in ``allowed``.

    Raises:
        ConfigError: ``<where>: unknown key(s) …; allowed: …``.
    """
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )


def check_required_keys(where: str, spec: Mapping[str, Any], keys: Mapping[str, object]) -> None:
    """Refuse a ``spec`` without one of the required keys (default ``...``) of ``keys``.

    Raises:
        ConfigError: ``<where>: missing key(s) …``.
    """
    missing = [key for key, default in keys.items() if default is ... and key not in spec]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")


def validate_spec(scenario: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a 2-D scenario spec and fill its defaults.

    Args:
        scenario: scenario name (for messages: ``scenarios.<name>.<key>``).
        spec: the spec (module docstring); ``physics`` one of
            :data:`ssibench.config.PHYSICS_KINDS` without a time dim (plugins may add some).

    Returns:
        A new dict with every key of :data:`SPEC_KEYS`.

    Raises:
        ConfigError: naming ``scenarios.<scenario>.<key>``, the value found and what is allowed.
    """
    where = f"scenarios.{scenario}"
    check_unknown_keys(where, spec, SPEC_KEYS)
    check_required_keys(where, spec, SPEC_KEYS)
    full = {key: spec.get(key, default) for key, default in SPEC_KEYS.items()}

    # the simulated 2-D kinds, with any a plugin registered (ssibench.register_physics)
    allowed = [
        name for name, kind in PHYSICS_KINDS.items() if not kind.time_series and not kind.acquired
    ]
    if full["physics"] not in allowed:
        raise ConfigError(
            f"{where}.physics: got {full['physics']!r}; allowed: {', '.join(allowed)}"
        )
    if not _is_number(full["sigma"]) or full["sigma"] < 0:
        raise ConfigError(f"{where}.sigma: got {full['sigma']!r}; expected a number ≥ 0")
    if not isinstance(full["shared_mask"], bool):
        raise ConfigError(
            f"{where}.shared_mask: got {full['shared_mask']!r}; expected true or false"
        )
    if PHYSICS_KINDS[full["physics"]].coils and not is_integer(full["n_coils"], 1):
        raise ConfigError(
            f"{where}.n_coils: got {full['n_coils']!r}; {full['physics']} needs an integer "
            "number of coils ≥ 1"
        )
    if full["mask"] not in MASK_GENERATORS:
        raise ConfigError(
            f"{where}.mask: got {full['mask']!r}; allowed: {', '.join(sorted(MASK_GENERATORS))}"
        )
    if not _is_number(full["acceleration"]) or full["acceleration"] < 1:
        raise ConfigError(
            f"{where}.acceleration: got {full['acceleration']!r}; expected a number ≥ 1"
        )
    fraction = full["center_fraction"]
    if fraction is not None and (not _is_number(fraction) or not 0 <= fraction < 1):
        raise ConfigError(
            f"{where}.center_fraction: got {fraction!r}; expected a number in [0, 1) or null "
            "(null = 0.08 below 8× acceleration, 0.04 from 8×)"
        )
    check_center_lines(where, full)
    if full["center_lines"] is None:
        del full["center_lines"]
    return full


def check_center_lines(where: str, spec: Mapping[str, Any]) -> None:
    """Refuse a ``center_lines`` that is not null or an integer ≥ 0, or one beside a fraction.

    Raises:
        ConfigError: naming ``<where>.center_lines``.
    """
    lines = spec.get("center_lines")
    if lines is None:
        return
    if not is_integer(lines, 0):
        raise ConfigError(f"{where}.center_lines: got {lines!r}; expected an integer ≥ 0 or null")
    if spec.get("center_fraction") is not None:
        raise ConfigError(
            f"{where}.center_lines: got {lines} beside center_fraction "
            f"{spec['center_fraction']}; give one of them (set the other to null)"
        )


def acquisition_mask_generator(spec: Mapping[str, Any]) -> MaskGenerator:
    """The mask generator of a validated spec (``mask``, ``acceleration``, centre lines)."""
    return make_mask_generator(
        spec["mask"],
        spec["acceleration"],
        spec.get("center_fraction"),
        spec.get("center_lines"),
    )


def draw_acquisition_masks(
    spec: Mapping[str, Any],
    scenario: str,
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
) -> Tensor:
    """Draw ``(batch, 1, H, W)`` acquisition masks Ω of the spec's ``mask`` generator.

    Args:
        spec: a validated spec (``mask``, ``acceleration``, ``center_fraction``, and
            ``center_lines`` if set).
        scenario: scenario name (for messages).
        batch: number of masks.
        height: H.
        width: W.
        generator: the ``masks`` stream.

    Raises:
        ConfigError: ``scenarios.<scenario>.acceleration``, if the generator cannot sample the
            lines that acceleration asks for.
    """
    sampler = acquisition_mask_generator(spec)
    try:
        return sampler.sample(batch, height, width, generator)
    except ValueError as error:
        raise ConfigError(f"scenarios.{scenario}.acceleration: {error}") from error
