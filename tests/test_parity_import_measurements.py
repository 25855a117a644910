"""Files written by DeepInverse's own generate_dataset, imported, score as DeepInverse scores them.

For each file (MRI with a Gaussian mask generator and Gaussian noise; MRI with one fixed mask and
a val split; MultiCoilMRI with a mask generator), ``ssibench import-measurements`` makes a store
and ``ssibench evaluate --method zero-filled`` scores its test split; DeepInverse's "no learning"
baseline (the Trainer's default, x = physics.A_adjoint(y) with the sample's saved parameters)
is scored with ``deepinv.metric.PSNR(complex_abs=True)``, SSIBench's metric: PSNR of the
magnitudes with a peak of 1. ssibench's ``ssibench`` metric mode is that definition, so the
per-sample values agree within 0.01 dB (float32 sums; DeepInverse adds 1e-8 inside its log).

Skipped unless DeepInverse 0.5.0 (with torchvision) is importable: run it in the parity
environment, ``python -m pytest tests/test_parity_import_measurements.py`` (docs/parity.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from parity_gate import deepinv, env  # skips this module without DeepInverse 0.5.0
from ssibench.cli import main
from ssibench.data.measurements import read_measurements
from ssibench.physics import birdcage_maps

H, W = 32, 24
#: The masks' distribution in ssibench's words: DeepInverse's GaussianMaskGenerator below.
SPEC = {"mask": "gaussian", "acceleration": 4, "center_fraction": 0.125}


class _Images(torch.utils.data.Dataset):
    """n smooth complex images (B, 2, H, W) in [0, 1], as a DeepInverse base data set."""

    def __init__(self, n: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 2, H // 4, W // 4, generator=gen)
        images = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bilinear")
        self.images = images * torch.tensor([1.0, 0.1]).view(1, 2, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def _generate(folder: Path, case: str):
    """Write ``dinv_dataset0.h5`` with generate_dataset; return it, the physics and generator."""
    env.import_deepinv()
    gen = deepinv.physics.generator.GaussianMaskGenerator(
        img_size=(H, W), acceleration=4, center_fraction=0.125, rng=torch.Generator().manual_seed(0)
    )
    if case == "noisy":
        noise = deepinv.physics.GaussianNoise(sigma=0.05)
        physics = deepinv.physics.MRI(img_size=(H, W), noise_model=noise)
    elif case == "fixed":
        physics = deepinv.physics.MRI(mask=gen.step(1)["mask"], img_size=(H, W))
    else:
        maps = birdcage_maps(4, H, W)
        physics = deepinv.physics.MultiCoilMRI(img_size=(H, W), coil_maps=maps)
    generator = None if case == "fixed" else gen
    path = deepinv.datasets.generate_dataset(
        _Images(7, seed=1),
        physics,
        str(folder),
        test_dataset=_Images(5, seed=2),
        val_dataset=_Images(2, seed=3) if case == "fixed" else None,
        physics_generator=generator,
        save_physics_generator_params=True,
        batch_size=3,
        verbose=False,
    )
    return Path(path), physics


def _no_learning_psnr(path: Path, physics) -> np.ndarray:
    """DeepInverse's no-learning PSNR per test sample: PSNR(complex_abs=True)(Aᴴy, x)."""
    data = deepinv.datasets.HDF5Dataset(str(path), split="test", load_physics_generator_params=True)
    metric = deepinv.metric.PSNR(complex_abs=True)
    values = []
    for i in range(len(data)):
        x, y, params = data[i]
        x_lin = physics.A_adjoint(y[None], **{k: v[None] for k, v in params.items()})
        values.append(float(metric(x_lin, x[None])))
    return np.array(values)


@pytest.mark.parametrize("case", ["noisy", "fixed", "multicoil"])
def test_zero_filled_psnr_equals_deepinv_no_learning(tmp_path: Path, case: str) -> None:
    torch.set_num_threads(1)
    source, physics = _generate(tmp_path / "dinv", case)
    store, metrics = tmp_path / f"{case}.h5", tmp_path / "metrics.csv"
    spec = SPEC if case == "noisy" else {**SPEC, "sigma": 0}  # sigma of the noisy: its state
    imported = [
        "--physics",
        json.dumps(spec),
        "--physics-state",
        str(tmp_path / "dinv/physics0.pt"),
    ]
    assert (
        main(["--quiet", "import-measurements", str(source), *imported, "--out", str(store)]) == 0
    )
    run = ["--run-dir", str(tmp_path / "run"), "--out-samples", str(tmp_path / "s.npz")]
    data = ["--data", str(store), "--method", "zero-filled", "--device", "cpu"]
    assert main(["--quiet", "evaluate", *data, "--out-metrics", str(metrics), *run]) == 0

    ours = pd.read_csv(metrics).query("mode == 'ssibench'").sort_values("sample")["psnr"]
    theirs = _no_learning_psnr(source, physics)
    assert len(ours) == len(theirs) == 5
    assert np.abs(ours.to_numpy() - theirs).max() < 0.01, (ours.to_numpy(), theirs)
    # the very same measurements: DeepInverse's HDF5Dataset reads the store's bytes
    test = read_measurements(store, "test")
    dataset = deepinv.datasets.HDF5Dataset(str(source), split="test")
    assert torch.equal(test.y, torch.stack([dataset[i][1] for i in range(len(dataset))]))
    if case == "fixed":
        assert len(read_measurements(store, "val")) == 2
