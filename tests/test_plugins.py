"""Plugins: a method, model and metric from a module outside the package; clear errors otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"

EXAMPLE = "ssibench_tv_plugin"


def _write_plugin(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return name


def test_the_example_plugin_registers_a_method_a_model_and_a_metric(isolated_plugins) -> None:
    from ssibench.evaluation.metrics import METRICS
    from ssibench.methods import METHODS, method_options, options_record
    from ssibench.models.build import MODELS

    assert isolated_plugins.load_plugins([EXAMPLE], entry_points=False) == (EXAMPLE,)
    assert METHODS["mc-tv"].label == "MC+TV"
    assert METHODS["mc-tv"].plugin == EXAMPLE
    assert method_options("mc-tv", {"tv_weight": 1}) == {"tv_weight": 1.0}
    assert options_record("mc-tv")().tv_weight == pytest.approx(0.01)
    assert "residual-cnn" in MODELS
    assert "mae" in METRICS
    # loading twice is a no-op, not a clash
    assert isolated_plugins.load_plugins([EXAMPLE], entry_points=False) == (EXAMPLE,)


def test_a_plugin_method_builds_its_losses_and_records_its_module(isolated_plugins) -> None:
    from ssibench.methods.builders import build_losses
    from ssibench.provenance import code_files, code_modules

    isolated_plugins.load_plugins([EXAMPLE], entry_points=False)
    scenario = {"physics": "single-coil", "sigma": 0.0, "mask": "gaussian", "acceleration": 4}
    losses = build_losses("mc-tv", scenario, {"tv_weight": 0.5}, torch.Generator())
    assert [type(loss).__name__ for loss in losses] == ["MCLoss", "TVLoss"]
    assert losses[1].weight == 0.5
    modules = code_modules("mc-tv")
    assert EXAMPLE in modules
    assert "ssibench.losses.consistency" in modules
    assert str(EXAMPLES_DIR / f"{EXAMPLE}.py") in code_files("mc-tv")


def test_a_plugin_model_joins_the_code_of_the_runs_that_train_it(isolated_plugins) -> None:
    """Editing a plugin model reruns (and marks stale) exactly the runs that use it."""
    import pandas as pd

    from ssibench.pipeline.plan import RunPlan
    from ssibench.provenance import code_hash, code_modules, component_modules
    from ssibench.report.inputs import stale_code_notes

    isolated_plugins.load_plugins([EXAMPLE], entry_points=False)
    spec = {"model": {"name": "residual-cnn"}, "scenario": {"physics": "single-coil"}}
    assert component_modules(spec) == (EXAMPLE,)
    assert component_modules(spec, trains=False) == ()  # zero-filled has no network
    assert component_modules({"model": {}, "scenario": {"physics": "single-coil"}}) == ()
    assert EXAMPLE in code_modules("mc", (EXAMPLE,))
    assert EXAMPLE not in code_modules("mc")
    assert code_hash("mc", (EXAMPLE,)) != code_hash("mc")

    config = {"model": spec["model"], "scenarios": {"knee": {"physics": "single-coil"}}}
    plan = RunPlan(config=config, runs=(), skipped={})
    plugin_file = str(EXAMPLES_DIR / f"{EXAMPLE}.py")
    assert plugin_file in plan.run_code("knee", "mc")
    assert plugin_file not in plan.run_code("knee", "zero-filled")
    with_mae = RunPlan(config={**config, "metrics": ["psnr", "mae"]}, runs=(), skipped={})
    assert with_mae.evaluate_code("knee", "zero-filled") == [
        *plan.run_code("knee", "zero-filled"),
        plugin_file,
    ]
    assert plan.simulate_code("knee") == []  # built-in physics: inputs unchanged

    # The tables compare a run with the code of *its* model: no false "stale" note.
    trained = pd.DataFrame(
        {"method": ["mc"], "seed": [0], "code_hash": [code_hash("mc", (EXAMPLE,))]}
    )
    record = {"method": "mc", "config": spec}
    assert stale_code_notes([trained], [record], "single-coil") == []
    edited = trained.assign(code_hash="0" * 64)  # trained before the plugin model was edited
    assert "mc seed 0: made by other code" in stale_code_notes([edited], [record], "single-coil")[0]


def test_a_name_clash_names_the_plugin_and_the_fix(isolated_plugins, tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _write_plugin(
        tmp_path,
        "clashing_plugin",
        """
        import ssibench
        ssibench.register_method("mc", lambda context: [], label="MC again")
        """,
    )
    with pytest.raises(isolated_plugins.PluginError) as error:
        isolated_plugins.load_plugins([name], entry_points=False)
    message = str(error.value)
    assert "plugin 'clashing_plugin'" in message
    assert "'mc' is already registered" in message
    assert "another name" in message


def test_a_missing_or_broken_plugin_is_named(isolated_plugins, tmp_path, monkeypatch) -> None:
    with pytest.raises(isolated_plugins.PluginError, match=r"no module of that name.*PYTHONPATH"):
        isolated_plugins.load_plugins(["no_such_plugin_module"], entry_points=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_plugin(tmp_path, "broken_plugin", "raise RuntimeError('oops')\n")
    with pytest.raises(isolated_plugins.PluginError, match=r"'broken_plugin'.*RuntimeError: oops"):
        isolated_plugins.load_plugins(["broken_plugin"], entry_points=False)


def test_a_bad_registration_is_refused(isolated_plugins) -> None:
    import ssibench

    with pytest.raises(isolated_plugins.PluginError, match="build must be callable"):
        ssibench.register_method("not-callable", 3, label="x")
    with pytest.raises(isolated_plugins.PluginError, match="not a bool, an integer or a finite"):
        ssibench.register_method("bad-default", lambda c: [], label="x", defaults={"k": "a"})
    with pytest.raises(isolated_plugins.PluginError, match="time_series must be"):
        ssibench.register_method("bad-ts", lambda c: [], label="x", time_series="sometimes")
    with pytest.raises(isolated_plugins.PluginError, match="model name 'modl' is already"):
        ssibench.register_model("modl", lambda: None)


def test_a_plugin_model_is_built_from_the_model_record(isolated_plugins) -> None:
    from ssibench.config import parse_model_config
    from ssibench.training import build_network

    isolated_plugins.load_plugins([EXAMPLE], entry_points=False)
    config = parse_model_config({"name": "residual-cnn", "options": {"width": 4}})
    first, second = build_network(config, seed=3), build_network(config, seed=3)
    assert type(first).__name__ == "ResidualCNN"
    assert first.net[0].out_channels == 4
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)  # initialised from the run's `init` stream


def test_modl_takes_no_options_and_an_unknown_model_is_named() -> None:
    from ssibench.config import parse_model_config
    from ssibench.errors import ConfigError
    from ssibench.training import build_network

    with pytest.raises(ConfigError, match="MoDL takes none"):
        parse_model_config({"options": {"width": 3}})
    with pytest.raises(ConfigError, match=r"unknown model 'no-net'.*register_model"):
        build_network(parse_model_config({"name": "no-net"}), seed=0)


def test_the_command_line_loads_plugins_before_it_lists_methods() -> None:
    env = {"PYTHONPATH": str(EXAMPLES_DIR), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "ssibench.cli", "--plugin", EXAMPLE, "train", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert "mc-tv" in result.stdout
    command = [sys.executable, "-m", "ssibench.cli", "--plugin", "no_such_mod", "train", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "plugin 'no_such_mod'" in result.stderr


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_slices: Path) -> Path:
    from ssibench.simulate import simulate_scenario

    root = tmp_path_factory.mktemp("plugin-store")
    spec = {"physics": "single-coil", "sigma": 0.0, "mask": "gaussian", "acceleration": 4}
    return simulate_scenario(tiny_slices, root / "store.h5", "single-coil", spec, seed=0)


def test_the_notebook_api_trains_a_user_network_with_loss_objects(
    isolated_plugins, tiny_store: Path, tmp_path: Path
) -> None:
    """The docs' Python example, as written: no method is registered."""
    from ssibench.config import parse_train_config
    from ssibench.data.measurements import read_measurements
    from ssibench.losses import MCLoss
    from ssibench.rng import stream
    from ssibench.training import RunCheckpoint, Trainable, adapt, fit
    from ssibench.training.checkpoint import TrainingState
    from ssibench.training.step import plain_step

    isolated_plugins.load_plugins([EXAMPLE], entry_points=False)
    from ssibench_tv_plugin import ResidualCNN, TVLoss

    train_set = read_measurements(tiny_store, "train")
    network = ResidualCNN(width=4, generator=stream(0, "init"))
    losses = [MCLoss(), TVLoss()]
    model = adapt(network, losses)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[])
    state = TrainingState(
        modules={"model": network},
        optimizers={"optimizer": optimizer},
        generators={"shuffle": stream(0, "shuffle")},
        schedulers={"scheduler": scheduler},
    )
    run = Trainable(
        network,
        model,
        losses,
        plain_step(model, losses, optimizer, scaler),
        state,
        optimizer,
        scheduler,
    )
    checkpoint = RunCheckpoint(tmp_path / "checkpoint.pt", "mine", 0, {})
    log, resumed = fit(
        run,
        train_set,
        None,
        parse_train_config({"epochs": 3}),
        checkpoint,
        tmp_path / "log.csv",
        "mine",
    )
    assert resumed == 0
    assert [row["epoch"] for row in log] == [1, 2, 3]
    assert {"loss_mc", "loss_tv"} <= set(log[0])
    assert (tmp_path / "log.csv").exists()
    assert (tmp_path / "checkpoint.pt").exists()


def test_a_plugin_physics_is_simulated_and_trained(
    isolated_plugins, tmp_path: Path, tiny_slices: Path
) -> None:
    """A user operator with only A, Aᴴ, with_mask and measure: simulated, then MoDL trains on it."""
    from ssibench.data.measurements import read_measurements
    from ssibench.provenance import plugin_files
    from ssibench.simulate import simulate_scenario
    from ssibench.training import train

    plugin = _write_plugin(
        tmp_path,
        "minimal_physics_plugin",
        """
        from dataclasses import dataclass, replace

        import torch

        import ssibench
        from ssibench.fft import fft2c, ifft2c, to_complex, to_real


        @dataclass(frozen=True)
        class MinimalMRI:
            mask: torch.Tensor
            sigma: float = 0.0

            def A(self, x):
                return to_real(self.mask[:, 0] * fft2c(to_complex(x)))

            def A_adjoint(self, y):
                return to_real(ifft2c(self.mask[:, 0] * to_complex(y)))

            def with_mask(self, mask):
                return replace(self, mask=mask)

            def to(self, device):
                return replace(self, mask=self.mask.to(device))

            def measure(self, x, generator):
                return self.A(x)


        ssibench.register_physics("minimal-mri", MinimalMRI)
        """,
    )
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        isolated_plugins.load_plugins([plugin], entry_points=False)
        spec = {"physics": "minimal-mri", "sigma": 0.0, "mask": "gaussian", "acceleration": 4}
        store = simulate_scenario(tiny_slices, tmp_path / "m.h5", "mine", spec, seed=0)
        data = read_measurements(store, "train")
        assert type(data.physics()).__name__ == "MinimalMRI"
        run_spec = {
            "model": {"num_iter": 2, "scales": 2, "width": 4},
            "train": {"epochs": 1, "batch_size": 2},
            "scenario": spec,
        }
        model_path = train(store, tmp_path / "run", "mc", 0, run_spec, torch.device("cpu"))
        assert model_path.exists()
        record = json.loads((tmp_path / "run" / "run.json").read_text())
        assert plugin in record["code"]["modules"]  # editing the physics marks the run stale
        assert plugin_files("physics", ["minimal-mri", "single-coil"]) == [
            str(tmp_path / f"{plugin}.py")
        ]
    finally:
        monkeypatch.undo()


def test_a_plugin_physics_with_coils_is_simulated_as_multicoil(
    isolated_plugins, tmp_path: Path, tiny_slices: Path
) -> None:
    """A coil kind gets the scenario's birdcage maps: the built-in operator gives the same store."""
    import ssibench
    from ssibench.data.measurements import read_measurements
    from ssibench.physics import MultiCoilMRI
    from ssibench.simulate import simulate_scenario
    from ssibench.training import train

    def build(mask, coil_maps, sigma=0.0):
        return MultiCoilMRI(mask, coil_maps, sigma=sigma)

    ssibench.register_physics("my-multicoil", build, coils=True)
    common = {"sigma": 0.05, "mask": "gaussian", "acceleration": 4, "n_coils": 3}
    mine = simulate_scenario(
        tiny_slices, tmp_path / "mine.h5", "s", {"physics": "my-multicoil", **common}, seed=0
    )
    ours = simulate_scenario(
        tiny_slices, tmp_path / "ours.h5", "s", {"physics": "multicoil", **common}, seed=0
    )
    for split in ("train", "test"):
        a, b = read_measurements(mine, split), read_measurements(ours, split)
        assert a.y.shape[1:3] == (2, 3)  # (n, 2, N, H, W)
        assert torch.equal(a.y, b.y)
        assert torch.equal(a.coil_maps, b.coil_maps)
    assert type(read_measurements(mine, "train").physics()).__name__ == "MultiCoilMRI"
    run_spec = {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": 1, "batch_size": 2},
        "scenario": {"physics": "my-multicoil", **common},
    }
    assert train(mine, tmp_path / "run", "mc", 0, run_spec, torch.device("cpu")).is_file()
    with pytest.raises(isolated_plugins.PluginError, match=r"build\(mask, coil_maps, sigma"):
        ssibench.register_physics("no-maps", lambda mask, sigma=0.0: mask, coils=True)


def test_a_plugin_data_set_becomes_a_slices_store(isolated_plugins, tmp_path: Path) -> None:
    """register_dataset → .npy volumes in the raw folder → the images extraction, per volume."""
    import numpy as np

    import ssibench
    from ssibench.data.images import extract_images
    from ssibench.data.sources import write_dataset

    def build(n: int, size: int = 12) -> dict[str, np.ndarray]:
        ramp = np.linspace(0.0, 1.0, size * size, dtype=np.float32).reshape(size, size)
        return {f"subject{k}": np.stack([ramp + k, ramp * (k + 1)]) for k in range(n)}

    ssibench.register_dataset("ramps", build)
    files = write_dataset("ramps", {"n": 6}, tmp_path / "raw")
    assert [path.name for path in files] == [f"subject{k}.npy" for k in range(6)]
    store = extract_images(tmp_path / "raw", tmp_path / "slices.h5", (12, 12), (0.5, 0.25, 0.25), 0)
    assert store.images.shape == (12, 12, 12)  # 6 volumes × 2 slices
    assert store.images.min() == 0.0
    assert store.images.max() == 1.0  # each slice rescaled to [0, 1]


def test_a_bad_plugin_data_set_is_named(isolated_plugins, tmp_path: Path) -> None:
    import numpy as np

    import ssibench
    from ssibench.data.sources import write_dataset
    from ssibench.errors import ConfigError, DataFileError

    ssibench.register_dataset("broken", lambda: {"ok": np.ones((4, 4)), "bad/name": np.ones(3)})
    with pytest.raises(DataFileError, match=r"'bad/name': not a usable file name"):
        write_dataset("broken", {}, tmp_path)
    with pytest.raises(ConfigError, match=r"does not take \{'n': 1\}"):
        write_dataset("broken", {"n": 1}, tmp_path)
    with pytest.raises(ConfigError, match="unknown data set 'nothing'"):
        write_dataset("nothing", {}, tmp_path)
    with pytest.raises(isolated_plugins.PluginError, match="data set name 'broken' is already"):
        ssibench.register_dataset("broken", lambda: {})


def test_a_wrong_signature_is_refused_naming_the_plugin(isolated_plugins, tmp_path, monkeypatch):
    """A builder, metric or physics that cannot be called, and a loss the trainer cannot call."""
    import ssibench
    from ssibench.errors import ConfigError
    from ssibench.methods.builders import build_losses

    with pytest.raises(isolated_plugins.PluginError, match=r"called as build\(context\)"):
        ssibench.register_method("no-context", lambda: [], label="x")
    with pytest.raises(isolated_plugins.PluginError, match=r"called as fn\(x_hat, x\)"):
        ssibench.register_metric("one-arg", lambda x: x)
    with pytest.raises(isolated_plugins.PluginError, match=r"build\(mask, sigma=sigma\)"):
        ssibench.register_physics("no-sigma", lambda mask: mask)
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _write_plugin(
        tmp_path,
        "odd_loss_plugin",
        """
        import torch
        import ssibench

        class OddLoss(torch.nn.Module):
            def forward(self, prediction, target):
                return (prediction - target).pow(2).mean()

        ssibench.register_method("odd", lambda context: [OddLoss()], label="Odd")
        """,
    )
    isolated_plugins.load_plugins([name], entry_points=False)
    scenario = {"physics": "single-coil", "sigma": 0.0, "mask": "gaussian", "acceleration": 4}
    with pytest.raises(ConfigError) as error:
        build_losses("odd", scenario, None, torch.Generator())
    message = str(error.value)
    assert "plugin 'odd_loss_plugin'" in message
    assert "OddLoss cannot be called: its forward takes no x_net, y, physics, model" in message
    assert "forward(self, x_net, y, physics, model" in message


def test_the_workflow_refuses_a_broken_plugin_method_before_any_job(
    isolated_plugins, tmp_path, monkeypatch
) -> None:
    import yaml
    from snakemake.utils import validate

    from ssibench.config import drop_disabled_scenarios
    from ssibench.errors import ConfigError
    from ssibench.pipeline import apply_plugins, check_config

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_plugin(
        tmp_path,
        "failing_builder_plugin",
        """
        import ssibench

        def build(context):
            return [context.options.missing_option]

        ssibench.register_method("fails", build, label="Fails")
        """,
    )
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    config.update(plugins=["failing_builder_plugin"], extra_methods=["fails"])
    drop_disabled_scenarios(config)
    validate(config, str(root / "workflow" / "schemas" / "config.schema.yaml"))
    apply_plugins(config)
    assert config["methods"][-1] == "fails"
    with pytest.raises(ConfigError, match=r"plugin 'failing_builder_plugin'.*AttributeError"):
        check_config(config)
