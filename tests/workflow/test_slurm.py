"""Job resources sized from the config, and the SLURM profile layered with the CI overlay.

Dry runs only (the end-to-end run on a real one-node cluster is in .ci/run). The paper-size dry run
reads a fastMRI folder of 455 empty `.h5` files: only their number enters the sizing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
BASE_CONFIG = ROOT / "config" / "config.yaml"
SMOKE_CONFIG = ROOT / "config" / "smoke.yaml"
SLURM_PROFILE = ROOT / "profiles" / "slurm"
CI_OVERLAY = ROOT / ".ci" / "slurm" / "profile"
DRY_RUN_TIMEOUT_S = 300
PAPER_VOLUMES = 455  # fastMRI brain_multicoil_train_batch_0
PAPER = {
    "data": {
        "source": "fastmri",
        "raw_dir": "fastmri",
        "image_size": [320, 320],
        "split": {"train": 0.8, "val": 0.0, "test": 0.2},
    },
    "model": {"num_iter": 3, "scales": 4, "width": 64},
    "train": {"epochs": 150, "batch_size": 4},
    "methods": ["zero-filled", "mc", "ei"],
}
HAS_SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


JOB = re.compile(
    r"^rule (?P<rule>\w+):\n(?:    .*\n)*?"
    r"    wildcards: (?P<wildcards>.*)\n    resources: (?P<res>.*)$",
    re.MULTILINE,
)


def _dry_run(
    workdir: Path, overlay: dict | Path, profiles: tuple[Path, ...] = ()
) -> subprocess.Popen:
    if isinstance(overlay, dict):
        path = workdir / "overlay.yaml"
        path.write_text(yaml.safe_dump(overlay))
        overlay = path
    command = [sys.executable, "-m", "snakemake", "-n", "-s", str(SNAKEFILE), "-d", str(workdir)]
    for profile in profiles:
        command += ["--profile", str(profile)]
    if not profiles:
        command += ["--cores", "1"]
    command += ["--configfile", str(BASE_CONFIG), str(overlay)]
    return subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _jobs(output: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(rule, wildcards, resources) of every job a dry run lists."""
    jobs = []
    for match in JOB.finditer(output):
        wildcards = dict(item.split("=", 1) for item in match["wildcards"].split(", "))
        resources = dict(item.split("=", 1) for item in match["res"].split(", "))
        jobs.append((match["rule"], wildcards, resources))
    return jobs


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both dry runs launched together; {name: output}."""
    paper_dir = tmp_path_factory.mktemp("paper")
    (paper_dir / "fastmri").mkdir()
    for index in range(PAPER_VOLUMES):
        (paper_dir / "fastmri" / f"file_brain_{index:03d}.h5").touch()
    processes = {"paper": _dry_run(paper_dir, PAPER)}
    if HAS_SLURM_PLUGIN:
        smoke_dir = tmp_path_factory.mktemp("slurm-smoke")
        # Snakemake >= 9.27 layers repeated --profile flags: the overlay's top-level entries
        # replace the cluster profile's (the test below checks the effect on every job)
        processes["slurm"] = _dry_run(smoke_dir, SMOKE_CONFIG, (SLURM_PROFILE, CI_OVERLAY))
    outputs = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=DRY_RUN_TIMEOUT_S)
        assert process.returncode == 0, output[-3000:]
        outputs[name] = output
    return outputs


def _request(jobs, rule: str, scenario: str, method: str) -> tuple[int, int]:
    for job_rule, wildcards, resources in jobs:
        if (job_rule, wildcards.get("scenario"), wildcards.get("method")) == (
            rule,
            scenario,
            method,
        ):
            return int(resources["mem_mb"]), int(resources["runtime"])
    raise AssertionError(f"no {rule} job for {scenario}/{method}")


def test_paper_size_requests_follow_the_documented_formula(dry_runs: dict[str, str]) -> None:
    jobs = _jobs(dry_runs["paper"])
    n_train, n_test = 364, 91  # ceil(455 x 0.8), ceil(455 x 0.2)
    pixels = 320 * 320
    macs = 9 * 64**2 * (5 * 4 - 3) * pixels * 3
    # train: 4000 MB + 2 copies x 4 B x images x pixels x (2 + 3C); 15 min + FLOPs / 10 TFLOP/s
    train_minutes = 15 + 150 * n_train * 6 * 3 * macs / 1e13 / 60
    assert _request(jobs, "train", "single-coil", "mc") == (
        -(-(4000 * 10**6 + 8 * n_train * pixels * 5) // 10**6),
        -int(-train_minutes // 1),
    )
    assert _request(jobs, "train", "single-coil", "mc") == (5491, 331)  # config/README.md
    assert _request(jobs, "train", "multicoil", "ei") == (8175, 331)  # 4 coils: 2 + 3 x 4 floats
    # evaluation on one CPU thread; zero-filled has no network
    evaluate_minutes = 15 + n_test * 2 * 3 * macs / 15e9 / 60
    assert _request(jobs, "evaluate", "single-coil", "mc") == (4373, -int(-evaluate_minutes // 1))
    assert _request(jobs, "evaluate", "single-coil", "zero-filled") == (4373, 15)
    trains = [resources for rule, _, resources in jobs if rule == "train"]
    assert trains
    assert all(resources["gpu"] == "1" for resources in trains)


@pytest.mark.skipif(not HAS_SLURM_PLUGIN, reason="snakemake-executor-plugin-slurm not installed")
def test_only_training_jobs_ask_for_the_fake_gpu(dry_runs: dict[str, str]) -> None:
    jobs = _jobs(dry_runs["slurm"])
    assert {rule for rule, _, _ in jobs} >= {"train", "evaluate", "simulate", "tables"}
    # Snakemake < 9.27 shows profile strings as <TBD> (not evaluated) in a dry run
    for rule, _, resources in jobs:
        assert resources["slurm_partition"] in ("debug", "<TBD>")
        assert "slurm_account" not in resources
        if rule == "train":
            assert resources["gpu"] == "1"
            assert resources["gpu_model"] in ("fake", "<TBD>")
        else:
            assert "gpu" not in resources
            assert "gpu_model" not in resources


def test_profiles_comment_every_entry() -> None:
    for profile in (SLURM_PROFILE / "config.yaml", CI_OVERLAY / "config.yaml"):
        lines = profile.read_text().splitlines()
        for number, line in enumerate(lines):
            if line and not line.startswith((" ", "#")):  # a top-level entry
                assert lines[number - 1].startswith("#"), f"{profile}: {line!r} has no comment"
        assert yaml.safe_load(profile.read_text())
