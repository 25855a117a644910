"""Types and ranges of the methods' options, checked before any job runs.

One rule per option *name* (the same name means the same thing in every method that has it), so
``method_options.<method>.<option>`` is refused at DAG time with the key, the value and what is
allowed, instead of failing inside a training job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ssibench.errors import ConfigError

__all__ = [
    "OPTION_ORDERS",
    "OPTION_RULES",
    "OptionOrder",
    "OptionRule",
    "check_options",
    "option_rule_for",
]


#: A method option's value: a flag, a count or a real number.
OptionValue = bool | int | float


@dataclass(frozen=True)
class OptionRule:
    """The type and range of one method option, the same for every method that has it.

    Attributes:
        kind: "bool" (true or false), "int" (an integer, not a bool) or "float" (a finite real
            number; an integer is accepted and converted).
        description: what the option means, shown in the error message.
        minimum: the lower bound of a number, or None for none.
        maximum: the upper bound of a number, or None for none.
        exclusive_minimum: the lower bound itself is refused.
        exclusive_maximum: the upper bound itself is refused.

    Example:
        >>> OptionRule("float", "a fraction", 0, 1, True, True).allowed
        'a number in (0, 1)'
    """

    kind: Literal["int", "float", "bool"]
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    @property
    def allowed(self) -> str:
        """What the rule accepts, in words: ``a number in (0, 1)``, ``an integer ≥ 1``, ..."""
        if self.kind == "bool":
            return "true or false"
        low, high = _bound_text(self.minimum), _bound_text(self.maximum)
        if self.minimum is not None and self.maximum is not None:
            opening = "(" if self.exclusive_minimum else "["
            closing = ")" if self.exclusive_maximum else "]"
            noun = "an integer" if self.kind == "int" else "a number"
            return f"{noun} in {opening}{low}, {high}{closing}"
        # a half-open range says "finite": inf is above every lower bound yet refused
        noun = "an integer" if self.kind == "int" else "a finite number"
        if self.minimum is not None:
            return f"{noun} {'>' if self.exclusive_minimum else '≥'} {low}"
        if self.maximum is not None:
            return f"{noun} {'<' if self.exclusive_maximum else '≤'} {high}"
        return noun

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has the rule's type and lies in its range (NaN and ±inf never do)."""
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.minimum is not None and (
            value <= self.minimum if self.exclusive_minimum else value < self.minimum
        ):
            return False
        return self.maximum is None or (
            value < self.maximum if self.exclusive_maximum else value <= self.maximum
        )


def _bound_text(bound: float | None) -> str:
    """A bound as written in a message: ``1`` rather than ``1.0``."""
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


#: Every method option by name; one name means the same thing in every method .
#: Ranges are those the losses' constructors accept, or narrower where a value is meaningless.
OPTION_RULES: dict[str, OptionRule] = {
    "split_ratio": OptionRule(
        "float",
        "fraction of the acquired k-space points given to the network input",
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    ),
    "eval_n_samples": OptionRule(
        "int", "random splits or recorruptions averaged per slice at evaluation", minimum=1
    ),
    "split_acceleration": OptionRule(
        "float",
        "acceleration of the column mask that splits the acquired lines; 1 would keep them all",
        minimum=1,
        exclusive_minimum=True,
    ),
    "rotate_multiples": OptionRule(
        "int",
        "step in degrees of the rotation angles of the equivariance transform (angles below 360)",
        minimum=1,
        maximum=359,
    ),
    "phase_error_scale": OptionRule(
        "float",
        "scale s of the random phase errors, drawn in [−π s, π s]; s = 1 covers every phase",
        minimum=0,
        maximum=1,
    ),
    "augment_sigma": OptionRule(
        "float", "noise level of the noise augmentation, per real component", minimum=0
    ),
    "weight_adv": OptionRule("float", "weight of the adversarial generator term", minimum=0),
    "weight_mc": OptionRule("float", "weight of the measurement-consistency term", minimum=0),
    "weight_d": OptionRule("float", "weight of the discriminator loss", minimum=0),
    "d_dim": OptionRule("int", "hidden channels of the discriminator", minimum=1),
    "d_blocks": OptionRule("int", "two-branch blocks of the discriminator", minimum=1),
    "weighted_divergence": OptionRule(
        "bool", "weight ENSURE's divergence term by the inverse sampling density"
    ),
    "alpha": OptionRule(
        "float",
        "ratio of Robust SSDU's extra noise level to the measurement noise level sigma",
        minimum=0,
        exclusive_minimum=True,
    ),
    "augment_sigma_min": OptionRule(
        "float", "lowest noise level of the noise augmentation, per real component", minimum=0
    ),
    "augment_sigma_max": OptionRule(
        "float", "highest noise level of the noise augmentation, per real component", minimum=0
    ),
    "r2r_alpha": OptionRule(
        "float",
        "recorruption strength alpha of recorrupted-to-recorrupted",
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    ),
    "ei_sigma": OptionRule(
        "float", "noise level of the equivariance noise transform, per real component", minimum=0
    ),
    "sure_tau": OptionRule(
        "float",
        "finite-difference step tau of SURE's Monte-Carlo divergence",
        minimum=0,
        exclusive_minimum=True,
    ),
    "split_size": OptionRule(
        "int",
        "frames per Artifact2Artifact chunk; it must divide the frame count T and be at most T/2",
        minimum=1,
    ),
}


def option_rule_for(name: str, default: object, method: str) -> OptionRule:
    """The rule of a new option a plugin method introduces: its default's type, no range.

    Raises:
        ConfigError: for a default that is not a bool, an int or a finite float.
    """
    if isinstance(default, bool):
        kind: Literal["int", "float", "bool"] = "bool"
    elif isinstance(default, int):
        kind = "int"
    elif isinstance(default, float) and math.isfinite(default):
        kind = "float"
    else:
        raise ConfigError(
            f"option {name!r} of method {method!r}: the default {default!r} is not a bool, an "
            "integer or a finite number"
        )
    return OptionRule(kind, f"option of the plugin method {method!r}")


@dataclass(frozen=True)
class OptionOrder:
    """Two options of one method whose values must satisfy ``low ≤ high``.

    Attributes:
        low: the option that must not exceed ``high``.
        high: the option that must not be below ``low``.
        description: why, shown in the error message.
    """

    low: str
    high: str
    description: str


#: Cross-option rules, checked for every method that has both options.
OPTION_ORDERS: tuple[OptionOrder, ...] = (
    OptionOrder(
        "augment_sigma_min",
        "augment_sigma_max",
        "the augmentation's noise level is drawn uniformly from [augment_sigma_min, "
        "augment_sigma_max]",
    ),
)


def _not_allowed(key: str, value: object, allowed: str, description: str) -> ConfigError:
    return ConfigError(f"{key}: {value!r} is not allowed; expected {allowed} ({description})")


def _check_option(method: str, name: str, value: object) -> OptionValue:
    """``value`` of option ``name`` checked against its rule (an int for a float made a float).

    Raises:
        ConfigError: naming ``method_options.<method>.<name>``, the value and what is allowed.
    """
    rule = OPTION_RULES[name]
    if not rule.accepts(value):
        raise _not_allowed(f"method_options.{method}.{name}", value, rule.allowed, rule.description)
    if rule.kind == "float" and isinstance(value, int):
        return float(value)
    return value


def check_options(
    method: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``defaults`` updated with ``overrides``, each checked against its rule and the orders.

    Raises:
        ConfigError: naming ``method_options.<method>.<option>``, the value and what is allowed.
    """
    options = dict(defaults)
    for name, value in overrides.items():
        options[name] = _check_option(method, name, value)
    for order in OPTION_ORDERS:
        if order.low in options and order.high in options:
            low, high = options[order.low], options[order.high]
            if low > high:
                # blame the overridden side: the other one still has its reference value
                if order.high in overrides:
                    key, value, allowed = order.high, high, f"a number ≥ {order.low} = {low!r}"
                else:
                    key, value, allowed = order.low, low, f"a number ≤ {order.high} = {high!r}"
                raise _not_allowed(
                    f"method_options.{method}.{key}", value, allowed, order.description
                )
    return options
