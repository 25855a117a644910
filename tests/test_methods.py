import math
import re

import pytest
import torch

from ssibench.errors import ConfigError
from ssibench.losses import Loss
from ssibench.methods import (
    METHODS,
    OPTION_ORDERS,
    OPTION_RULES,
    OptionRule,
    get_method,
    method_options,
    skip_reason,
)
from ssibench.methods.builders import build_losses

SCENARIOS = {
    "single-coil": {
        "physics": "single-coil",
        "sigma": 0.0,
        "shared_mask": False,
        "mask": "gaussian",
        "acceleration": 6,
    },
    "noisy": {
        "physics": "single-coil",
        "sigma": 0.1,
        "shared_mask": False,
        "mask": "gaussian",
        "acceleration": 6,
    },
    "multicoil": {
        "physics": "multicoil",
        "sigma": 0.0,
        "n_coils": 4,
        "mask": "gaussian",
        "acceleration": 6,
    },
}

ISSUE_METHODS = ["zero-filled", "sup", "mc", "ssdu", "noise2inverse", "ei", "moi"]


def test_the_foundation_methods_are_registered():
    assert set(ISSUE_METHODS) <= set(METHODS)
    assert [name for name, spec in METHODS.items() if not spec.trains] == ["zero-filled"]
    assert METHODS["sup"].supervised
    assert not METHODS["ei"].supervised


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_applicable_method_builds_losses(method, scenario):
    spec = SCENARIOS[scenario]
    if skip_reason(method, spec) is not None:
        with pytest.raises(ConfigError, match="does not apply"):
            build_losses(method, spec, None, torch.Generator())
        return
    losses = build_losses(method, spec, None, torch.Generator())
    assert all(isinstance(loss, Loss) for loss in losses)
    # zero-filled trains nothing; adversarial methods are built by the trainer's adversarial mode
    no_losses = not METHODS[method].trains or METHODS[method].adversarial
    assert (len(losses) == 0) == no_losses


def test_multicoil_mc_is_adjoint_domain():
    names = [
        type(loss).__name__
        for loss in build_losses("ei", SCENARIOS["multicoil"], None, torch.Generator())
    ]
    assert names == ["AdjointMCLoss", "EILoss"]
    names = [
        type(loss).__name__
        for loss in build_losses("ei", SCENARIOS["single-coil"], None, torch.Generator())
    ]
    assert names == ["MCLoss", "EILoss"]


def test_reference_hyper_parameters_and_overrides():
    losses = build_losses("noise2inverse", SCENARIOS["single-coil"], None, torch.Generator())
    assert losses[0].mask_generator.split_ratio == 0.6
    assert losses[0].eval_n_samples == 3
    assert losses[0].eval_split_input
    ssdu = build_losses("ssdu", SCENARIOS["single-coil"], {"split_ratio": 0.5}, torch.Generator())[
        0
    ]
    assert ssdu.mask_generator.split_ratio == 0.5
    assert not ssdu.eval_split_input


def test_unknown_option_and_method_are_clear_errors():
    with pytest.raises(
        ConfigError,
        match=r"method_options\.ssdu: unknown key\(s\) split; allowed: eval_n_samples, split_ratio",
    ):
        method_options("ssdu", {"split": 0.5})
    with pytest.raises(ConfigError, match="did you mean 'ssdu'"):
        get_method("sdu")


def test_noise_aware_methods_are_skipped_without_noise():
    for name, spec in METHODS.items():
        reason = skip_reason(name, SCENARIOS["single-coil"])
        expected = spec.needs_noise or spec.time_series == "only"
        assert (reason is not None) == expected
        if spec.needs_noise:
            assert "noise" in reason


def test_time_series_methods_apply_only_to_time_series():
    sequential = {"physics": "sequential", "sigma": 0.0, "n_frames": 4}
    applicable = {name for name in METHODS if skip_reason(name, sequential) is None}
    assert applicable == {"zero-filled", "sup", "mc", "ei", "phase2phase", "artifact2artifact"}


# every (method, option) pair with a default, for the option-rule tests
METHOD_OPTIONS = [(method, name) for method, spec in METHODS.items() for name in spec.defaults]
NUMERIC_OPTIONS = [pair for pair in METHOD_OPTIONS if OPTION_RULES[pair[1]].kind != "bool"]
FLOAT_OPTIONS = [pair for pair in METHOD_OPTIONS if OPTION_RULES[pair[1]].kind == "float"]
# (method, option, an integer in range) for the float options whose range holds an integer
INTEGER_FOR_FLOAT = [
    (method, name, next(v for v in range(400) if OPTION_RULES[name].accepts(v)))
    for method, name in FLOAT_OPTIONS
    if any(OPTION_RULES[name].accepts(v) for v in range(400))
]
INT_OPTIONS = [pair for pair in METHOD_OPTIONS if OPTION_RULES[pair[1]].kind == "int"]
BOOL_OPTIONS = [pair for pair in METHOD_OPTIONS if OPTION_RULES[pair[1]].kind == "bool"]


def _refused(method, name, value):
    """Assert that ``value`` for the option is refused with the dotted key and the value."""
    rule = OPTION_RULES[name]
    message = (
        f"method_options.{method}.{name}: {value!r} is not allowed; "
        f"expected {rule.allowed} ({rule.description})"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        method_options(method, {name: value})


def _consistent(method, name, value):
    """Overrides setting ``name`` to ``value``, moving its OPTION_ORDERS partner where needed."""
    defaults = METHODS[method].defaults
    overrides = {name: value}
    for order in OPTION_ORDERS:
        if order.low in defaults and order.high in defaults:
            if name == order.high and defaults[order.low] > value:
                overrides[order.low] = value
            if name == order.low and defaults[order.high] < value:
                overrides[order.high] = value
    return overrides


def _outside(rule):
    """Values just outside the rule's range (the bound itself where it is exclusive)."""
    step = 1 if rule.kind == "int" else 1e-9
    values = []
    if rule.minimum is not None:
        values.append(rule.minimum if rule.exclusive_minimum else rule.minimum - step)
    if rule.maximum is not None:
        values.append(rule.maximum if rule.exclusive_maximum else rule.maximum + step)
    return [int(v) if rule.kind == "int" else float(v) for v in values]


def _inside(rule):
    """Values just inside the rule's range (the bound itself where it is inclusive)."""
    step = 1 if rule.kind == "int" else 1e-9
    values = []
    if rule.minimum is not None:
        values.append(rule.minimum + step if rule.exclusive_minimum else rule.minimum)
    if rule.maximum is not None:
        values.append(rule.maximum - step if rule.exclusive_maximum else rule.maximum)
    return [int(v) if rule.kind == "int" else float(v) for v in values]


def test_every_option_rule_is_used_and_every_rule_is_bounded_below():
    used = {name for _, name in METHOD_OPTIONS}
    assert set(OPTION_RULES) == used  # no stale rule for an option no method has
    for name, rule in OPTION_RULES.items():
        assert rule.description, name
        if rule.kind != "bool":
            assert rule.minimum is not None, name  # counts, weights, sigmas: none is negative


@pytest.mark.parametrize(("method", "name"), METHOD_OPTIONS)
def test_every_default_has_a_rule_and_satisfies_it(method, name):
    assert name in OPTION_RULES, f"option {name!r} of {method!r} has no entry in OPTION_RULES"
    default = METHODS[method].defaults[name]
    assert OPTION_RULES[name].accepts(default)
    assert method_options(method, {name: default})[name] == default


@pytest.mark.parametrize(("method", "name"), NUMERIC_OPTIONS)
def test_values_just_outside_the_range_are_refused(method, name):
    rule = OPTION_RULES[name]
    outside = _outside(rule)
    assert outside
    for value in outside:
        _refused(method, name, value)
        if float(value).is_integer():  # an integer on an excluded bound is refused as well
            _refused(method, name, int(value))
    for value in _inside(rule):
        assert method_options(method, _consistent(method, name, value))[name] == value


@pytest.mark.parametrize(("method", "name"), NUMERIC_OPTIONS)
@pytest.mark.parametrize("value", ["half", True, False, None, [1], math.nan, math.inf, -math.inf])
def test_wrong_types_and_non_finite_numbers_are_refused(method, name, value):
    _refused(method, name, value)


def test_most_float_options_admit_an_integer():
    # only the open fractions (0, 1) hold no integer
    without = {name for _, name in FLOAT_OPTIONS} - {name for _, name, _ in INTEGER_FOR_FLOAT}
    assert without == {"split_ratio", "r2r_alpha"}


@pytest.mark.parametrize(("method", "name", "value"), INTEGER_FOR_FLOAT)
def test_an_integer_is_accepted_for_a_number(method, name, value):
    options = method_options(method, _consistent(method, name, value))
    assert options[name] == value
    assert type(options[name]) is float


@pytest.mark.parametrize(("method", "name"), INT_OPTIONS)
def test_a_float_is_refused_for_an_integer(method, name):
    _refused(method, name, float(METHODS[method].defaults[name]))


@pytest.mark.parametrize(("method", "name"), BOOL_OPTIONS)
@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_flag_takes_only_true_or_false(method, name, value):
    _refused(method, name, value)
    assert method_options(method, {name: True})[name] is True
    assert method_options(method, {name: False})[name] is False


def test_the_message_names_the_dotted_key_the_value_and_the_range():
    with pytest.raises(ConfigError) as error:
        method_options("ssdu", {"split_ratio": 1.5})
    assert str(error.value) == (
        "method_options.ssdu.split_ratio: 1.5 is not allowed; expected a number in (0, 1) "
        "(fraction of the acquired k-space points given to the network input)"
    )
    with pytest.raises(ConfigError, match=r"^method_options\.ssdu\.split_ratio: 'half' is not"):
        method_options("ssdu", {"split_ratio": "half"})
    with pytest.raises(ConfigError, match=r"^method_options\.uair\.d_dim: 0 is not allowed; "):
        method_options("uair", {"d_dim": 0})
    with pytest.raises(ConfigError, match=r"expected a finite number ≥ 0 \("):
        method_options("vortex", {"augment_sigma": math.inf})


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        (OptionRule("float", "d", 0, 1, True, True), "a number in (0, 1)"),
        (OptionRule("float", "d", 0, 1), "a number in [0, 1]"),
        (OptionRule("int", "d", 1, 359), "an integer in [1, 359]"),
        (OptionRule("float", "d", 1, exclusive_minimum=True), "a finite number > 1"),
        (OptionRule("float", "d", 0), "a finite number ≥ 0"),
        (OptionRule("int", "d", 1), "an integer ≥ 1"),
        (OptionRule("float", "d", maximum=2.5, exclusive_maximum=True), "a finite number < 2.5"),
        (OptionRule("bool", "d"), "true or false"),
    ],
)
def test_allowed_reads_as_an_interval(rule, allowed):
    assert rule.allowed == allowed


def test_cross_option_orders_hold_for_the_defaults_and_are_enforced():
    for order in OPTION_ORDERS:
        with_both = [
            name
            for name, spec in METHODS.items()
            if order.low in spec.defaults and order.high in spec.defaults
        ]
        assert with_both, order
        for method in with_both:
            defaults = METHODS[method].defaults
            assert defaults[order.low] <= defaults[order.high]
    options = method_options(
        "noise2recon-ssdu", {"augment_sigma_min": 0.1, "augment_sigma_max": 0.1}
    )
    assert options["augment_sigma_min"] == options["augment_sigma_max"] == 0.1
    with pytest.raises(
        ConfigError,
        match=r"^method_options\.noise2recon-ssdu\.augment_sigma_max: 0\.01 is not allowed; "
        r"expected a number ≥ augment_sigma_min = 0\.05 \(",
    ):
        method_options("noise2recon-ssdu", {"augment_sigma_max": 0.01})
    with pytest.raises(
        ConfigError,
        match=r"^method_options\.noise2recon-ssdu\.augment_sigma_min: 0\.3 is not allowed; "
        r"expected a number ≤ augment_sigma_max = 0\.2 \(",
    ):
        method_options("noise2recon-ssdu", {"augment_sigma_min": 0.3})


def test_unknown_keys_are_reported_before_values():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) split;"):
        method_options("ssdu", {"split": 0.5, "split_ratio": 1.5})


def test_validated_options_build_the_losses():
    losses = build_losses(
        "weighted-ssdu", SCENARIOS["single-coil"], {"split_acceleration": 3}, torch.Generator()
    )
    assert len(losses) == 1
    with pytest.raises(ConfigError, match=r"method_options\.ei\.rotate_multiples: 0 "):
        build_losses("ei", SCENARIOS["single-coil"], {"rotate_multiples": 0}, torch.Generator())
