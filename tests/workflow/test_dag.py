"""Dry runs of the workflow: job counts per config, targeted re-runs, and config errors at DAG time.

Each dry run starts Snakemake (and imports torch) in a subprocess, so all of them are launched
together once per module and the tests check their results.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config, validate

from ssibench.config import drop_disabled_scenarios
from ssibench.data.demo import write_demo_volumes
from ssibench.methods import METHODS, skip_reason
from ssibench.report.published import published_leaderboards

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
BASE_CONFIG = ROOT / "config" / "config.yaml"
SMOKE_CONFIG = ROOT / "config" / "smoke.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SIMULATE_KEYS = ("mask", "acceleration", "center_fraction")
DRY_RUN_TIMEOUT_S = 300
FIGURE = "results/figures/samples_noisy.png"
FEW_METHODS = {"methods": ["zero-filled", "mc", "ssdu"]}


@dataclass(frozen=True)
class DryRun:
    """One ``snakemake -n`` call: overlays on config.yaml, targets, and a set-up of its workdir."""

    overlays: tuple[Path | dict[str, Any], ...] = ()
    targets: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None


def _touch_upstream(workdir: Path) -> None:
    """Create every file the noisy figure depends on (FEW_METHODS, seed 0), older files first."""
    (workdir / "data/raw/demo").mkdir(parents=True)
    paths = ["data/raw/demo/demo_000.h5", "data/raw/demo", "data/slices/demo.h5"]
    paths.append("data/measurements/noisy.h5")
    for method in FEW_METHODS["methods"]:
        run = f"results/runs/noisy/{method}/seed0"
        paths += [f"{run}/{name}" for name in ("model.pt", "train_log.csv")]
        paths += [f"{run}/{name}" for name in ("metrics.csv", "samples.npz")]
    for index, name in enumerate(paths):
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            path.touch()
        stamp = 1_700_000_000 + index
        os.utime(path, (stamp, stamp))


def _every_output_of_few_methods(workdir: Path) -> None:
    """Create every file of a finished FEW_METHODS run, dated 2023: older than any source file."""
    config = _config(FEW_METHODS)
    paths = ["data/raw/demo/demo_000.h5", "data/slices/demo.h5"]
    for scenario, spec in config["scenarios"].items():
        paths.append(f"data/measurements/{scenario}.h5")
        full_spec = {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec}
        for method in config["methods"]:
            if skip_reason(method, full_spec) is not None:
                continue
            run = f"results/runs/{scenario}/{method}/seed0"
            names = ["metrics.csv", "samples.npz", "benchmark_evaluate.tsv"]
            if METHODS[method].trains:
                names = ["model.pt", "train_log.csv", "benchmark.tsv", *names]
            paths += [f"{run}/{name}" for name in names]
        paths += [f"results/tables/leaderboard_{scenario}.{ext}" for ext in ("csv", "md", "tex")]
        paths += [
            f"results/figures/{kind}_{scenario}.{ext}"
            for kind in _figure_kinds(scenario)
            for ext in ("pdf", "png")
        ]
    paths += [f"results/tables/leaderboard_all.{ext}" for ext in ("csv", "md", "tex")]
    for index, name in enumerate(paths):
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        stamp = 1_700_000_000 + index
        os.utime(path, (stamp, stamp))
    os.utime(workdir / "data/raw/demo", (1_699_999_999, 1_699_999_999))  # the oldest input


def _fastmri_folder(with_file: bool) -> Callable[[Path], None]:
    def setup(workdir: Path) -> None:
        raw = workdir / "fastmri"
        raw.mkdir(parents=True)
        if with_file:
            (raw / "file_brain_AXT2_200_2000019.h5").touch()

    return setup


FASTMRI = {"data": {"source": "fastmri", "raw_dir": "fastmri"}}
PAPER_CONFIG = ROOT / "config" / "paper.yaml"
PAPER_DATA = {"data": {"raw_dir": "fastmri"}}


def _small_fastmri_files(workdir: Path) -> None:
    """Three tiny fastMRI-format multicoil volumes (the real files are not downloadable here)."""
    write_demo_volumes(workdir / "fastmri", 3, 2, 16, 16, 4, seed=0)


#: Dry runs of the default suite, by name.
DRY_RUNS = {
    "default": DryRun(),
    "smoke": DryRun(overlays=(SMOKE_CONFIG,)),
    "seeds": DryRun(overlays=({"seeds": [0, 1, 2], **FEW_METHODS},)),
    "figure": DryRun(overlays=(FEW_METHODS,), targets=(FIGURE,), setup=_touch_upstream),
    "code-edit": DryRun(overlays=(FEW_METHODS,), setup=_every_output_of_few_methods),
    "paper": DryRun(overlays=(PAPER_CONFIG, PAPER_DATA), setup=_small_fastmri_files),
}
#: More dry runs, deselected by default (pytest -m slow).
SLOW_DRY_RUNS = {
    "one-table": DryRun(targets=("results/tables/leaderboard_noisy.md",)),
    "fastmri": DryRun(overlays=(FASTMRI,), setup=_fastmri_folder(True)),
    "fastmri-empty": DryRun(overlays=(FASTMRI,), setup=_fastmri_folder(False)),
}
#: Bad overlays and the message the failing dry run must print.
BAD_CONFIGS = {
    "schema": ({"train": {"epochs": 0}}, "0 is less than the minimum of 1"),
    "method": (
        {"methods": ["mc", "ssdx"]},
        "methods[1]: unknown method 'ssdx' (did you mean 'ssdu'?)",
    ),
    "split": (
        {"data": {"split": {"train": 0.5}}},
        "data.split: train + val + test = 0.8, must be 1",
    ),
}
SLOW_BAD_CONFIGS = {
    "raw_dir": ({"data": {"source": "fastmri"}}, "data.raw_dir: required when data.source is"),
    "option": ({"method_options": {"ssdu": {"split_ratoi": 0.5}}}, "method_options.ssdu: unknown"),
    "sample_index": ({"report": {"sample_index": 9}}, "report.sample_index: 9 is not below"),
}
DRY_RUNS.update({f"bad-{name}": DryRun(overlays=(bad[0],)) for name, bad in BAD_CONFIGS.items()})
SLOW_DRY_RUNS.update(
    {f"bad-{name}": DryRun(overlays=(bad[0],)) for name, bad in SLOW_BAD_CONFIGS.items()}
)


def _launch(runs: dict[str, DryRun], factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Run the dry runs concurrently; {name: (exit status, stdout + stderr)}."""
    processes = {}
    for name, run in runs.items():
        workdir = factory.mktemp(name)
        if run.setup is not None:
            run.setup(workdir)
        command = [sys.executable, "-m", "snakemake", "-n", "-p", *run.targets, "--cores", "1"]
        command += ["-s", str(SNAKEFILE), "-d", str(workdir), "--workflow-profile", "none"]
        command += ["--configfile", str(BASE_CONFIG)]
        for index, overlay in enumerate(run.overlays):
            if isinstance(overlay, dict):
                path = workdir / f"overlay{index}.yaml"
                path.write_text(yaml.safe_dump(overlay))
                overlay = path
            command.append(str(overlay))
        processes[name] = subprocess.Popen(
            command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=DRY_RUN_TIMEOUT_S)
        results[name] = (process.returncode, output)
    return results


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    return _launch(DRY_RUNS, tmp_path_factory)


@pytest.fixture(scope="module")
def slow_dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    return _launch(SLOW_DRY_RUNS, tmp_path_factory)


def _job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count} (empty if nothing is to be done)."""
    if "Job stats:" not in output:
        return {}
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    return counts


def _config(*overlays: Path | dict[str, Any]) -> dict[str, Any]:
    config = yaml.safe_load(BASE_CONFIG.read_text())
    for overlay in overlays:
        update_config(
            config, overlay if isinstance(overlay, dict) else yaml.safe_load(overlay.read_text())
        )
    drop_disabled_scenarios(config)
    validate(config, str(SCHEMA))
    return config


def _expected_counts(config: dict[str, Any]) -> dict[str, int]:
    """Job counts derived independently from the config and the methods registry."""
    n_scenarios = len(config["scenarios"])
    pairs = [
        (scenario, method)
        for scenario, spec in config["scenarios"].items()
        for method in config["methods"]
        if skip_reason(method, {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec})
        is None
    ]
    n_seeds = len(config["seeds"])
    counts = {
        "demo_data": 1 if config["data"]["source"] == "demo" else 0,
        "extract": 1,
        "simulate": n_scenarios,
        "train": sum(METHODS[method].trains for _, method in pairs) * n_seeds,
        "evaluate": len(pairs) * n_seeds,
        "tables": n_scenarios,
        "combined_table": 1,
        **_figure_counts(config),
        "all": 1,
    }
    counts = {rule: n for rule, n in counts.items() if n}
    return {**counts, "total": sum(counts.values())}


def _figure_kinds(scenario: str) -> list[str]:
    published = set(published_leaderboards()["scenario"])
    kinds = ["samples", "distributions", "curves", "cost"]
    return [*kinds, "published"] if scenario in published else kinds


def _figure_counts(config: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for scenario in config["scenarios"]:
        for kind in _figure_kinds(scenario):
            counts[f"figure_{kind}"] = counts.get(f"figure_{kind}", 0) + 1
    return counts


@pytest.mark.parametrize("name", ["default", "smoke", "seeds"])
def test_dry_run_job_counts(dry_runs: dict[str, tuple[int, str]], name: str) -> None:
    status, output = dry_runs[name]
    assert status == 0, output
    assert _job_counts(output) == _expected_counts(_config(*DRY_RUNS[name].overlays))


def test_paper_config_lists_the_complete_ssibench_grid(
    dry_runs: dict[str, tuple[int, str]],
) -> None:
    status, output = dry_runs["paper"]
    assert status == 0, output
    config = _config(PAPER_CONFIG, PAPER_DATA)
    assert _job_counts(output) == _expected_counts(config)
    trained = set(re.findall(r"--out-dir results/runs/([\w-]+)/([\w-]+)/seed(\d+)", output))
    published = published_leaderboards()
    for scenario, method in zip(published["scenario"], published["method"], strict=True):
        if METHODS[method].trains:  # every trained row of the paper, with each of the 3 seeds
            assert {(scenario, method, seed) for seed in "012"} <= trained
    assert {scenario for scenario, _, _ in trained} == set(published["scenario"])
    assert "--size 320 320" in output
    assert '"lr_milestones": [20]' in output  # the supervised runs' learning-rate drop
    # paper.yaml evaluates on a GPU, except zero-filled, which runs no network
    evaluations = re.findall(
        r"rule evaluate:\n(?:.*\n)*?\s+wildcards: .*method=([\w-]+).*\n"
        r"\s+resources: .*?gpu=(\d)",
        output,
    )
    assert len(evaluations) == _expected_counts(config)["evaluate"]
    assert all((gpu == "0") == (method == "zero-filled") for method, gpu in evaluations)


def test_skipped_pairs_are_reported_once(dry_runs: dict[str, tuple[int, str]]) -> None:
    config = _config()
    for scenario, spec in config["scenarios"].items():
        full_spec = {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec}
        for method in config["methods"]:
            reason = skip_reason(method, full_spec)
            prefix = f"ssibench: skipping {method} in scenario {scenario}: "
            expected = 0 if reason is None else 1
            assert dry_runs["default"][1].count(f"{prefix}{reason or ''}") == expected


def test_seeds_multiply_runs(dry_runs: dict[str, tuple[int, str]]) -> None:
    counts = _job_counts(dry_runs["seeds"][1])
    config = _config()
    specs = [
        {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec}
        for spec in config["scenarios"].values()
    ]
    trained = sum(skip_reason(m, spec) is None for spec in specs for m in ("mc", "ssdu"))
    assert trained == 2 * len(specs) - 1  # ssdu does not apply to the sequential scenario
    assert counts["train"] == 3 * trained  # 3 seeds
    assert counts["evaluate"] == 3 * (trained + len(specs))  # zero-filled is evaluated too


def test_deleted_figure_is_rebuilt_alone(dry_runs: dict[str, tuple[int, str]]) -> None:
    """A figure depends only on metrics, samples and its code: with those present, only it runs."""
    status, output = dry_runs["figure"]
    assert status == 0, output
    assert _job_counts(output) == {"figure_samples": 1, "total": 1}
    inputs = re.search(r"rule figure_samples:\n\s+input: (.*)\n", output)
    assert inputs is not None, output
    names = inputs[1].split(", ")
    assert all(name.endswith(("metrics.csv", "samples.npz", ".py")) for name in names)
    assert sum(name.endswith("fig_samples.py") for name in names) == 1


def test_edited_report_code_reruns_only_tables_and_figures(
    dry_runs: dict[str, tuple[int, str]],
) -> None:
    """Every output exists but predates the source files: only tables and figures are redone."""
    status, output = dry_runs["code-edit"]
    assert status == 0, output
    counts = _job_counts(output)
    config = _config(FEW_METHODS)
    expected = {**_figure_counts(config), "tables": len(config["scenarios"]), "combined_table": 1}
    assert counts == {**expected, "all": 1, "total": sum(expected.values()) + 1}
    assert "reason: Updated input files:" in output


@pytest.mark.slow
def test_fastmri_source_reads_the_given_folder(slow_dry_runs: dict[str, tuple[int, str]]) -> None:
    status, output = slow_dry_runs["fastmri"]
    assert status == 0, output
    assert _job_counts(output) == _expected_counts(_config(FASTMRI))
    assert "--raw-dir fastmri " in output


@pytest.mark.slow
def test_fastmri_folder_without_volumes_fails(slow_dry_runs: dict[str, tuple[int, str]]) -> None:
    status, output = slow_dry_runs["fastmri-empty"]
    assert status != 0
    assert "data.raw_dir: 'fastmri' holds no .h5 files" in output


@pytest.mark.slow
def test_one_table_needs_only_its_scenario(slow_dry_runs: dict[str, tuple[int, str]]) -> None:
    status, output = slow_dry_runs["one-table"]
    assert status == 0, output
    counts = _job_counts(output)
    assert counts["simulate"] == 1
    assert counts["tables"] == 1
    assert "figures" not in counts
    assert "data/measurements/multicoil.h5" not in output


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_fails_naming_the_key(dry_runs: dict[str, tuple[int, str]], name: str) -> None:
    status, output = dry_runs[f"bad-{name}"]
    assert status != 0
    assert BAD_CONFIGS[name][1] in output


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_BAD_CONFIGS))
def test_more_bad_configs_fail_naming_the_key(
    slow_dry_runs: dict[str, tuple[int, str]], name: str
) -> None:
    status, output = slow_dry_runs[f"bad-{name}"]
    assert status != 0
    assert SLOW_BAD_CONFIGS[name][1] in output
