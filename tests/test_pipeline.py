"""ssibench.pipeline: the run plan, config checks and resource sizing, without Snakemake."""

from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import update_config, validate

from ssibench.config import drop_disabled_scenarios
from ssibench.errors import ConfigError
from ssibench.methods import METHODS, skip_reason
from ssibench.models.cost import network_macs
from ssibench.physics import SingleCoilMRI
from ssibench.pipeline import check_config, job_resources, plan_runs, scenario_spec, train_config
from ssibench.training import ModelConfig, build_network

ROOT = Path(__file__).resolve().parents[1]


def _config(**overlay):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    drop_disabled_scenarios(config)
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_plan_has_every_applicable_run_in_config_order():
    config = _config(seeds=[0, 1])
    plan = plan_runs(config)
    expected = [
        (scenario, method, seed)
        for scenario in config["scenarios"]
        for method in config["methods"]
        if skip_reason(method, scenario_spec(config, scenario)) is None
        for seed in (0, 1)
    ]
    assert list(plan.runs) == expected
    for scenario, pairs in plan.skipped.items():
        for method, reason in pairs:
            assert reason == skip_reason(method, scenario_spec(config, scenario))
    assert all(METHODS[m].trains for _, m, _ in plan.trained_runs("noisy"))
    assert plan.dataset == "demo-40x40"
    assert plan.run_path("noisy", "ei", 0, "model.pt") == (
        "results/demo-40x40/runs/noisy/ei/seed0/model.pt"
    )


def test_a_scenario_no_method_applies_to_is_refused():
    config = _config(methods=["ddssl"])  # needs noise: only `noisy` has it
    with pytest.raises(ConfigError, match=r"scenarios.single-coil: none of the configured methods"):
        plan_runs(config)


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"methods": ["mc", "ssdx"]}, "methods[1]: unknown method 'ssdx' (did you mean 'ssdu'?)"),
        ({"method_train": {"mcc": {"epochs": 1}}}, "method_train.mcc: unknown method"),
        ({"data": {"split": {"train": 0.5}}}, "data.split: train + val + test = 0.8, must be 1"),
        ({"data": {"demo": {"n_volumes": 4}}}, "test 0; the test split would be empty"),
        ({"method_train": {"mc": {"lr": float("inf")}}}, "method_train.mc.lr: inf is not a finite"),
        ({"report": {"sample_index": 5}}, "report.sample_index: 5 is not below"),
        ({"data": {"source": "s3"}}, "data.source: unknown source 's3'"),
        (
            {"scenarios": {"x": {"physics": "singlecoil"}}},
            "scenarios.x.physics: unknown physics 'singlecoil' (did you mean 'single-coil'?)",
        ),
        ({"scenarios": {"x": {"physics": "dynamic"}}}, "scenarios.x.physics: unknown physics"),
    ],
)
def test_check_config_names_the_key(overlay, message):
    with pytest.raises(ConfigError) as raised:
        check_config(_config(**overlay))
    assert message in str(raised.value)


def test_train_config_applies_method_overrides_and_leaves_out_only_an_empty_live_log():
    config = _config(method_train={"sup": {"lr_milestones": [20]}})
    assert train_config(config, "sup")["lr_milestones"] == [20]
    assert train_config(config, "mc")["lr_milestones"] == []
    assert train_config(config, "mc")["amp"] == "none"  # every setting of the run, defaults too
    assert "log_to" not in train_config(config, "mc")
    logged = _config(train={**config["train"], "log_to": ["tensorboard"]})
    assert train_config(logged, "mc")["log_to"] == ["tensorboard"]


def test_sized_resources_grow_with_the_attempt_and_zero_filled_needs_no_gpu():
    class Wildcards:
        scenario, method = "multicoil", "ei"

    config = _config(resources={"evaluate": {"gpu": 1}})
    train = job_resources(config, "train")
    assert train["mem_mb"](Wildcards, 2) == 2 * train["mem_mb"](Wildcards, 1)
    assert train["runtime"](Wildcards, 3) == 3 * train["runtime"](Wildcards, 1)
    evaluate = job_resources(config, "evaluate")
    Wildcards.method = "zero-filled"
    assert evaluate["gpu"](Wildcards) == 0


def test_a_plugin_data_set_is_sized_by_its_volumes_once_built(tmp_path, monkeypatch):
    """Snakemake calls the resource functions when it schedules a job, after the data set rule."""
    import numpy as np

    from ssibench.pipeline.data_source import PLUGIN_VOLUMES_UNKNOWN, n_volumes, volumes_known

    class Wildcards:
        scenario, method = "single-coil", "mc"

    monkeypatch.chdir(tmp_path)
    config = _config()
    config["data"].update(source="my-data", name="mine")
    config["resources"]["train"].update(mem_mb=0, runtime_min=0)
    train = job_resources(config, "train")
    assert not volumes_known(config["data"])
    assert n_volumes(config["data"]) == PLUGIN_VOLUMES_UNKNOWN  # what a dry run shows
    guessed = train["mem_mb"](Wildcards, 1)
    folder = tmp_path / "data" / "raw" / "mine-{}x{}".format(*config["data"]["image_size"])
    folder.mkdir(parents=True)
    for volume in range(4):
        np.save(folder / f"v{volume}.npy", np.zeros((2, 8, 8), np.float32))
    assert volumes_known(config["data"])
    assert n_volumes(config["data"]) == 4
    assert train["mem_mb"](Wildcards, 1) < guessed  # sized for 4 volumes, not 100


def test_a_plugin_model_with_a_cost_sizes_its_jobs(isolated_plugins):
    """The registered cost replaces MoDL's closed form in the time and memory requests."""
    from ssibench.models.cost import model_cost
    from ssibench.pipeline.resources import sized_mem_mb, sized_runtime_min

    isolated_plugins.load_plugins(["ssibench_tv_plugin"], entry_points=False)
    config = _config()
    config["resources"]["train"]["gpu"] = 0  # activations counted in RAM
    modl = sized_runtime_min(config, "train", "mc", "single-coil")
    config["model"] = {"name": "residual-cnn", "options": {"width": 4}}
    small = sized_runtime_min(config, "train", "mc", "single-coil")
    memory = sized_mem_mb(config, "train", "single-coil")
    config["model"]["options"]["width"] = 8
    assert sized_runtime_min(config, "train", "mc", "single-coil") == pytest.approx(2 * small)
    assert sized_mem_mb(config, "train", "single-coil") > memory
    assert small < modl  # two convolutions, not an unrolled U-Net
    assert model_cost(config["model"], (10, 10)) == (9 * 32 * 100, 20 * 100)


@pytest.mark.parametrize(("scales", "width", "num_iter"), [(2, 8, 1), (3, 16, 2), (4, 64, 3)])
def test_cost_model_follows_the_network_flop_count(scales, width, num_iter):
    """The closed-form MAC count of the sizing stays within 20 % below torch's real FLOP count."""
    from torch.utils.flop_counter import FlopCounterMode

    size = 32
    network = build_network(ModelConfig(num_iter=num_iter, scales=scales, width=width), 0)
    physics = SingleCoilMRI(torch.ones(1, 1, size, size))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(physics.A(torch.zeros(1, 2, size, size)), physics)
    model = {"scales": scales, "width": width, "num_iter": num_iter}
    estimate = 2 * network_macs(model, (size, size))
    assert 0.8 <= estimate / counter.get_total_flops() <= 1.0


def test_data_sets_and_sizes_never_share_a_path():
    # observed: a demo run after a fastMRI run (or at another size) overwrote its results
    plans = [
        plan_runs(_config()),
        plan_runs(_config(data={"image_size": [32, 32]})),
        plan_runs(_config(data={"name": "other"})),
    ]
    for left, right in [(0, 1), (0, 2), (1, 2)]:
        a, b = plans[left], plans[right]
        assert a.slices_path() != b.slices_path()
        assert a.measurements_path("noisy") != b.measurements_path("noisy")
        assert not set(a.all_targets()) & set(b.all_targets())
        assert a.run_path("noisy", "mc", 0, "model.pt") != b.run_path("noisy", "mc", 0, "model.pt")
