"""The benchmark's methods, registered once under their SSIBench names (no torch import).

A method is a recipe: which losses train the reconstruction network, with the reference's
hyper-parameters as defaults, and which scenarios it applies to. This module holds what the
workflow, the command line and the tables need to know of a method (name, label, flags,
citation, applicability, option defaults); :mod:`ssibench.methods.builders` turns a name into its
losses. The workflow expands only the applicable (scenario, method) pairs and reports the others
with the reason from :func:`skip_reason`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.errors import ConfigError
from ssibench.methods.options import OPTION_RULES, OptionValue, check_options, option_rule_for

__all__ = [
    "METHODS",
    "MethodSpec",
    "get_method",
    "method_options",
    "options_record",
    "parse_method_options",
    "plugin_builder",
    "register",
    "skip_reason",
]

#: Python type of each option kind, for the typed options records.
_OPTION_TYPES = {"bool": bool, "int": int, "float": float}


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: what it is and where it applies (its losses are built elsewhere).

    Attributes:
        name: the SSIBench name used in config and paths.
        label: the name shown in tables and figures, as in the paper.
        citation: where the method comes from.
        trains: False only for the zero-filled baseline.
        supervised: uses ground truth (shown apart in tables).
        needs_noise: applies only to scenarios with a noise level σ > 0.
        time_series: "only" (needs time-series measurements), "also" (works on both) or "never".
        adversarial: trains a discriminator too; the trainer alternates G and D steps.
        defaults: hyper-parameters and their reference values (overridable per method in the
            config as ``method_options.<method>.<option>``; types and ranges in
            :data:`ssibench.methods.options.OPTION_RULES`).
        plugin: the plugin module that registered the method (None for the built-ins).
    """

    name: str
    label: str
    citation: str
    trains: bool = True
    supervised: bool = False
    needs_noise: bool = False
    time_series: Literal["only", "also", "never"] = "never"
    adversarial: bool = False
    defaults: Mapping[str, OptionValue] = field(default_factory=dict)
    plugin: str | None = None


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "zero-filled",
            "Zero-filled",
            "No learning: the adjoint Aᴴy.",
            trains=False,
            time_series="also",
        ),
        MethodSpec(
            "sup",
            "(Supervised)",
            "Supervised MSE to the ground truth (upper bound).",
            supervised=True,
            time_series="also",
        ),
        MethodSpec("mc", "MC", "Measurement consistency only.", time_series="also"),
        MethodSpec(
            "ssdu",
            "SSDU",
            "Yaman et al., MRM 2020, arXiv:1912.07669.",
            defaults={"split_ratio": 0.6, "eval_n_samples": 1},
        ),
        MethodSpec(
            "noise2inverse",
            "Noise2Inverse",
            "Hendriksen et al., IEEE TCI 2020, arXiv:2001.11801.",
            defaults={"split_ratio": 0.6, "eval_n_samples": 3},
        ),
        MethodSpec(
            "weighted-ssdu",
            "Weighted-SSDU",
            "Millard & Chiew, IEEE TCI 2023, arXiv:2205.10278.",
            defaults={"split_acceleration": 2.0},
        ),
        MethodSpec(
            "ssdu-consistency",
            "SSDU-Consistency",
            "After Hu et al. (parallel-network SSDU consistency), as SSIBench.",
            defaults={"split_ratio": 0.6},
        ),
        MethodSpec(
            "moc-ssdu",
            "MOC-SSDU",
            "SSIBench (Wang, McDonagh, Davies 2025): SSDU + multi-operator consistency.",
            defaults={"split_ratio": 0.6},
        ),
        MethodSpec(
            "ei",
            "EI",
            "Chen, Tachella, Davies, ICCV 2021, arXiv:2103.14756.",
            time_series="also",
            defaults={"rotate_multiples": 1},
        ),
        MethodSpec("moi", "MOI", "Tachella, Chen, Davies, NeurIPS 2022, arXiv:2201.12151."),
        MethodSpec(
            "mo-ei",
            "MO-EI",
            "SSIBench MO-EI: EI with CPAB diffeomorphisms (Wang & Davies, 2025) and a new "
            "acquisition mask per sample (MOI).",
        ),
        MethodSpec(
            "vortex",
            "VORTEX",
            "Desai et al., MIDL 2022, arXiv:2111.02549.",
            defaults={"phase_error_scale": 0.1, "augment_sigma": 0.1},
        ),
        MethodSpec(
            "adversarial",
            "Adversarial",
            "Cole et al., arXiv:2008.13065 (multi-operator unsupervised adversarial).",
            adversarial=True,
            defaults={"weight_adv": 1.0, "d_dim": 128, "d_blocks": 4},
        ),
        MethodSpec(
            "uair",
            "UAIR",
            "Pajot, de Bézenac, Gallinari, ICLR 2019.",
            adversarial=True,
            defaults={
                "weight_adv": 0.5,
                "weight_mc": 1.0,
                "weight_d": 1.0,
                "d_dim": 128,
                "d_blocks": 4,
            },
        ),
        MethodSpec(
            "ensure",
            "ENSURE",
            "Aggarwal, Pramanik, Jacob, IEEE TMI 2023, arXiv:2010.10631.",
            needs_noise=True,
            defaults={"weighted_divergence": False},
        ),
        MethodSpec(
            "robust-ssdu",
            "Robust-SSDU",
            "Millard & Chiew, IEEE TCI 2023, arXiv:2205.10278 (robust SSDU).",
            needs_noise=True,
            defaults={"split_acceleration": 2.0, "alpha": 0.75},
        ),
        MethodSpec(
            "noise2recon-ssdu",
            "Noise2Recon-SSDU",
            "Desai et al., MRM 2023, arXiv:2110.00075, with weighted SSDU.",
            needs_noise=True,
            defaults={
                "split_acceleration": 2.0,
                "augment_sigma_min": 0.05,
                "augment_sigma_max": 0.2,
            },
        ),
        MethodSpec(
            "ddssl",
            "DDSSL",
            "SSIBench DDSSL: recorrupted-to-recorrupted (Pang et al., CVPR 2021) + EI "
            "with a noise transform.",
            needs_noise=True,
            defaults={"r2r_alpha": 0.5, "eval_n_samples": 5, "ei_sigma": 0.1},
        ),
        MethodSpec(
            "robust-ei",
            "Robust-EI",
            "Chen, Tachella, Davies, CVPR 2022, arXiv:2111.12855 (robust EI).",
            needs_noise=True,
            defaults={"sure_tau": 0.01, "rotate_multiples": 1},
        ),
        MethodSpec(
            "robust-mo-ei",
            "Robust-MO-EI",
            "SSIBench: SURE (Stein 1981) + MO-EI.",
            needs_noise=True,
            defaults={"sure_tau": 0.01},
        ),
        MethodSpec(
            "phase2phase",
            "Phase2Phase",
            "Eldeniz et al., Investigative Radiology 2021.",
            time_series="only",
        ),
        MethodSpec(
            "artifact2artifact",
            "Artifact2Artifact",
            "Liu et al., IEEE JSTSP 2020, arXiv:1912.05854.",
            time_series="only",
            defaults={"split_size": 2},
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
    kind = PHYSICS_KINDS.get(scenario_spec.get("physics", "single-coil"))
    acquired = kind is not None and kind.acquired  # noisy by nature, its level estimated
    if kind is not None and not kind.ground_truth:
        if spec.supervised:
            return "needs ground truth (measured k-space has none)"
        if not spec.trains:
            return "trains nothing (measured k-space is for training only)"
    if spec.needs_noise and not (scenario_spec.get("sigma", 0.0) > 0 or acquired):
        return "needs a noise level (sigma > 0)"
    time_series = kind is not None and kind.time_series
    if time_series and spec.time_series == "never":
        return "needs a single static acquisition (not a time series)"
    if not time_series and spec.time_series == "only":
        return "needs time-series measurements (physics: sequential or dynamic)"
    return None


def method_options(method: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's defaults updated with ``overrides``, each checked against its rule.

    Every override must have the type and range of its :data:`OPTION_RULES` entry (an integer is
    accepted for a number and returned as a float; a bool is not a number; NaN and ±inf are
    refused), and the merged options must satisfy
    :data:`~ssibench.methods.options.OPTION_ORDERS`.

    Args:
        method: the registered method name.
        overrides: ``method_options.<method>`` of the config, or None.

    Returns:
        The merged options, option name → value.

    Raises:
        ConfigError: for an unknown method or key, or a value of the wrong type or out of range,
            naming the dotted key (``method_options.ssdu.split_ratio``), the value and what is
            allowed.
    """
    spec = get_method(method)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        allowed = ", ".join(sorted(spec.defaults)) or "none"
        raise ConfigError(
            f"method_options.{method}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    return check_options(method, spec.defaults, overrides)


def _record_class(spec: MethodSpec) -> type:
    """A frozen dataclass ``<Name>Options`` with one typed field per option, defaulted."""
    fields = [
        (name, _OPTION_TYPES[OPTION_RULES[name].kind], dataclasses.field(default=value))
        for name, value in spec.defaults.items()
    ]
    class_name = "".join(part.capitalize() for part in spec.name.split("-")) + "Options"
    return dataclasses.make_dataclass(class_name, fields, frozen=True)


#: The options record of every method (a dataclass without fields for methods without options).
_RECORDS: dict[str, type] = {name: _record_class(spec) for name, spec in METHODS.items()}


#: Loss builders of the methods registered by plugins (the built-ins' are in ``builders``).
_PLUGIN_BUILDERS: dict[str, Callable[[Any], list[Any]]] = {}


def register(
    name: str,
    build: Callable[[Any], list[Any]],
    *,
    label: str,
    supervised: bool,
    needs_noise: bool,
    time_series: Literal["only", "also", "never"],
    defaults: Mapping[str, Any],
    citation: str,
    source: str | None,
) -> MethodSpec:
    """Add a method (see :func:`ssibench.register_method`); its options get rules from defaults.

    An option name that a built-in method uses keeps the built-in rule; a new name gets a rule of
    its default's type (bool, int or float) without a range.

    Raises:
        ConfigError: a name already registered, or an option default of another type.
    """
    if name in METHODS:
        raise ConfigError(f"method {name!r} is already registered")
    for option, value in defaults.items():
        if option not in OPTION_RULES:
            OPTION_RULES[option] = option_rule_for(option, value, name)
    spec = MethodSpec(
        name,
        label,
        citation,
        supervised=supervised,
        needs_noise=needs_noise,
        time_series=time_series,
        defaults=dict(defaults),
        plugin=source,
    )
    check_options(name, {}, spec.defaults)  # a default must satisfy its own rule
    METHODS[name] = spec
    _PLUGIN_BUILDERS[name] = build
    _RECORDS[name] = _record_class(spec)
    return spec


def plugin_builder(method: str) -> Callable[[Any], list[Any]] | None:
    """The loss builder a plugin registered for ``method`` (None for a built-in method)."""
    return _PLUGIN_BUILDERS.get(method)


def options_record(method: str) -> type:
    """The frozen dataclass of ``method``'s options: one typed field per option, defaulted."""
    get_method(method)
    return _RECORDS[method]


def parse_method_options(method: str, overrides: Mapping[str, Any] | None) -> Any:
    """``method``'s options record: its defaults updated with ``overrides``.

    The overrides are checked as in :func:`method_options`.
    """
    return options_record(method)(**method_options(method, overrides))
