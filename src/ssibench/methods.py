"""The benchmark's methods, registered once under their SSIBench names.

A method is a recipe: which losses train the reconstruction network, with the reference's
hyper-parameters as defaults, and which scenarios it applies to. The workflow expands only the
applicable (scenario, method) pairs and reports the others with the reason from :func:`skip_reason`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ssibench.errors import ConfigError
from ssibench.losses import (
    AdjointMCLoss,
    EILoss,
    Loss,
    MCLoss,
    MOILoss,
    SplittingLoss,
    SupLoss,
)
from ssibench.masks import MaskGenerator, make_mask_generator
from ssibench.transforms import Rotate

__all__ = [
    "METHODS",
    "MethodContext",
    "MethodSpec",
    "build_losses",
    "get_method",
    "method_options",
    "skip_reason",
]


@dataclass(frozen=True)
class MethodContext:
    """What a method needs to build its losses.

    Attributes:
        scenario: the scenario spec (``physics``, ``sigma``, ``mask``, ``acceleration``, ...).
        options: the method's hyper-parameters (defaults merged with ``method_options.<method>``).
        generator: the random stream of the losses (``loss`` in training, ``eval`` in evaluation).
    """

    scenario: Mapping[str, Any]
    options: Mapping[str, Any]
    generator: torch.Generator


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: the SSIBench name used in config and paths.
        label: the name shown in tables and figures, as in the paper.
        trains: False only for the zero-filled baseline.
        needs_noise: applies only to scenarios with a noise level σ > 0.
        supervised: uses ground truth (shown apart in tables).
        defaults: hyper-parameters and their reference values (overridable per method in the
        config). build: context → list of losses.
        citation: where the method comes from.
    """

    name: str
    label: str
    trains: bool
    needs_noise: bool
    supervised: bool
    build: Callable[[MethodContext], list[Loss]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    citation: str = ""


def _is_multicoil(context: MethodContext) -> bool:
    return context.scenario.get("physics") == "multicoil"


def _mc(context: MethodContext) -> Loss:
    """The MC term: adjoint-domain in multicoil, as the reference does."""
    return AdjointMCLoss() if _is_multicoil(context) else MCLoss()


def _acquisition_masks(context: MethodContext) -> MaskGenerator:
    return make_mask_generator(
        context.scenario.get("mask", "gaussian"),
        context.scenario.get("acceleration", 6),
        context.scenario.get("center_fraction"),
    )


def _splitting(context: MethodContext, eval_split_input: bool) -> list[Loss]:
    options = context.options
    return [
        SplittingLoss(
            context.generator,
            split_ratio=options["split_ratio"],
            eval_n_samples=options["eval_n_samples"],
            eval_split_input=eval_split_input,
        )
    ]


def _rotate(options: Mapping[str, Any]) -> Rotate:
    return Rotate(multiples=options["rotate_multiples"])


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            name="zero-filled",
            label="Zero-filled",
            trains=False,
            needs_noise=False,
            supervised=False,
            build=lambda context: [],
            citation="No learning: the adjoint Aᴴy.",
        ),
        MethodSpec(
            name="sup",
            label="(Supervised)",
            trains=True,
            needs_noise=False,
            supervised=True,
            build=lambda context: [SupLoss()],
            citation="Supervised MSE to the ground truth (upper bound).",
        ),
        MethodSpec(
            name="mc",
            label="MC",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [_mc(context)],
            citation="Measurement consistency only.",
        ),
        MethodSpec(
            name="ssdu",
            label="SSDU",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: _splitting(context, eval_split_input=False),
            defaults={"split_ratio": 0.6, "eval_n_samples": 1},
            citation="Yaman et al., MRM 2020, arXiv:1912.07669.",
        ),
        MethodSpec(
            name="noise2inverse",
            label="Noise2Inverse",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: _splitting(context, eval_split_input=True),
            defaults={"split_ratio": 0.6, "eval_n_samples": 3},
            citation="Hendriksen et al., IEEE TCI 2020, arXiv:2001.11801.",
        ),
        MethodSpec(
            name="ei",
            label="EI",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                EILoss(_rotate(context.options), context.generator),
            ],
            defaults={"rotate_multiples": 1},
            citation="Chen, Tachella, Davies, ICCV 2021, arXiv:2103.14756.",
        ),
        MethodSpec(
            name="moi",
            label="MOI",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                MOILoss(_acquisition_masks(context), context.generator),
            ],
            citation="Tachella, Chen, Davies, NeurIPS 2022, arXiv:2201.12151.",
        ),
    )
}


def get_method(name: str) -> MethodSpec:
    """Return the registered method ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid names and the closest match.
    """
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown method {name!r}{hint}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def skip_reason(method: str, scenario_spec: Mapping[str, Any]) -> str | None:
    """Why ``method`` does not apply to a scenario, or None if it does."""
    spec = get_method(method)
    if spec.needs_noise and not scenario_spec.get("sigma", 0.0) > 0:
        return "needs a noise level (sigma > 0)"
    return None


def method_options(method: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's defaults updated with ``overrides``; an unknown key raises ``ConfigError``."""
    spec = get_method(method)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        allowed = ", ".join(sorted(spec.defaults)) or "none"
        raise ConfigError(
            f"method_options.{method}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    return {**spec.defaults, **overrides}


def build_losses(
    method: str,
    scenario_spec: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    generator: torch.Generator,
) -> list[Loss]:
    """Build the losses of ``method`` for a scenario (checking applicability and options)."""
    reason = skip_reason(method, scenario_spec)
    if reason is not None:
        raise ConfigError(f"method {method!r} does not apply to this scenario: {reason}")
    context = MethodContext(scenario_spec, method_options(method, overrides), generator)
    return get_method(method).build(context)
