"""The config schema is complete and closed; config files validate; config/README.md covers it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from snakemake.utils import update_config, validate

from ssibench.config import drop_disabled_scenarios

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_DIR = ROOT / "config"
BASE_CONFIG = CONFIG_DIR / "config.yaml"
SCHEMA: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Merge a local ``$ref`` (``#/$defs/...``) with the keywords beside it."""
    if "$ref" not in node:
        return node
    target: Any = SCHEMA
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Yield (dotted path, resolved schema, required?) of every property below ``node``.

    Entries of a map (an object with ``additionalProperties`` as a schema) appear as ``<name>``.
    """
    node = _resolve(node)
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        resolved = _resolve(child)
        yield child_path, resolved, name in required
        yield from _walk(resolved, child_path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        entry = "<method>" if path in ("method_options", "method_train") else "<name>"
        if path.startswith("method_options."):
            entry = "<option>"
        yield f"{path}.{entry}", _resolve(extra), True
        yield from _walk(extra, f"{path}.{entry}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], path)


PROPERTIES = list(_walk(SCHEMA, ""))


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(("path", "node", "required"), PROPERTIES, ids=[p[0] for p in PROPERTIES])
def test_every_property_is_typed_described_and_defaulted(
    path: str, node: dict[str, Any], required: bool
) -> None:
    assert node.get("description"), f"{path}: no description"
    assert "type" in node, f"{path}: no type"
    # a method_train key overrides the shared train value only when given, and so does a
    # scenario's own mask key the simulate one; an acquired scenario's keys are filled by
    # ssibench.pipeline.scenario_spec (crop = data.image_size): no default on purpose; a
    # measured-multicoil scenario requires kspace_dir (checked with its spec)
    scenario_own = tuple(
        f"scenarios.<name>.{key}"
        for key in ("mask", "acceleration", "center_fraction", "center_lines", "crop", "filter",
                    "slices_per_volume", "espirit", "kspace_dir")
    )  # fmt: skip
    optional = path.startswith("method_train.<method>.") or path.startswith(scenario_own)
    assert required or optional or "default" in node, f"{path}: neither required nor defaulted"


def _objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path or "<root>", node
        for key, child in node.items():
            if key not in ("default", "enum"):
                yield from _objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _objects(child, f"{path}/{index}")


OBJECTS = list(_objects(SCHEMA))


@pytest.mark.parametrize(("path", "node"), OBJECTS, ids=[path for path, _ in OBJECTS])
def test_every_object_is_closed(path: str, node: dict[str, Any]) -> None:
    """Fixed-key objects forbid other keys; maps (scenarios, method options) type every value."""
    extra = node.get("additionalProperties")
    if "properties" in node:
        assert extra is False, f"{path}: additionalProperties must be false"
    else:
        assert isinstance(extra, dict), f"{path}: a map must give a schema for its values"
        assert "type" in _resolve(extra), f"{path}: map values need a type"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _validated(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    drop_disabled_scenarios(config)  # as the Snakefile does before validating
    validate(config, str(SCHEMA_PATH))
    return config


CONFIG_FILES = sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=lambda p: p.name)
def test_config_files_validate(config_file: Path) -> None:
    """config.yaml alone, every other file as an overlay merged on config.yaml (as --configfile)."""
    config = _load(BASE_CONFIG)
    if config_file != BASE_CONFIG:
        update_config(config, _load(config_file))
    validated = _validated(config)
    assert validated["data"]["split"]["train"] > 0


def test_defaults_are_filled_and_match_the_documented_scenarios() -> None:
    config = _validated({})
    assert config["seeds"] == [0]
    assert config["train"]["epochs"] == 150
    assert config["resources"]["train"]["gpu"] == 1
    assert config["resources"]["default"] == {"threads": 1, "mem_mb": 4000, "runtime_min": 60}
    assert config["scenarios"] == _validated(_load(BASE_CONFIG))["scenarios"]
    # a partly given section keeps its own defaults
    partial = _validated(
        {"resources": {"train": {"mem_mb": 100}}, "scenarios": {"x": {"physics": "multicoil"}}}
    )
    assert partial["resources"]["train"] == {
        "threads": 1,
        "mem_mb": 100,
        "runtime_min": 15,
        "gpu": 1,
    }
    assert partial["scenarios"]["x"] == {
        "physics": "multicoil",
        "sigma": 0.0,
        "shared_mask": False,
        "n_coils": 4,
        "n_frames": 4,
        "frame_partition": "random",
    }


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"train": {"epochs": 0}}, "less than the minimum"),
        ({"train": {"epoch": 3}}, "Additional properties"),
        ({"data": {"source": "s3://bucket"}}, "does not match"),
        ({"scenarios": {"bad/name": {"physics": "single-coil"}}}, "does not match"),
        ({"scenarios": {"s5": {"sigma": 0.1}}}, "'physics' is a required property"),
        ({"method_options": {"ssdu": {"split_ratio": {"a": 1}}}}, "is not of type"),
        ({"seeds": []}, "should be non-empty"),
    ],
)
def test_bad_values_are_rejected(overlay: dict[str, Any], message: str) -> None:
    config = _load(BASE_CONFIG)
    update_config(config, overlay)
    with pytest.raises(Exception, match=message):
        _validated(config)


def test_config_readme_documents_every_property() -> None:
    readme = (CONFIG_DIR / "README.md").read_text()
    missing = [path for path, _, _ in PROPERTIES if f"`{path}`" not in readme]
    assert not missing, f"config/README.md does not document: {', '.join(missing)}"


def test_paper_config_is_the_ssibench_setup() -> None:
    config = _load(BASE_CONFIG)
    update_config(config, _load(CONFIG_DIR / "paper.yaml"))
    config = _validated(config)
    assert list(config["scenarios"]) == [
        "single-coil",
        "noisy",
        "single-operator",
        "multicoil",
        "raw-multicoil",
    ]
    # the later experiments on acquired k-space, exactly
    raw = config["scenarios"]["raw-multicoil"]
    assert raw["crop"] == [384, 320]
    assert raw["slices_per_volume"] == 3
    assert raw["filter"] == {"acquisition": "AXT2", "n_coils": 16}
    assert (raw["mask"], raw["acceleration"], raw["center_lines"]) == ("random", 8, 20)
    assert raw["espirit"] == {"kernel_size": 6, "threshold": 0.02, "crop": 0.95}
    assert config["scenarios"]["noisy"]["sigma"] == 0.1
    assert config["scenarios"]["multicoil"]["n_coils"] == 4
    assert config["seeds"] == [0, 1, 2]
    assert config["data"]["image_size"] == [320, 320]
    assert config["data"]["split"] == {"train": 0.8, "val": 0.0, "test": 0.2}
    assert config["simulate"]["acceleration"] == 6
    assert config["model"] | {} == {
        "num_iter": 3,
        "step_order": "dc-first",
        "scales": 4,
        "width": 64,
        "identity_init": False,
        "name": "modl",
        "options": {},
    }
    train = config["train"]
    assert (train["epochs"], train["batch_size"], train["lr"]) == (150, 4, 0.001)
    assert config["method_train"] == {"sup": {"lr_milestones": [20], "lr_gamma": 0.1}}
    assert config["method_options"]["adversarial"]["d_dim"] == 128
    assert len(config["methods"]) == 20  # 18 SSIBench methods + supervised + zero-filled


def test_null_drops_a_scenario_of_the_base_config() -> None:
    config = {"scenarios": {"a": {"physics": "single-coil"}, "b": None}}
    assert drop_disabled_scenarios(config) == ["b"]
    assert list(config["scenarios"]) == ["a"]


def _schema_defaults(section: str) -> dict[str, Any]:
    """The defaults the schema gives the keys of the top-level ``section``."""
    properties = _resolve(SCHEMA["properties"][section])["properties"]
    return {name: _resolve(node)["default"] for name, node in properties.items()}


@pytest.mark.parametrize(
    ("section", "record"),
    [("model", "ModelConfig"), ("train", "TrainConfig"), ("evaluate", "EvaluateConfig")],
)
def test_schema_defaults_are_the_records_defaults(section: str, record: str) -> None:
    """One source of defaults: the schema fills in exactly what the package's records default to."""
    import dataclasses

    import ssibench.config.records as records

    fields = {
        f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(getattr(records, record))
    }
    schema = {
        k: tuple(v) if isinstance(v, list) else v for k, v in _schema_defaults(section).items()
    }
    assert schema == fields


def test_method_options_records_are_typed_by_the_option_rules() -> None:
    """Each method's options record has one field per default, typed by its option rule."""
    import dataclasses

    from ssibench.methods import METHODS, OPTION_RULES, options_record

    types = {"bool": bool, "int": int, "float": float}
    for name, spec in METHODS.items():
        fields = {f.name: f for f in dataclasses.fields(options_record(name))}
        assert set(fields) == set(spec.defaults), name
        for option, field in fields.items():
            assert field.type is types[OPTION_RULES[option].kind], (name, option)
            assert isinstance(field.default, field.type), (name, option, field.default)
