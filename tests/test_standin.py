"""GPU-ready without a GPU: every method's step, validation and evaluation on the stand-in device.

The stand-in (:mod:`ssibench.standin`) runs the trainer's and the evaluation's own functions on
PyTorch's ``meta`` device under an audit that names the file and line of any host sync or CPU
tensor. The draws run for real on the CPU streams, so a stand-in epoch leaves every stream where a
CPU epoch does, and a CPU checkpoint resumes there. The full matrix (every method on every
scenario kind it applies to) runs in CI's smoke stage through ``ssibench preflight``.
"""

import contextlib
import subprocess
import sys
import textwrap

import pytest
import torch

from ssibench.config.records import parse_evaluate_config, parse_model_config, parse_train_config
from ssibench.data.demo import write_demo_volumes
from ssibench.data.identity import store_identity, store_scenario
from ssibench.data.kspace import write_undersampled_volumes
from ssibench.data.measurements import read_measurements
from ssibench.data.slices import extract_slices
from ssibench.evaluation.batch import evaluate_batch
from ssibench.evaluation.consistency import resolve_final_dc
from ssibench.methods import METHODS, skip_reason
from ssibench.methods.builders import build_losses, with_noise_level
from ssibench.rng import stream
from ssibench.simulate import simulate_scenario
from ssibench.standin.audit import DeviceAudit, DeviceAuditError
from ssibench.standin.check import STANDIN, check_method
from ssibench.training import CHECKPOINT, adapt, build_network, resolved_config, train
from ssibench.training.checkpoint import RunCheckpoint, run_identity
from ssibench.training.loop import divergence_guarded, run_epoch
from ssibench.training.run import build_trainable
from test_measured import SIZE as MEASURED_SIZE
from test_measured import _spec as measured_spec

SIZE = 16
KINDS = {
    "single-coil": {"physics": "single-coil", "sigma": 0.0, "shared_mask": False},
    "noisy": {"physics": "single-coil", "sigma": 0.1, "shared_mask": False},
    "single-operator": {"physics": "single-coil", "sigma": 0.0, "shared_mask": True},
    "multicoil": {"physics": "multicoil", "sigma": 0.0, "shared_mask": False, "n_coils": 3},
    "sequential": {"physics": "sequential", "sigma": 0.0, "shared_mask": False, "n_frames": 4},
}
MASK = {"mask": "gaussian", "acceleration": 4}
RAW = {
    "physics": "raw-multicoil",
    "mask": "random",
    "acceleration": 3,
    "center_lines": 6,
    "crop": [24, 24],
    "espirit": {"threshold": 0.005, "crop": 0.8},
}
SPEC = {"model": {"num_iter": 1, "scales": 2, "width": 2}, "train": {"batch_size": 2, "epochs": 1}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One tiny store per scenario kind (raw-multicoil from 24 × 24 volumes)."""
    root = tmp_path_factory.mktemp("standin")
    write_demo_volumes(root / "raw", 6, 1, 24, 24, 3, seed=0)
    extract_slices(root / "raw", root / "slices24.h5", (24, 24), (0.5, 0.25, 0.25), seed=0)
    extract_slices(root / "raw", root / "slices.h5", (SIZE, SIZE), (0.5, 0.25, 0.25), seed=0)
    paths = {
        name: simulate_scenario(root / "slices.h5", root / f"{name}.h5", name, {**spec, **MASK}, 0)
        for name, spec in KINDS.items()
    }
    paths["raw-multicoil"] = simulate_scenario(
        root / "slices24.h5", root / "raw-multicoil.h5", "raw-multicoil", RAW, 0, root / "raw"
    )
    return paths


def _first_kind(method):
    """A scenario kind the method applies to (noise-aware ones need noise, time series frames)."""
    return next(k for k in ("single-coil", "noisy", "sequential") if _applies(method, k))


def _applies(method, kind):
    spec = RAW if kind == "raw-multicoil" else {**KINDS[kind], **MASK}
    return skip_reason(method, spec) is None


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_on_the_stand_in_without_a_host_sync(stores, method):
    report = check_method(stores[_first_kind(method)], method, SPEC)
    trains = METHODS[method].trains
    assert report.steps == (2 if trains else 0)
    # the planned reads after the audited parts: the epoch's log line and divergence check,
    # then the validation means
    assert report.planned_syncs == (3 if trains else 0)


@pytest.mark.parametrize("kind", [*KINDS, "raw-multicoil"])
def test_every_scenario_kind_runs_on_the_stand_in(stores, kind):
    for method in ("mc", "ssdu", "ei", "phase2phase"):
        if _applies(method, kind):
            assert check_method(stores[kind], method, SPEC).steps == 2


def test_a_plugin_method_model_and_metric_run_on_the_stand_in(stores, isolated_plugins):
    isolated_plugins.load_plugins(["ssibench_tv_plugin"], entry_points=False)
    spec = {**SPEC, "metrics": ["psnr", "ssim", "nmse", "mae"]}
    assert check_method(stores["single-coil"], "mc-tv", spec).steps == 2
    model = {"name": "residual-cnn", "options": {"width": 4}}
    assert check_method(stores["noisy"], "ei", {**spec, "model": model}).steps == 2


def _planted_plugin(tmp_path, name, body):
    """A plugin module registering method ``<name>`` whose loss runs ``body``; its path."""
    module = tmp_path / f"{name.replace('-', '_')}.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import torch
            from torch import nn

            import ssibench
            from ssibench.losses import MCLoss


            class Planted(nn.Module):
                def forward(self, x_net, y, physics, model, **kwargs):
                    {body}


            ssibench.register_method("{name}", lambda context: [MCLoss(), Planted()], label="P")
            """
        )
    )
    return module


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("return x_net.pow(2).mean() * float(x_net.abs().max().item() > 0)", "host sync"),
        ("return (x_net - torch.ones(x_net.shape)).pow(2).mean()", "CPU tensor"),
        (
            "return (x_net - torch.ones(x_net.shape).to(x_net.device)).pow(2).mean()",
            "blocking copy",
        ),
    ],
)
def test_a_planted_sync_or_cpu_tensor_in_a_plugin_loss_is_named_by_file_and_line(
    stores, tmp_path, monkeypatch, isolated_plugins, body, kind
):
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _planted_plugin(tmp_path, "planted", body)
    isolated_plugins.load_plugins(["planted"], entry_points=False)
    with pytest.raises(DeviceAuditError) as caught:
        check_method(stores["single-coil"], "planted", SPEC)
    finding = caught.value.finding
    assert finding.where == f"{module}:11"
    assert finding.kind == kind
    assert str(caught.value).startswith(f"planted: training step: {module}:11: {kind} (")


def test_the_preflight_command_names_the_line_and_fails(stores, tmp_path):
    _planted_plugin(tmp_path, "planted-cli", "return x_net.pow(2).mean() * bool(x_net.sum() > 0)")
    base = [sys.executable, "-m", "ssibench.cli"]
    spec = '{"model": {"num_iter": 1}, "train": {"batch_size": 2}}'
    data = ["--data", str(stores["single-coil"]), "--spec", spec]
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [*base, "preflight", *data, "--method", "mc"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert "mc: 2 training steps, validation and an evaluation batch" in ok.stdout
    bad = subprocess.run(
        [*base, "--plugin", "planted_cli", "preflight", *data, "--method", "planted-cli"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1
    assert f"planted-cli: NOT GPU-ready: planted-cli: training step: {tmp_path}" in bad.stderr
    assert "planted_cli.py:11: host sync (_local_scalar_dense)" in bad.stderr


def _trainable(store, method, device, seed=0):
    spec = {**SPEC, "scenario": store_scenario(store)}
    resolved = resolved_config(spec, method)
    config = parse_train_config(resolved["train"])
    data = read_measurements(store, "train").to(device)
    return build_trainable(method, seed, resolved, data, config, device), data, config, resolved


@pytest.mark.parametrize(("method", "kind"), [("ssdu", "single-coil"), ("ddssl", "noisy")])
def test_an_epoch_on_the_stand_in_leaves_every_stream_where_a_cpu_epoch_does(stores, method, kind):
    states = {}
    for device in (torch.device("cpu"), STANDIN):
        run, data, config, _ = _trainable(stores[kind], method, device)
        with (
            DeviceAudit(f"{method} on {device}") if device == STANDIN else contextlib.nullcontext()
        ):
            run_epoch(run, data, config.batch_size, 0, divergence_guarded(run, config))
        generators = run.state.generators
        states[device.type] = {name: g.get_state() for name, g in generators.items()}
        assert all(g.device.type == "cpu" for g in generators.values())
    assert states["cpu"].keys() == states["meta"].keys()
    for name, state in states["cpu"].items():
        assert torch.equal(state, states["meta"][name]), name


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_a_cpu_checkpoint_resumes_on_the_stand_in(stores, tmp_path):
    store = stores["single-coil"]
    spec = {**SPEC, "scenario": store_scenario(store)}
    train(store, tmp_path / "run", "ei", 0, spec, torch.device("cpu"))
    saved = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert all(state.device.type == "cpu" for state in saved["state"]["generators"].values())
    run, data, config, resolved = _trainable(store, "ei", STANDIN)
    identity = saved["identity"]
    checkpoint = RunCheckpoint(tmp_path / "run" / CHECKPOINT, "ei", 0, identity)
    assert checkpoint.resume(run.state, 2) == (1, saved["log"])
    assert run.state.generators["loss"].get_state().equal(saved["state"]["generators"]["loss"])
    with DeviceAudit("resumed epoch"):
        run_epoch(run, data, config.batch_size, 1, divergence_guarded(run, config))
    assert run_identity(resolved, store_identity(store), "ei") == identity


@pytest.mark.parametrize(("method", "kind"), [("noise2inverse", "single-coil"), ("ddssl", "noisy")])
def test_evaluation_draws_are_the_same_on_any_device(stores, method, kind):
    store = stores[kind]
    spec = {**SPEC, "scenario": store_scenario(store)}
    resolved = resolved_config(spec, method)
    test = read_measurements(store, "test")
    states = []
    for device in (torch.device("cpu"), STANDIN):
        network = build_network(parse_model_config(resolved["model"]), 0)
        eval_stream = stream(0, "eval")
        scenario = with_noise_level(resolved["scenario"], test.sigma)
        losses = build_losses(method, scenario, resolved["method_options"], eval_stream)
        model = adapt(network.to(device), losses).eval()
        data = test.to(device)
        final_dc = resolve_final_dc(parse_evaluate_config({}).final_dc, data.sigma)
        with (
            torch.no_grad(),
            DeviceAudit("eval") if device == STANDIN else contextlib.nullcontext(),
        ):
            evaluate_batch(model, data.x, data.y, data.physics(), ["psnr"], final_dc)
        states.append(eval_stream.get_state())
    assert not torch.equal(states[0], stream(0, "eval").get_state())  # the batch drew
    assert torch.equal(states[0], states[1])


def test_measured_kspace_trains_on_the_stand_in_without_validation_or_evaluation(tmp_path):
    write_demo_volumes(tmp_path / "raw", 4, 3, MEASURED_SIZE, MEASURED_SIZE, 4, seed=0)
    write_undersampled_volumes(tmp_path / "raw", tmp_path / "kspace", "random", 2.0, 8, seed=0)
    store = tmp_path / "standin.h5"
    simulate_scenario(None, store, "measured", measured_spec(tmp_path / "kspace"), 0)
    report = check_method(store, "ssdu", {**SPEC, "train": {"batch_size": 2}})
    assert report.steps == 2
    assert report.planned_syncs == 2  # the epoch's log line and divergence check; no validation
