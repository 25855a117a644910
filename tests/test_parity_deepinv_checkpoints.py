"""DeepInverse 0.5.0 checkpoints against ssibench: the same network, the same numbers.

* ``ssibench export`` of a trained run loads into ``deepinv.models.MoDL`` with
  ``load_state_dict(strict=True)`` and reconstructs the run's test split as ssibench does;
* a checkpoint written by DeepInverse's own ``Trainer`` (one epoch of MC training from a random
  initialisation) is read by ``read_checkpoint`` / ``ssibench evaluate --ckpt``: the same
  reconstructions, and the same per-slice PSNR as ``Trainer.test`` with SSIBench's metric
  ``deepinv.loss.metric.PSNR(complex_abs=True)`` (peak 1 on magnitudes: ssibench's ``ssibench``
  metric mode).

Skipped unless DeepInverse 0.5.0 (with torchvision) is importable: install the ``parity`` extra in
a separate environment, see docs/parity.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from parity_gate import deepinv, env  # skips this module without DeepInverse 0.5.0
from ssibench.cli import main
from ssibench.config.records import parse_model_config
from ssibench.data.measurements import read_measurements
from ssibench.evaluation.checkpoint import load_weights, read_checkpoint
from ssibench.interop.checkpoints import to_deepinv
from ssibench.models import build_modl
from ssibench.physics import SingleCoilMRI
from ssibench.safe_load import load_torch_file
from ssibench.simulate import simulate
from ssibench.training import build_network, train

CPU = torch.device("cpu")
#: Reconstructions agree to float32 rounding (the two FFT-based proxes differ in operation order).
ATOL = 1e-5
#: PSNR agrees to this (DeepInverse adds 1e-8 to MSE/peak², ssibench does not).
PSNR_TOLERANCE_DB = 0.01
SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": True,  # one operator for DeepInverse's Trainer, which takes a fixed physics
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
MODEL_SPEC = {"num_iter": 2, "scales": 2, "width": 4}
SPEC = {
    "model": MODEL_SPEC,
    "train": {"epochs": 1, "batch_size": 2},
    "method_options": {},
    "scenario": SCENARIO,
    "evaluate": {"n_samples": 1},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_slices: Path) -> Path:
    env.import_deepinv()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("deepinv-parity")
    return simulate(tiny_slices, root / "store.h5", "sc", SCENARIO, seed=0)


def _deepinv_physics(mask: torch.Tensor):
    """DeepInverse's single-coil MRI with ssibench's ``(B|1, 1, H, W)`` mask on both channels."""
    mask2 = mask.expand(mask.shape[0], 2, *mask.shape[2:]).clone()
    return deepinv.physics.MRI(mask=mask2, img_size=tuple(mask2.shape))


def _deepinv_modl(num_iter: int, scales: int, width: int):
    """DeepInverse's MoDL; at width 64 exactly as SSIBench builds it (no ``channels_per_scale``)."""
    channels = None if width == 64 else [width * 2**k for k in range(scales)]
    unet = deepinv.models.UNet(2, 2, scales=scales, batch_norm=False, channels_per_scale=channels)
    return deepinv.models.MoDL(denoiser=unet, num_iter=num_iter)


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((3, 3, 4), (32, 32)),
        ((3, 3, 4), (30, 27)),  # not a multiple of 4: both U-Nets pad and crop
        ((3, 4, 64), (32, 32)),  # SSIBench's model
    ],
)
def test_exported_weights_reconstruct_identically_in_deepinv(shape, size):
    env.import_deepinv()
    num_iter, scales, width = shape
    generator = torch.Generator().manual_seed(0)
    ours = build_modl(num_iter, scales=scales, width=width, generator=generator).eval()
    with torch.no_grad():
        ours.step_sizes.copy_(torch.tensor([0.6, 1.1, 1.7]))
    state, model = to_deepinv(ours.state_dict(), Path("x.pth.tar"))
    theirs = _deepinv_modl(num_iter, scales, width).eval()
    theirs.load_state_dict(state, strict=True)
    mask = (torch.rand(2, 1, *size, generator=generator) < 0.4).float()
    y = SingleCoilMRI(mask).A(torch.randn(2, 2, *size, generator=generator))
    with torch.no_grad():
        difference = (ours(y, SingleCoilMRI(mask)) - theirs(y, _deepinv_physics(mask))).abs().max()
    print(f"export {model.model_spec} at {size}: max |ssibench − deepinv| = {difference:.2e}")
    assert difference < ATOL


def test_ssibench_export_of_a_run_loads_strictly_and_reconstructs_its_test_split(store, tmp_path):
    run = tmp_path / "run"
    train(store, run, "mc", 0, SPEC, CPU)
    out = tmp_path / "mc.pth.tar"
    assert main(["export", str(run), str(out), "--to", "deepinv"]) == 0
    theirs = _deepinv_modl(2, 2, 4).eval()
    theirs.load_state_dict(torch.load(out, weights_only=True)["state_dict"], strict=True)
    checkpoint = read_checkpoint(run / "model.pt")
    ours = build_network(parse_model_config(MODEL_SPEC), 0).eval()
    load_weights(ours, checkpoint.weights, run, checkpoint.spec, "")
    test = read_measurements(store, "test")
    with torch.no_grad():
        a = ours(test.y, test.physics(slice(None)))
        b = theirs(test.y, _deepinv_physics(test.masks))
    difference = (a - b).abs().max()
    print(f"export of a run: max |ssibench − deepinv| = {difference:.2e}")
    assert difference < ATOL


@pytest.fixture(scope="module")
def deepinv_run(store, tmp_path_factory) -> dict:
    """One epoch of DeepInverse's Trainer (MC loss) from a random MoDL; its checkpoint and test.

    The U-Net's output layer starts small (×0.01, bias 0): near the identity, so the PSNRs compared
    are those of a reconstruction (about 14 dB on this tiny store), not of a random offset.
    """
    folder = tmp_path_factory.mktemp("deepinv-trainer")
    torch.manual_seed(0)
    model = _deepinv_modl(3, 3, 4)
    with torch.no_grad():  # distinct step sizes, so a mix-up of iterations would show
        for k, value in enumerate((0.6, 1.1, 1.7)):
            model.params_algo["stepsize"][k].fill_(value)
        # a small output layer: the residual U-Net starts near the identity, so the PSNRs
        # compared are in the range of real reconstructions rather than of noise
        model.prior[0].denoiser.Conv_1x1.weight.mul_(0.01)
        model.prior[0].denoiser.Conv_1x1.bias.zero_()
    train_set, test = read_measurements(store, "train"), read_measurements(store, "test")
    physics = _deepinv_physics(test.masks)  # the shared mask of every split
    loader = torch.utils.data.DataLoader
    dataset = torch.utils.data.TensorDataset
    trainer = deepinv.Trainer(
        model=model,
        physics=physics,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        scheduler=None,
        train_dataloader=loader(dataset(train_set.x, train_set.y), batch_size=2),
        epochs=1,
        losses=[deepinv.loss.MCLoss()],
        metrics=[deepinv.loss.metric.PSNR(complex_abs=True)],
        online_measurements=False,
        device=CPU,
        save_path=folder,
        verbose=False,
        show_progress_bar=False,
    )
    trainer.train()
    results = trainer.test(
        loader(dataset(test.x, test.y), batch_size=1),
        compare_no_learning=True,
        log_raw_metrics=True,
    )
    (checkpoint,) = folder.glob("**/ckp_0.pth.tar")
    return {"checkpoint": checkpoint, "model": model.eval(), "results": results, "test": test}


def test_a_deepinv_trainer_checkpoint_reconstructs_as_in_deepinv(deepinv_run):
    saved = load_torch_file(deepinv_run["checkpoint"], "")  # weights only, optimiser included
    assert {"state_dict", "epoch", "optimizer", "scheduler", "loss"} <= set(saved)
    assert saved["optimizer"]["state"]  # Adam's moments: plain tensors and dicts
    checkpoint = read_checkpoint(deepinv_run["checkpoint"], method="mc")
    assert checkpoint.spec["model"] == {
        "num_iter": 3,
        "scales": 3,
        "width": 4,
        "step_order": "dc-first",
    }
    ours = build_network(parse_model_config(checkpoint.spec["model"]), 0).eval()
    load_weights(ours, checkpoint.weights, checkpoint.path, checkpoint.spec, "")
    test = deepinv_run["test"]
    with torch.no_grad():
        a = ours(test.y, test.physics(slice(None)))
        b = deepinv_run["model"](test.y, _deepinv_physics(test.masks))
    difference = (a - b).abs().max()
    print(f"deepinv Trainer checkpoint: max |ssibench − deepinv| = {difference:.2e}")
    assert difference < ATOL


def test_ssibench_evaluate_scores_a_deepinv_checkpoint_as_trainer_test(
    deepinv_run, store, tmp_path
):
    status = main(
        [
            *["evaluate", "--device", "cpu", "--data", str(store)],
            *["--ckpt", str(deepinv_run["checkpoint"]), "--method", "mc"],
            *["--out-metrics", str(tmp_path / "m.csv"), "--out-samples", str(tmp_path / "s.npz")],
        ]
    )
    assert status == 0
    rows = pd.read_csv(tmp_path / "m.csv")
    rows = rows[rows["mode"] == "ssibench"].sort_values("sample")
    results = deepinv_run["results"]
    theirs = torch.tensor(results["PSNR_vals"], dtype=torch.float64)
    baseline = torch.tensor(results["PSNR no learning_vals"], dtype=torch.float64)
    per_slice = (torch.tensor(rows["psnr"].to_numpy()) - theirs).abs().max()
    zero_filled = (torch.tensor(rows["zf_psnr"].to_numpy()) - baseline).abs().max()
    mean = abs(rows["psnr"].mean() - results["PSNR"])
    print(
        f"PSNR ssibench {rows['psnr'].mean():.4f} dB, Trainer.test {results['PSNR']:.4f} dB: "
        f"mean diff {mean:.1e} dB, max per-slice {per_slice:.1e} dB; zero-filled "
        f"{rows['zf_psnr'].mean():.4f} dB, max per-slice diff {zero_filled:.1e} dB"
    )
    assert per_slice < PSNR_TOLERANCE_DB
    assert zero_filled < PSNR_TOLERANCE_DB
    assert mean < PSNR_TOLERANCE_DB
