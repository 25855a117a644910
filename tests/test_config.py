import math
from pathlib import Path

import pytest
import yaml

from ssibench.config import check_finite_numbers
from ssibench.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
HINT = "is not a finite number; fix it in the config file (or --config) and re-run"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seed": 0, "train": {"epochs": 3, "lr": math.nan}}, f"train.lr: nan {HINT}"),
        (
            {"scenarios": {"clean": {"sigma": 0.0}, "noisy": {"sigma": math.inf}}},
            f"scenarios.noisy.sigma: inf {HINT}",
        ),
        ({"data": {"image_size": [16, -math.inf]}}, f"data.image_size[1]: -inf {HINT}"),
        ({"a": [{"b": [1.0, [0.5, math.nan]]}]}, f"a[0].b[1][1]: nan {HINT}"),
        ({"top": math.nan}, f"top: nan {HINT}"),
    ],
)
def test_the_first_non_finite_number_is_named_by_its_dotted_key(config, message):
    with pytest.raises(ConfigError) as error:
        check_finite_numbers(config)
    assert str(error.value) == message


def test_the_walk_stops_at_the_first_bad_number_in_order():
    config = {"train": {"lr": math.inf, "lr_gamma": math.nan}, "evaluate": {"x": math.nan}}
    with pytest.raises(ConfigError, match=r"^train\.lr: inf "):
        check_finite_numbers(config)


def test_the_prefix_names_a_section():
    with pytest.raises(ConfigError, match=r"^method_options\.ssdu\.split_ratio: nan "):
        check_finite_numbers({"ssdu": {"split_ratio": math.nan}}, prefix="method_options")


def test_yaml_nan_and_inf_are_caught():
    config = yaml.safe_load("train:\n  lr: .nan\nscenarios:\n  noisy: {sigma: -.inf}\n")
    with pytest.raises(ConfigError, match=r"^train\.lr: nan "):
        check_finite_numbers(config)


def test_finite_values_of_every_type_pass():
    check_finite_numbers(
        {
            "seed": 0,
            "flag": True,
            "name": "nan",
            "none": None,
            "big": 1e308,
            "tiny": -5e-324,
            "nested": {"list": [1, 2.5, [0.0, {"x": -1.0}]], "empty": {}, "tuple": (1.0, 2)},
        }
    )


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "smoke.yaml"])
def test_the_shipped_configs_pass(name):
    path = CONFIG_DIR / name
    config = yaml.safe_load(path.read_text())
    assert isinstance(config, dict)
    check_finite_numbers(config)


def test_amp_names_are_the_devices_amp_modes() -> None:
    """The torch-free record and the device layer know the same mixed-precision settings."""
    from ssibench.config.records import AMP_NAMES
    from ssibench.precision import AMP_MODES

    assert tuple(AMP_MODES) == AMP_NAMES


def test_evaluate_record_refuses_unknown_keys_and_bad_counts() -> None:
    import pytest

    from ssibench.config import parse_evaluate_config
    from ssibench.errors import ConfigError

    assert parse_evaluate_config({}).n_samples == 5
    with pytest.raises(ConfigError, match="evaluate: unknown key"):
        parse_evaluate_config({"samples": 3})
    with pytest.raises(ConfigError, match="n_samples: must be ≥ 1"):
        parse_evaluate_config({"n_samples": 0})


def test_a_record_of_an_older_release_is_compared_as_it_is() -> None:
    """No fill-in of keys added since: a record without model.name/options differs (and is
    refused where it is checked, with the command that rebuilds the run)."""
    from ssibench.provenance import config_differences
    from ssibench.training.config import resolved_config

    spec = {"model": {"num_iter": 2, "width": 8}, "train": {"epochs": 3}, "scenario": {}}
    now = resolved_config(spec, "mc")
    old = {**now, "model": {k: v for k, v in now["model"].items() if k not in ("name", "options")}}
    differences = config_differences(old, now)
    assert any(d.startswith("model.name") for d in differences)
    assert any(d.startswith("model.options") for d in differences)
