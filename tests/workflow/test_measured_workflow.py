"""A scenario on k-space undersampled at acquisition runs in the workflow: trained, not scored."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from workflow_run import ROOT, run_smoke

from ssibench.data.demo import write_demo_volumes
from ssibench.data.kspace import write_undersampled_volumes


def test_a_measured_scenario_trains_and_gets_curves_but_no_leaderboard(tmp_path: Path) -> None:
    write_demo_volumes(
        tmp_path / "raw", n_volumes=4, n_slices=2, height=32, width=32, n_coils=4, seed=1
    )
    write_undersampled_volumes(tmp_path / "raw", tmp_path / "kspace", "random", 2.0, 8, seed=1)
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    model = "results/demo-32x32/runs/prospective/ssdu/seed0/model.pt"
    overlay = {
        "methods": ["zero-filled", "sup", "ssdu"],
        "external_runs": {
            "ssdu-prospective": {  # trained without ground truth, scored where there is one
                "scenario": "raw-multicoil",
                "label": "SSDU (prospective)",
                "checkpoint": model,
                "transfer": True,
            }
        },
        "scenarios": {
            **{name: None for name in base["scenarios"] if name != "raw-multicoil"},
            "prospective": {
                "physics": "measured-multicoil",
                "kspace_dir": str(tmp_path / "kspace"),
                "crop": [32, 32],
                "espirit": {"threshold": 0.005, "crop": 0.8},
            },
        },
        "train": {"epochs": 1},
    }
    (tmp_path / "measured.yaml").write_text(yaml.safe_dump(overlay))
    workdir = tmp_path / "work"
    result = run_smoke(workdir, tmp_path / "measured.yaml")
    log = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, log
    results = workdir / "results" / "demo-32x32"
    assert (results / "runs/prospective/ssdu/seed0/model.pt").is_file()
    assert (results / "figures/curves_prospective.png").is_file()
    assert not (results / "runs/prospective/sup").exists()  # needs ground truth: skipped
    skipped = "needs ground truth (measured k-space has none): sup in prospective"
    assert skipped in result.stdout + result.stderr
    tables = sorted(path.name for path in results.glob("tables/*.csv"))
    assert tables == ["leaderboard_all.csv", "leaderboard_raw-multicoil.csv"]  # none of its own
    assert "ssibench evaluate" in result.stdout + result.stderr
    with (results / "tables/leaderboard_raw-multicoil.csv").open() as handle:
        labels = {row["label"] for row in csv.DictReader(handle)}
    assert "SSDU (prospective)" in labels  # the transferred run, marked external
    assert {"(Supervised)", "SSDU"} <= labels
