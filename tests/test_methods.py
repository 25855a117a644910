import pytest
import torch

from ssibench.errors import ConfigError
from ssibench.losses import Loss
from ssibench.methods import METHODS, build_losses, get_method, method_options, skip_reason

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
    no_losses = not METHODS[method].trains or METHODS[method].build_adversarial is not None
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
