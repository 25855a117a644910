"""DeepInverse MoDL checkpoints in (``evaluate --ckpt``, ``external_runs``) and out (``export``).

Runs without DeepInverse: its 0.5.0 layout is written down below as DeepInverse itself prints it
(``deepinv.models.MoDL(denoiser=deepinv.models.UNet(2, 2, scales=4, batch_norm=False),
num_iter=3).state_dict()``); tests/test_parity_deepinv_checkpoints.py checks the same against the
installed DeepInverse.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config, validate

from ssibench.cli import main
from ssibench.config import drop_disabled_scenarios
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.checkpoint import read_checkpoint
from ssibench.evaluation.evaluate import evaluate
from ssibench.interop.checkpoints import DeepInvModel, deepinv_layout, from_deepinv, to_deepinv
from ssibench.interop.export import export_deepinv
from ssibench.models import build_modl
from ssibench.pipeline import check_config, plan_runs
from ssibench.simulate import simulate
from ssibench.training import MODEL, train
from test_trust import SCENARIO  # the tiny single-coil scenario of the run tests

ROOT = Path(__file__).resolve().parents[1]
HERE = Path("ckpt.pth.tar")
CPU = torch.device("cpu")
MODEL_SPEC = {"num_iter": 2, "scales": 2, "width": 4}
SPEC = {
    "model": MODEL_SPEC,
    "train": {"epochs": 1, "batch_size": 2},
    "method_options": {},
    "scenario": SCENARIO,
    "evaluate": {"n_samples": 1},
}

#: DeepInverse 0.5.0's MoDL(UNet(2, 2, scales=4, batch_norm=False), num_iter=3), state_dict order.
DEEPINV_050_SSIBENCH_MODEL = """
params_algo.g_param.0 () params_algo.g_param.1 () params_algo.g_param.2 ()
params_algo.lambda.0 () params_algo.lambda.1 () params_algo.lambda.2 ()
params_algo.stepsize.0 () params_algo.stepsize.1 () params_algo.stepsize.2 ()
init_params_algo.g_param.0 () init_params_algo.g_param.1 () init_params_algo.g_param.2 ()
init_params_algo.lambda.0 () init_params_algo.lambda.1 () init_params_algo.lambda.2 ()
init_params_algo.stepsize.0 () init_params_algo.stepsize.1 () init_params_algo.stepsize.2 ()
prior.0.denoiser.Conv1.0.weight (64,2,3,3) prior.0.denoiser.Conv1.0.bias (64,)
prior.0.denoiser.Conv1.2.weight (64,64,3,3) prior.0.denoiser.Conv1.2.bias (64,)
prior.0.denoiser.Conv2.0.weight (128,64,3,3) prior.0.denoiser.Conv2.0.bias (128,)
prior.0.denoiser.Conv2.2.weight (128,128,3,3) prior.0.denoiser.Conv2.2.bias (128,)
prior.0.denoiser.Conv3.0.weight (256,128,3,3) prior.0.denoiser.Conv3.0.bias (256,)
prior.0.denoiser.Conv3.2.weight (256,256,3,3) prior.0.denoiser.Conv3.2.bias (256,)
prior.0.denoiser.Conv4.0.weight (512,256,3,3) prior.0.denoiser.Conv4.0.bias (512,)
prior.0.denoiser.Conv4.2.weight (512,512,3,3) prior.0.denoiser.Conv4.2.bias (512,)
prior.0.denoiser.Up4.1.weight (256,512,3,3) prior.0.denoiser.Up4.1.bias (256,)
prior.0.denoiser.Up_conv4.0.weight (256,512,3,3) prior.0.denoiser.Up_conv4.0.bias (256,)
prior.0.denoiser.Up_conv4.2.weight (256,256,3,3) prior.0.denoiser.Up_conv4.2.bias (256,)
prior.0.denoiser.Up3.1.weight (128,256,3,3) prior.0.denoiser.Up3.1.bias (128,)
prior.0.denoiser.Up_conv3.0.weight (128,256,3,3) prior.0.denoiser.Up_conv3.0.bias (128,)
prior.0.denoiser.Up_conv3.2.weight (128,128,3,3) prior.0.denoiser.Up_conv3.2.bias (128,)
prior.0.denoiser.Up2.1.weight (64,128,3,3) prior.0.denoiser.Up2.1.bias (64,)
prior.0.denoiser.Up_conv2.0.weight (64,128,3,3) prior.0.denoiser.Up_conv2.0.bias (64,)
prior.0.denoiser.Up_conv2.2.weight (64,64,3,3) prior.0.denoiser.Up_conv2.2.bias (64,)
prior.0.denoiser.Conv_1x1.weight (2,64,1,1) prior.0.denoiser.Conv_1x1.bias (2,)
"""


def _recorded_layout() -> list[tuple[str, tuple[int, ...]]]:
    words = DEEPINV_050_SSIBENCH_MODEL.split()
    return [
        (name, tuple(int(n) for n in shape.strip("()").split(",") if n))
        for name, shape in zip(words[::2], words[1::2], strict=True)
    ]


def _ours(num_iter: int, scales: int, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights of ssibench's MoDL with distinct step sizes (so a mix-up of k shows)."""
    network = build_modl(
        num_iter, scales=scales, width=width, generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        network.step_sizes.copy_(torch.linspace(0.5, 1.5, num_iter))
    return network.state_dict()


def _deepinv_state(num_iter: int = 2, scales: int = 3, width: int = 4) -> dict[str, torch.Tensor]:
    state, _ = to_deepinv(_ours(num_iter, scales, width), HERE)
    return dict(state)


# ---------------------------------------------------------------- the mapping


def test_the_ssibench_model_maps_onto_deepinv_0_5_0_names_and_shapes():
    with torch.device("meta"):  # 8.6 M parameters, no memory
        weights = build_modl(3, scales=4, width=64).state_dict()
    state, model = to_deepinv(weights, HERE)
    assert [(k, tuple(v.shape)) for k, v in state.items()] == _recorded_layout()
    assert model == DeepInvModel(num_iter=3, scales=4, width=64)
    assert model.deepinv_call == (
        "deepinv.models.MoDL(denoiser=deepinv.models.UNet(2, 2, scales=4, batch_norm=False), "
        "num_iter=3)"
    )


@pytest.mark.parametrize(("num_iter", "scales", "width"), [(1, 2, 4), (3, 3, 8), (2, 4, 2)])
def test_round_trip_ours_deepinv_ours_is_exact_and_infers_the_model(num_iter, scales, width):
    ours = _ours(num_iter, scales, width)
    state, exported = to_deepinv(ours, HERE)
    back, model = from_deepinv(state, HERE)
    assert model == exported == DeepInvModel(num_iter, scales, width)
    assert model.model_spec == {"num_iter": num_iter, "scales": scales, "width": width}
    assert back.keys() == ours.keys()
    for name, tensor in ours.items():
        torch.testing.assert_close(back[name], tensor, rtol=0, atol=0)
    for k in range(num_iter):  # γ_k under both DeepInverse names, its unused twins at their init
        assert state[f"params_algo.stepsize.{k}"] is state[f"init_params_algo.stepsize.{k}"]
        assert state[f"params_algo.stepsize.{k}"] == ours["step_sizes"][k]
        assert state[f"params_algo.lambda.{k}"] == 1.0
    network = build_modl(num_iter, scales=scales, width=width)
    network.load_state_dict(back, strict=True)
    if width != 64:
        assert f"channels_per_scale={[width * 2**k for k in range(scales)]}" in model.deepinv_call


def test_a_trainer_checkpoint_and_a_wrapped_model_are_recognised(tmp_path):
    state = _deepinv_state()
    wrapped = {f"model.{k}": v for k, v in state.items()}  # SplittingLoss.adapt_model
    wrapped["mask_generator.initial_random_state"] = torch.zeros(5056, dtype=torch.uint8)
    weight = state["prior.0.denoiser.Conv1.0.weight"]
    trainer = {
        "epoch": 4,
        "state_dict": wrapped,
        "loss": {"SplittingLoss": [0.5, 0.4]},
        "eval_metrics": {"PSNR": [30.0]},
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros_like(weight)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}],
        },
        "scheduler": {"milestones": {2: 1}, "gamma": 0.1, "last_epoch": 4},
    }
    assert deepinv_layout(trainer, HERE).keys() == state.keys()
    assert deepinv_layout(state, HERE).keys() == state.keys()
    assert deepinv_layout(_ours(1, 2, 4), HERE) is None  # ssibench's own plain state_dict
    assert deepinv_layout({"model": {}, "record": {}}, HERE) is None
    path = tmp_path / "ckp_4.pth.tar"
    torch.save(trainer, path)
    checkpoint = read_checkpoint(path, method="ssdu")
    assert (checkpoint.method, checkpoint.seed, checkpoint.record) == ("ssdu", 0, None)
    assert checkpoint.spec["model"] == {
        "num_iter": 2,
        "scales": 3,
        "width": 4,
        "step_order": "dc-first",
    }
    torch.testing.assert_close(checkpoint.weights["step_sizes"], torch.tensor([0.5, 1.5]))


def _set(name: str, value: torch.Tensor) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(name, value)


def _drop(*names: str) -> Callable[[dict], None]:
    return lambda state: [state.pop(name) for name in names]


P = "prior.0.denoiser."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _set(f"{P}Conv2.1.running_mean", torch.zeros(8)),
            f"layer {P}Conv2.1.running_mean is batch norm, which ssibench's U-Net does not have",
        ),
        (
            _set(f"{P}Up3.1.weight", torch.zeros(8, 8, 3, 3)),
            f"layer {P}Up3.1.weight has shape (8, 8, 3, 3), expected (8, 16, 3, 3) for a "
            "residual 2 → 2-channel UNet of 3 scales with 4·2^k channels",
        ),
        (
            _set(f"{P}Conv1.0.weight", torch.zeros(4, 3, 3, 3)),
            f"layer {P}Conv1.0.weight has shape (4, 3, 3, 3), expected (4, 2, 3, 3)",
        ),
        (
            _set(f"{P}Conv_1x1.weight", torch.zeros(1, 4, 1, 1)),
            f"layer {P}Conv_1x1.weight has shape (1, 4, 1, 1), expected (2, 4, 1, 1)",
        ),
        (
            _set(f"{P}Conv2.0.weight", torch.zeros(12, 4, 3, 3)),  # channels_per_scale=[4, 12, …]
            f"layer {P}Conv2.0.weight has shape (12, 4, 3, 3), expected (8, 4, 3, 3)",
        ),
        (
            _drop(f"{P}Conv_1x1.bias"),
            "its layers do not match deepinv.models.MoDL(denoiser=deepinv.models.UNet(2, 2, "
            f"scales=3, batch_norm=False, channels_per_scale=[4, 8, 16]), num_iter=2) (missing "
            f"{P}Conv_1x1.bias)",
        ),
        (
            _set(f"{P}Extra.weight", torch.zeros(1)),
            f"(unexpected {P}Extra.weight)",
        ),
        (
            _drop("params_algo.stepsize.0"),
            "no layer params_algo.stepsize.0, so not a DeepInverse MoDL",
        ),
        (
            _set("init_params_algo.stepsize.1", torch.tensor(2.0)),
            "params_algo.stepsize.1 = 1.5 but init_params_algo.stepsize.1 = 2",
        ),
    ],
)
def test_a_checkpoint_that_does_not_map_is_refused_naming_the_layer(change, message):
    state = _deepinv_state()
    change(state)
    with pytest.raises(DataFileError) as raised:
        from_deepinv(deepinv_layout(state, HERE), HERE)
    assert str(raised.value).startswith(f"{HERE}: ")
    assert message in str(raised.value)
    assert "ssibench reads deepinv.models.MoDL(" in str(raised.value) or "make them equal" in str(
        raised.value
    )


def test_a_checkpoint_holding_an_optimiser_object_is_refused_unread(tmp_path):
    path = tmp_path / "pickled.pth.tar"
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    torch.save({"state_dict": _deepinv_state(), "optimizer": optimizer}, path)
    with pytest.raises(DataFileError) as raised:
        read_checkpoint(path, method="mc")
    message = str(raised.value)
    assert message.startswith(f"{path}: refused: the model contains ")
    assert "torch.optim.adam.Adam" in message
    assert message.endswith("or a DeepInverse MoDL checkpoint")


def test_bias_free_convolutions_and_a_lone_unet_are_refused():
    state = _deepinv_state()
    no_bias = {k: v for k, v in state.items() if not k.endswith(".bias")}
    with pytest.raises(DataFileError, match=rf"missing {P}Conv1\.0\.bias, {P}Conv1\.2\.bias"):
        from_deepinv(no_bias, HERE)
    unet = {k.removeprefix(P): v for k, v in state.items() if k.startswith(P)}
    with pytest.raises(DataFileError, match="the state_dict of a DeepInverse UNet alone"):
        deepinv_layout(unet, HERE)


def test_export_refuses_weights_of_another_network():
    batch_norm = build_modl(1, scales=2, width=4, batch_norm=True).state_dict()
    with pytest.raises(
        DataFileError, match=r"layer denoiser\.encoders\.0\.1\.running_mean is batch"
    ):
        to_deepinv(batch_norm, HERE)
    for weights in (
        {"denoiser.head.weight": torch.zeros(2, 4, 1, 1)},
        {"step_sizes": torch.ones(0)},
    ):
        with pytest.raises(DataFileError, match="no \\(K,\\) step_sizes"):
            to_deepinv(weights, HERE)
    with pytest.raises(DataFileError, match=r"layers step_sizes differ"):
        to_deepinv({"step_sizes": torch.ones(2)}, HERE)  # no U-Net


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_slices: Path) -> dict[str, Path]:
    """A tiny store, an ``mc`` run trained on it (K = 2, scales 2, width 4) and its metrics."""
    root = tmp_path_factory.mktemp("deepinv-ckpt")
    store = simulate(tiny_slices, root / "store.h5", "sc", SCENARIO, seed=0)
    run = root / "run"
    train(store, run, "mc", 0, SPEC, CPU)
    evaluate(store, "mc", run, 0, SPEC, CPU, run / "metrics.csv", run / "samples.npz")
    exported = root / "mc.pth.tar"
    assert main(["export", str(run), "--to", "deepinv", str(exported)]) == 0
    return {"store": store, "run": run, "exported": exported}


def _evaluate(capsys, trained, out: Path, *args: str | Path) -> tuple[int, str]:
    status = main(
        [
            *["evaluate", "--device", "cpu", "--data", str(trained["store"])],
            *["--out-metrics", str(out / "metrics.csv"), "--out-samples", str(out / "s.npz")],
            *map(str, args),
        ]
    )
    return status, capsys.readouterr().err


def test_export_writes_a_trainer_checkpoint_in_deepinv_names(trained):
    saved = torch.load(trained["exported"], weights_only=True)
    assert set(saved) == {"state_dict", "epoch", "ssibench"}
    assert saved["epoch"] == 0  # one epoch trained; DeepInverse counts from 0
    assert saved["ssibench"]["method"] == "mc"
    assert saved["ssibench"]["model"] == MODEL_SPEC
    expected, _ = to_deepinv(torch.load(trained["run"] / MODEL, weights_only=True)["model"], HERE)
    assert list(saved["state_dict"]) == list(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(saved["state_dict"][name], tensor, rtol=0, atol=0)


def test_an_exported_run_evaluates_as_a_deepinv_checkpoint_with_the_runs_metrics(
    trained, capsys, tmp_path
):
    status, err = _evaluate(
        capsys, trained, tmp_path, "--ckpt", trained["exported"], "--method", "mc"
    )
    assert status == 0, err
    ours = pd.read_csv(tmp_path / "metrics.csv")
    assert set(ours["code_hash"]) == {"unrecorded"}
    run = pd.read_csv(trained["run"] / "metrics.csv")
    pd.testing.assert_frame_equal(ours.drop(columns="code_hash"), run.drop(columns="code_hash"))
    spec = json.dumps(MODEL_SPEC)  # a --model-spec that agrees is accepted
    status, err = _evaluate(
        capsys,
        trained,
        tmp_path / "b",
        "--ckpt",
        trained["exported"],
        "--method",
        "mc",
        "--model-spec",
        spec,
    )
    assert status == 0, err


def test_a_deepinv_checkpoint_needs_its_method_and_no_contradicting_model_spec(
    trained, capsys, tmp_path
):
    ckpt = trained["exported"]
    status, err = _evaluate(capsys, trained, tmp_path, "--ckpt", ckpt)
    assert status == 2
    assert (
        f"{ckpt}: a DeepInverse checkpoint does not name the method that trained it; pass --method"
        in err
    )
    wrong = json.dumps({**MODEL_SPEC, "width": 8, "step_order": "denoiser-first"})
    status, err = _evaluate(
        capsys, trained, tmp_path, "--ckpt", ckpt, "--method", "mc", "--model-spec", wrong
    )
    assert status == 2
    assert "--model-spec says width 8, step_order 'denoiser-first', but the file holds" in err
    assert (
        "leave out --model-spec (a DeepInverse checkpoint's model is read from its weights)" in err
    )
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "metrics.csv").exists()


def test_export_refuses_what_deepinv_does_not_compute(trained, tmp_path, capsys):
    state = torch.load(trained["run"] / MODEL, weights_only=True)
    for key, value, message in (
        (
            "step_order",
            "denoiser-first",
            "model.step_order is 'denoiser-first'; DeepInverse's MoDL",
        ),
        ("scales", 1, "model.scales is 1; DeepInverse's UNet has at least 2 scales"),
    ):
        changed = tmp_path / f"{key}.pt"
        torch.save(
            {**state, "spec": {**state["spec"], "model": {**MODEL_SPEC, key: value}}}, changed
        )
        with pytest.raises(ConfigError, match=message):
            export_deepinv(changed, tmp_path / "out.pth.tar")
    plain = tmp_path / "plain.pt"
    torch.save(state["model"], plain)
    status = main(["export", str(plain), str(tmp_path / "out.pth.tar"), "--to", "deepinv"])
    assert status == 2
    assert f"{plain}: not a model.pt written by `ssibench train`" in capsys.readouterr().err
    with pytest.raises(DataFileError, match="no such file; pass a run folder"):
        export_deepinv(tmp_path / "none", tmp_path / "out.pth.tar")
    assert not (tmp_path / "out.pth.tar").exists()


# ---------------------------------------------------------------- external_runs


def _config(**overlay: object) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    drop_disabled_scenarios(config)
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_an_external_deepinv_checkpoint_needs_method_alone(trained, tmp_path):
    entry = {
        "scenario": "noisy",
        "label": "D",
        "checkpoint": str(trained["exported"]),
        "method": "mc",
    }
    config = _config(external_runs={"theirs": entry})
    check_config(config)
    assert shlex.split(plan_runs(config).external_state_dict_options("theirs")) == [
        "--method",
        "mc",
    ]
    plain = tmp_path / "plain.pt"
    torch.save(torch.load(trained["run"] / MODEL, weights_only=True)["model"], plain)
    for path, message in (
        (
            plain,
            "external_runs.theirs: a plain state_dict needs both `method` and `model_spec` "
            f"('{plain}' is not a DeepInverse",
        ),
        (
            trained["run"] / MODEL,
            "is a model.pt of `ssibench train`, which records its method and model: leave out "
            "`method`",
        ),
    ):
        with pytest.raises(ConfigError, match="fix it in the config file") as raised:
            check_config(_config(external_runs={"theirs": {**entry, "checkpoint": str(path)}}))
        assert message in str(raised.value)
