"""The example plugin joins a real (tiny) workflow run through the config alone."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import yaml
from workflow_run import ROOT, run_smoke

EXAMPLES = ROOT / "examples"
SCENARIO = "single-coil"


def _overlay(path: Path) -> Path:
    """Smoke settings, one scenario, two built-in methods plus the plugin's method and metric."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    overlay = {
        "plugins": ["ssibench_tv_plugin"],
        "methods": ["zero-filled", "mc"],
        "extra_methods": ["mc-tv"],
        "metrics": ["psnr", "ssim", "nmse", "mae"],
        "scenarios": {name: None for name in base["scenarios"] if name != SCENARIO},
        "data": {"demo": {"n_volumes": 8}},
        "train": {"epochs": 1},
    }
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_a_plugin_method_and_metric_reach_the_leaderboard(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    overlay = _overlay(tmp_path / "plugin.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
    }
    table = f"results/demo-32x32/tables/leaderboard_{SCENARIO}.csv"
    result = run_smoke(workdir, overlay, table, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "ssibench --plugin ssibench_tv_plugin train" in result.stdout + result.stderr
    with (workdir / table).open() as handle:
        rows = list(csv.DictReader(handle))
    assert "MC+TV" in {row["label"] for row in rows}
    metrics = workdir / f"results/demo-32x32/runs/{SCENARIO}/mc-tv/seed0/metrics.csv"
    with metrics.open() as handle:
        header = next(csv.reader(handle))
    assert "mae" in header
