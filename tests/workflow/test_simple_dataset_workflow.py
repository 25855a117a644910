"""A DeepInverse simple data set runs the grid with SSIBench's own train/test indices."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
import yaml
from torch.utils.data import random_split
from workflow_run import ROOT, run_smoke

from ssibench.data.slices import read_slice_store


def test_a_simple_data_set_runs_the_grid_on_ssibench_s_split(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    slices = torch.rand(20, 32, 32, generator=generator).cumsum(-1)  # smooth rows, not constant
    low, high = slices.amin((1, 2), keepdim=True), slices.amax((1, 2), keepdim=True)
    slices = (slices - low) / (high - low)
    torch.save(slices, tmp_path / "fastmri_brain_singlecoil.pt")  # save_simple_dataset's layout
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    overlay = {
        "data": {
            "source": "simple",
            "raw_dir": str(tmp_path / "fastmri_brain_singlecoil.pt"),
            "name": "brain",
            "split": {"train": 0.8, "val": 0.0, "test": 0.2},
            "split_rule": "ssibench",
        },
        "methods": ["zero-filled", "mc"],
        "scenarios": {name: None for name in base["scenarios"] if name != "single-coil"},
        "train": {"epochs": 1},
    }
    (tmp_path / "simple.yaml").write_text(yaml.safe_dump(overlay))
    workdir = tmp_path / "work"
    # extract → simulate → train → evaluate: past the slices store every source is the same
    # code, which the smoke run covers up to the tables and figures
    metrics = "results/brain-32x32/runs/single-coil/mc/seed0/metrics.csv"
    result = run_smoke(workdir, tmp_path / "simple.yaml", metrics)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    _, test = random_split(range(20), (0.8, 0.2), generator=torch.Generator().manual_seed(0))
    store = read_slice_store(workdir / "data/slices/brain-32x32.h5")
    assert store.split["test"].tolist() == sorted(test.indices)
    results = workdir / "results/brain-32x32"
    with (results / "runs/single-coil/mc/seed0/metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(row["sample"]) for row in rows} == set(range(len(test)))  # every test slice
