import json
import os

import pandas as pd
import pytest
import torch
from torch import nn

from ssibench.config.records import TrainConfig
from ssibench.data.slices import extract_slices
from ssibench.errors import ConfigError
from ssibench.evaluation.evaluate import evaluate
from ssibench.methods.builders import build_losses
from ssibench.models import UNet
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.precision import autocast_forward, configure_math, grad_scaler
from ssibench.rng import stream
from ssibench.simulate import simulate
from ssibench.training import (
    CHECKPOINT,
    MODEL,
    TRAIN_LOG,
    ModelConfig,
    build_network,
    parse_train_config,
    resolved_config,
    train,
    train_step,
)

SIZE = 16
SCENARIO = {
    "physics": "multicoil",
    "n_coils": 2,
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
SINGLE_COIL = {key: value for key, value in SCENARIO.items() if key != "n_coils"}
SINGLE_COIL["physics"] = "single-coil"
TINY_MODEL = {"num_iter": 2, "scales": 2, "width": 4}
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="requires CUDA")


def _spec(epochs, amp, method_options=None, scenario=SINGLE_COIL):
    return {
        "model": TINY_MODEL,
        "train": {"epochs": epochs, "batch_size": 2, "lr": 1e-3, "amp": amp},
        "method_options": method_options or {},
        "scenario": scenario,
        "evaluate": {"n_samples": 1},
    }


@pytest.fixture(scope="module")
def stores(tiny_fastmri_dir, tmp_path_factory):
    """Single-coil and multicoil measurement stores of the 5 tiny volumes (train 2, val 1)."""
    root = tmp_path_factory.mktemp("amp")
    extract_slices(tiny_fastmri_dir, root / "slices.h5", (SIZE, SIZE), (0.4, 0.2, 0.4), seed=0)
    return {
        name: simulate(root / "slices.h5", root / f"{name}.h5", name, scenario, seed=0)
        for name, scenario in (("single-coil", SINGLE_COIL), ("multicoil", SCENARIO))
    }


class _ConvDtypes:
    """Records the output dtype of every Conv2d forward while active (a global module hook)."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def __enter__(self):
        def hook(module, args, output):
            if isinstance(module, nn.Conv2d):
                self.dtypes.add(output.dtype)

        self.handle = nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _record_physics(monkeypatch, calls):
    """Wrap A, A_adjoint and prox_l2 of both operators: record (autocast on?, input dtypes)."""
    for cls in (SingleCoilMRI, MultiCoilMRI):
        for name in ("A", "A_adjoint", "prox_l2"):
            original = getattr(cls, name)

            def wrapped(self, *args, _original=original, _name=name, **kwargs):
                dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor) and a.ndim > 0}
                out = _original(self, *args, **kwargs)
                calls.append((_name, torch.is_autocast_enabled("cpu"), dtypes, out.dtype))
                return out

            monkeypatch.setattr(cls, name, wrapped)


def _physics(batch=2, multicoil=True):
    mask = torch.rand(batch, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) < 0.4
    if multicoil:
        return MultiCoilMRI(mask.float(), birdcage_maps(2, SIZE, SIZE))
    return SingleCoilMRI(mask.float())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_forward_runs_convolutions_in_low_precision_and_returns_float32(amp):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    net = UNet(scales=2, width=4, generator=torch.Generator().manual_seed(0))
    keys = list(net.state_dict())
    x = torch.randn(2, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    reference = net(x)
    autocast_forward(net, amp, "cpu")
    with _ConvDtypes() as convs:
        out = net(x)
    assert convs.dtypes == {dtype}
    assert out.dtype == torch.float32
    assert not torch.equal(out, reference)
    assert torch.allclose(out, reference, rtol=0.05, atol=0.05)
    assert list(net.state_dict()) == keys  # model.pt is the same with and without amp


def test_amp_none_leaves_the_network_untouched():
    net = UNet(scales=2, width=4, generator=torch.Generator().manual_seed(0))
    autocast_forward(net, "none", "cpu")
    assert "forward" not in vars(net)
    with _ConvDtypes() as convs:
        net(torch.randn(1, 2, SIZE, SIZE))
    assert convs.dtypes == {torch.float32}


def test_unknown_amp_values_are_config_errors_and_fp16_alone_scales():
    with pytest.raises(ConfigError, match=r"train.amp: unknown value 'fp8'; allowed: none, bf16"):
        parse_train_config({"amp": "fp8"})
    assert parse_train_config({"amp": "bf16"}).amp == "bf16"
    cpu = torch.device("cpu")
    assert [grad_scaler(a, cpu).is_enabled() for a in ("none", "bf16", "fp16")] == [
        False,
        False,
        True,
    ]


def test_amp_none_is_the_default_of_the_resolved_config_but_other_modes_differ():
    plain = resolved_config({"train": {"lr": 1e-3}}, "mc")
    assert resolved_config({"train": {"lr": 1e-3, "amp": "none"}}, "mc") == plain
    assert resolved_config({"train": {"lr": 1e-3, "amp": "bf16"}}, "mc") != plain


def _step_inputs(seed=0):
    physics = _physics()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, SIZE, SIZE, generator=g)
    return x, physics.A(x), physics


def test_amp_none_step_is_bit_identical_to_a_plain_step():
    x, y, physics = _step_inputs()
    config = ModelConfig(**TINY_MODEL)
    results = []
    for scaled in (True, False):
        network = build_network(config, seed=0)
        losses = build_losses("ei", SCENARIO, None, stream(0, "loss"))
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        if scaled:
            train_step(network, losses, optimizer, grad_scaler("none", x.device), x, y, physics, 0)
        else:
            optimizer.zero_grad()
            x_net = network(y, physics)
            kwargs = {"x_net": x_net, "y": y, "physics": physics, "model": network, "x": x}
            sum(loss(**kwargs, epoch=0) for loss in losses).backward()
            optimizer.step()
        results.append(network.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


@pytest.mark.parametrize("step_order", ["dc-first", "denoiser-first"])
def test_bf16_reconstruction_is_float32_and_close_to_the_float32_one(step_order):
    _, y, physics = _step_inputs()
    config = ModelConfig(**{**TINY_MODEL, "step_order": step_order})
    full, mixed = build_network(config, seed=0), build_network(config, seed=0)
    autocast_forward(mixed.denoiser, "bf16", "cpu")
    reference, out = full(y, physics), mixed(y, physics)
    assert out.dtype == torch.float32
    assert not torch.equal(out, reference)
    error = (out - reference).norm() / reference.norm()
    assert error < 2e-2


@pytest.mark.parametrize("physics", ["single-coil", "multicoil"])
def test_bf16_training_keeps_physics_and_losses_in_float32(stores, tmp_path, monkeypatch, physics):
    calls, loss_inputs = [], []
    _record_physics(monkeypatch, calls)

    def loss_hook(module, args, kwargs):
        loss_inputs.append((torch.is_autocast_enabled("cpu"), kwargs["x_net"].dtype))

    def build_losses_and_hook(*args, **kwargs):
        losses = build_losses(*args, **kwargs)
        for loss in losses:
            loss.register_forward_pre_hook(loss_hook, with_kwargs=True)
        return losses

    monkeypatch.setattr("ssibench.training.run.build_losses", build_losses_and_hook)
    with _ConvDtypes() as convs:
        scenario = SCENARIO if physics == "multicoil" else SINGLE_COIL
        spec = _spec(1, "bf16", scenario=scenario)
        train(stores[physics], tmp_path, "ei", 0, spec, torch.device("cpu"))
    log = pd.read_csv(tmp_path / TRAIN_LOG)
    assert log.filter(like="loss_").notna().all().all()
    assert (log.filter(like="loss_") > 0).all().all()
    assert torch.bfloat16 in convs.dtypes
    names = {name for name, *_ in calls}
    assert names == {"A", "A_adjoint", "prox_l2"}
    assert not any(autocast for _, autocast, _, _ in calls)
    assert all(dtypes <= {torch.float32} for _, _, dtypes, _ in calls)
    assert all(out == torch.float32 for *_, out in calls)
    assert loss_inputs
    assert all(not autocast and dtype == torch.float32 for autocast, dtype in loss_inputs)


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_fp16_scaler_state_is_checkpointed_and_an_interrupted_run_resumes_exactly(stores, tmp_path):
    cpu = torch.device("cpu")
    train(stores["single-coil"], tmp_path / "straight", "mc", 0, _spec(2, "fp16"), cpu)
    train(stores["single-coil"], tmp_path / "resumed", "mc", 0, _spec(1, "fp16"), cpu)
    after_one = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)
    assert after_one["state"]["scalers"]["scaler"]["_growth_tracker"] > 0
    (tmp_path / "resumed" / MODEL).unlink()
    train(stores["single-coil"], tmp_path / "resumed", "mc", 0, _spec(2, "fp16"), cpu)
    straight, resumed = (
        torch.load(tmp_path / run / CHECKPOINT, weights_only=True)["state"]
        for run in ("straight", "resumed")
    )
    assert straight["scalers"] == resumed["scalers"]
    a, b = _weights(tmp_path / "straight" / MODEL), _weights(tmp_path / "resumed" / MODEL)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fp16_adversarial_training_scales_both_optimisers(stores, tmp_path):
    spec = _spec(1, "fp16", {"d_dim": 4, "d_blocks": 1})
    train(stores["single-coil"], tmp_path, "adversarial", 0, spec, torch.device("cpu"))
    scalers = torch.load(tmp_path / CHECKPOINT, weights_only=True)["state"]["scalers"]
    assert set(scalers) == {"scaler", "scaler_d"}
    assert all("scale" in state for state in scalers.values())
    assert pd.read_csv(tmp_path / TRAIN_LOG).filter(like="loss_").notna().all().all()


def test_evaluation_runs_the_network_with_the_runs_amp(stores, tmp_path):
    spec = _spec(1, "bf16")
    train(stores["single-coil"], tmp_path, "mc", 0, spec, torch.device("cpu"))
    with _ConvDtypes() as convs:
        metrics = evaluate(
            stores["single-coil"],
            "mc",
            tmp_path,
            0,
            spec,
            torch.device("cpu"),
            tmp_path / "m.csv",
            tmp_path / "s.npz",
        )
    assert convs.dtypes == {torch.bfloat16}
    assert metrics[["psnr", "ssim", "nmse"]].notna().all().all()


@pytest.fixture
def no_tf32():
    """Full float32 on CUDA: PyTorch lets cuDNN convolutions use TF32 by default."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@requires_cuda
@pytest.mark.parametrize("method", ["sup", "mc"])
def test_a_training_step_on_cuda_matches_the_cpu_step(no_tf32, method):
    # Loss terms and gradients, not the weights after Adam: its first step is ±lr·sign(g), which
    # flips on gradients that are zero up to rounding.
    x, y, physics = _step_inputs()
    results = []
    for device in (torch.device("cpu"), torch.device("cuda")):
        network = build_network(ModelConfig(**TINY_MODEL), seed=0).to(device)
        losses = build_losses(method, SCENARIO, None, stream(0, "loss"))
        on = physics.to(device)
        x_net = network(y.to(device), on)
        kwargs = {"x_net": x_net, "y": y.to(device), "physics": on, "model": network}
        terms = torch.stack([loss(**kwargs, x=x.to(device), epoch=0) for loss in losses])
        terms.sum().backward()
        grads = {k: p.grad.cpu() for k, p in network.named_parameters()}
        results.append((terms.detach().cpu(), x_net.detach().cpu(), grads))
    (cpu_terms, cpu_x, cpu_grads), (cuda_terms, cuda_x, cuda_grads) = results
    torch.testing.assert_close(cuda_terms, cpu_terms, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(cuda_x, cpu_x, rtol=1e-4, atol=1e-5)
    for key, grad in cpu_grads.items():
        assert (cuda_grads[key] - grad).norm() <= 1e-3 * grad.norm() + 1e-8, key


@requires_cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cuda_without_nan(stores, tmp_path, amp):
    train(stores["single-coil"], tmp_path, "ei", 0, _spec(3, amp), torch.device("cuda"))
    log = pd.read_csv(tmp_path / TRAIN_LOG)
    assert log.filter(like="loss_").notna().all().all()
    assert log["val_psnr"].notna().all()


@pytest.fixture
def restore_math():
    """configure_math sets process-wide flags: back to the defaults afterwards."""
    yield
    configure_math(TrainConfig())


def test_tf32_and_determinism_are_set_and_recorded_in_run_json(stores, tmp_path, restore_math):
    spec = _spec(1, "none")
    spec["train"] = {**spec["train"], "tf32": True, "deterministic": True}
    train(stores["single-coil"], tmp_path, "mc", 0, spec, torch.device("cpu"))
    # deterministic wins over tf32
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    math = json.loads((tmp_path / "run.json").read_text())["math"]
    assert math["deterministic"] is True
    assert math["tf32"] is False  # never on the CPU
    assert math["amp"] == "none"
    assert math["threads"] == torch.get_num_threads()
    assert math["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert math["torch"] == torch.__version__
    configure_math(parse_train_config({"tf32": True}))
    assert torch.backends.cudnn.allow_tf32 is True
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ConfigError, match=r"train\.tf32: expected true or false; got 'yes'"):
        parse_train_config({"tf32": "yes"})
