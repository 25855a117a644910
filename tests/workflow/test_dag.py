"""Dry runs of the workflow: job counts per config, targeted re-runs, and config errors at DAG time.

Each dry run starts Snakemake (and imports torch) in a subprocess, so all of them are launched
together once per module and the tests check their results.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
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
from ssibench.pipeline import plan_runs
from ssibench.pipeline.report_code import report_files, report_modules
from ssibench.report.published import published_leaderboards

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"
BASE_CONFIG = ROOT / "config" / "config.yaml"
SMOKE_CONFIG = ROOT / "config" / "smoke.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SIMULATE_KEYS = ("mask", "acceleration", "center_fraction")
DRY_RUN_TIMEOUT_S = 300
#: The data set folder of the default config (data.name and image_size) in every path.
DATASET = "demo-40x40"
RESULTS = f"results/{DATASET}"
FIGURE = f"{RESULTS}/figures/samples_noisy.png"
#: Output time stamps lie in the future, after every source file (train and evaluate jobs
#: depend on the package's source): an existing output is then up to date.
FUTURE = int(time.time()) + 10**5
FEW_METHODS = {"methods": ["zero-filled", "mc", "ssdu"]}


@dataclass(frozen=True)
class DryRun:
    """One ``snakemake -n`` call: overlays on config.yaml, targets, and a set-up of its workdir."""

    overlays: tuple[Path | dict[str, Any], ...] = ()
    targets: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None


def _touch_upstream(workdir: Path) -> None:
    """Create every file the noisy figure depends on (FEW_METHODS, seed 0), older files first."""
    (workdir / f"data/raw/{DATASET}").mkdir(parents=True)
    paths = [f"data/raw/{DATASET}/demo_000.h5", f"data/raw/{DATASET}", f"data/slices/{DATASET}.h5"]
    paths.append(f"data/measurements/{DATASET}/noisy.h5")
    for method in FEW_METHODS["methods"]:
        run = f"{RESULTS}/runs/noisy/{method}/seed0"
        paths += [f"{run}/{name}" for name in ("model.pt", "train_log.csv", "run.json")]
        paths += [f"{run}/{name}" for name in ("metrics.csv", "samples.npz")]
    for index, name in enumerate(paths):
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            path.touch()
        stamp = FUTURE + index
        os.utime(path, (stamp, stamp))


def _every_output_of_few_methods(workdir: Path) -> None:
    """Create every file of a finished FEW_METHODS run, dated after every source file."""
    config = _config(FEW_METHODS)
    paths = [f"data/raw/{DATASET}/demo_000.h5", f"data/slices/{DATASET}.h5"]
    for scenario, spec in config["scenarios"].items():
        paths.append(f"data/measurements/{DATASET}/{scenario}.h5")
        full_spec = {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec}
        for method in config["methods"]:
            if skip_reason(method, full_spec) is not None:
                continue
            run = f"{RESULTS}/runs/{scenario}/{method}/seed0"
            names = ["metrics.csv", "samples.npz", "benchmark_evaluate.tsv"]
            if METHODS[method].trains:
                names = ["model.pt", "train_log.csv", "run.json", "benchmark.tsv", *names]
            paths += [f"{run}/{name}" for name in names]
        paths += [f"{RESULTS}/tables/leaderboard_{scenario}.{ext}" for ext in ("csv", "md", "tex")]
        paths += [
            f"{RESULTS}/figures/{kind}_{scenario}.{ext}"
            for kind in _figure_kinds(scenario)
            for ext in ("pdf", "png")
        ]
    paths += [f"{RESULTS}/tables/leaderboard_all.{ext}" for ext in ("csv", "md", "tex")]
    for index, name in enumerate(paths):
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        stamp = FUTURE + index
        os.utime(path, (stamp, stamp))
    os.utime(workdir / f"data/raw/{DATASET}", (FUTURE - 1, FUTURE - 1))  # the oldest input


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


#: Volumes of the paper dry run: the paper's 0.8/0.0/0.2 split leaves no test image below 5.
PAPER_VOLUMES = 5


def _small_fastmri_files(workdir: Path) -> None:
    """Five tiny fastMRI-format multicoil volumes (the real files are not downloadable here)."""
    write_demo_volumes(workdir / "fastmri", PAPER_VOLUMES, 2, 16, 16, 4, seed=0)


#: Dry runs of the default suite, by name.
DRY_RUNS = {
    "default": DryRun(),
    "smoke": DryRun(overlays=(SMOKE_CONFIG,)),
    "seeds": DryRun(overlays=({"seeds": [0, 1, 2], **FEW_METHODS},)),
    "figure": DryRun(overlays=(FEW_METHODS,), targets=(FIGURE,), setup=_touch_upstream),
    "up-to-date": DryRun(overlays=(FEW_METHODS,), setup=_every_output_of_few_methods),
    # the hints of the error messages (ssibench.errors.rebuild_hint) redo the file they name
    "force-store": DryRun(
        overlays=(FEW_METHODS,),
        targets=("--force", f"data/measurements/{DATASET}/noisy.h5"),
        setup=_every_output_of_few_methods,
    ),
    "force-metrics": DryRun(
        overlays=(FEW_METHODS,),
        targets=("--force", f"{RESULTS}/runs/noisy/ssdu/seed0/metrics.csv"),
        setup=_every_output_of_few_methods,
    ),
    "force-model": DryRun(
        overlays=(FEW_METHODS,),
        targets=("--force", f"{RESULTS}/runs/noisy/ssdu/seed0/model.pt"),
        setup=_every_output_of_few_methods,
    ),
    "paper": DryRun(overlays=(PAPER_CONFIG, PAPER_DATA), setup=_small_fastmri_files),
}
#: More dry runs, deselected by default (pytest -m slow).
SLOW_DRY_RUNS = {
    "one-table": DryRun(targets=(f"{RESULTS}/tables/leaderboard_noisy.md",)),
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
    # observed: these passed config checking and failed inside the jobs, naming no key
    "option-value": (
        {"method_options": {"ssdu": {"split_ratio": 1.5}}},
        "method_options.ssdu.split_ratio: 1.5 is not allowed; expected a number in (0, 1)",
    ),
    "option-type": (
        {"method_options": {"ssdu": {"split_ratio": "half"}}},
        "method_options.ssdu.split_ratio: 'half' is not allowed",
    ),
    "nan": ({"train": {"lr": float("nan")}}, "train.lr: nan is not a finite number"),
    "empty-test": (
        {"data": {"demo": {"n_volumes": 3}}},
        "data.split: fractions [0.7, 0.1, 0.2] of N = 3 images give train 3, val 0, test 0",
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
    if config["data"]["source"] not in ("demo", "fastmri"):  # no raw k-space to read
        scenarios = {
            name: spec
            for name, spec in config["scenarios"].items()
            if spec["physics"] != "raw-multicoil"
        }
        config = {**config, "scenarios": scenarios}
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
    trained = set(re.findall(r"--out-dir results/[\w-]+/runs/([\w-]+)/([\w-]+)/seed(\d+)", output))
    published = published_leaderboards()
    for scenario, method in zip(published["scenario"], published["method"], strict=True):
        if METHODS[method].trains:  # every trained row of the paper, with each of the 3 seeds
            assert {(scenario, method, seed) for seed in "012"} <= trained
    # the paper's four scenarios, and the later experiments' acquired-k-space one (no leaderboard)
    assert {scenario for scenario, _, _ in trained} == {*published["scenario"], "raw-multicoil"}
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


def _skipped_pairs(config: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(scenario, method) → reason of every skipped pair, from the methods registry."""
    skipped = {}
    for scenario, spec in config["scenarios"].items():
        full_spec = {**{k: config["simulate"][k] for k in SIMULATE_KEYS}, **spec}
        for method in config["methods"]:
            reason = skip_reason(method, full_spec)
            if reason is not None:
                skipped[scenario, method] = reason
    return skipped


def _summarised_pairs(output: str, total: int) -> dict[tuple[str, str], str]:
    """(scenario, method) → reason as the skipped-pairs block of ``output`` lists them."""
    header = f"ssibench: {total} (scenario, method) pairs skipped"
    assert output.count(header) == 1, output
    lines = output.split(header, 1)[1].splitlines()[1:]
    found = {}
    end = next((i for i, line in enumerate(lines) if not line.startswith("  ")), len(lines))
    for line in lines[:end]:
        # the reason may hold ": " itself ("physics: sequential"): the last one ends it
        match = re.fullmatch(r"  (.+): ([\w, -]+) in ([\w, -]+)", line)
        assert match, line
        for scenario in match[3].split(", "):
            found.update({(scenario, method): match[1] for method in match[2].split(", ")})
    return found


def test_skipped_summary_groups_pairs_by_reason() -> None:
    config = _config()
    skipped = _skipped_pairs(config)
    summary = plan_runs(config).skipped_summary()
    assert len(summary.splitlines()) == 1 + len(set(skipped.values()))  # default: one per reason
    assert _summarised_pairs(summary, len(skipped)) == skipped
    assert plan_runs(_config({"methods": ["zero-filled", "mc"]})).skipped_summary() == ""


def test_skipped_pairs_are_reported_once(dry_runs: dict[str, tuple[int, str]]) -> None:
    output = dry_runs["default"][1]
    skipped = _skipped_pairs(_config())
    assert _summarised_pairs(output, len(skipped)) == skipped
    assert "ssibench: skipping" not in output  # the old line per pair


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
    assert all(name.endswith(("metrics.csv", "samples.npz", ".h5", ".py")) for name in names)
    assert sum(name.endswith("fig_samples.py") for name in names) == 1


def test_finished_run_is_up_to_date(dry_runs: dict[str, tuple[int, str]]) -> None:
    status, output = dry_runs["up-to-date"]
    assert status == 0, output
    assert _job_counts(output) == {}, output


@pytest.mark.parametrize(
    ("name", "rule"),
    [("force-store", "simulate"), ("force-metrics", "evaluate"), ("force-model", "train")],
)
def test_rebuild_hint_redoes_the_named_file(
    dry_runs: dict[str, tuple[int, str]], name: str, rule: str
) -> None:
    """`snakemake --force <path>` (the hint of every bad-file error) reruns the file's job, which a
    plain `snakemake <path>` would not (the file exists: "Nothing to be done")."""
    status, output = dry_runs[name]
    assert status == 0, output
    assert _job_counts(output) == {rule: 1, "total": 1}, output


def _dry_run_after_editing(
    sources: list[Path], factory: pytest.TempPathFactory, name: str
) -> tuple[int, str]:
    """Dry run of a finished FEW_METHODS workdir after `sources` were edited (made newest).

    The files' time stamps are restored afterwards, so the checkout is left as it was.
    """
    stamps = {path: path.stat() for path in sources}
    try:
        for path in sources:
            os.utime(path, (FUTURE + 10**6, FUTURE + 10**6))
        run = DryRun(overlays=(FEW_METHODS,), setup=_every_output_of_few_methods)
        return _launch({name: run}, factory)[name]
    finally:
        for path, stat in stamps.items():
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _wildcard_methods(output: str, rule: str) -> set[str]:
    return set(re.findall(rf"rule {rule}:\n(?:.*\n)*?\s+wildcards: .*method=([\w-]+)", output))


def _assert_only_tables_and_figures_rerun(status: int, output: str) -> None:
    """The dry run redoes every table and figure of FEW_METHODS, and nothing upstream."""
    assert status == 0, output
    counts = _job_counts(output)
    config = _config(FEW_METHODS)
    expected = {**_figure_counts(config), "tables": len(config["scenarios"]), "combined_table": 1}
    assert counts == {**expected, "all": 1, "total": sum(expected.values()) + 1}


def test_edited_report_code_reruns_only_tables_and_figures(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Editing the report modules redoes tables and figures, nothing upstream."""
    report = Path(importlib.util.find_spec("ssibench.report").origin).parent
    status, output = _dry_run_after_editing(sorted(report.glob("*.py")), tmp_path_factory, "r")
    _assert_only_tables_and_figures_rerun(status, output)
    assert "reason: Updated input files:" in output


def test_edited_table_checks_rerun_the_tables_and_figures_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Editing the checks of the metrics files (report/inputs.py) redoes what reads them."""
    inputs = Path(importlib.util.find_spec("ssibench.report.inputs").origin)
    status, output = _dry_run_after_editing([inputs], tmp_path_factory, "inputs")
    _assert_only_tables_and_figures_rerun(status, output)


def test_the_code_of_a_report_rule_is_what_its_command_imports() -> None:
    tables = report_modules("tables")
    assert {"inputs", "checks", "leaderboard", "render"} <= set(tables)
    assert not any(name.startswith("fig_") for name in tables)
    samples = {Path(path).stem for path in report_files("figures", "samples")}
    assert {"fig_samples", "style", "inputs", "checks"} <= samples
    assert not samples & {"fig_cost", "fig_curves", "fig_distributions", "fig_published"}


def test_edited_loss_reruns_exactly_the_runs_that_use_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Editing the splitting loss retrains and re-evaluates SSDU only, not MC or zero-filled."""
    loss = Path(importlib.util.find_spec("ssibench.losses.splitting").origin)
    status, output = _dry_run_after_editing([loss], tmp_path_factory, "loss")
    assert status == 0, output
    counts = _job_counts(output)
    n_ssdu = 5  # every scenario but sequential
    assert counts["train"] == counts["evaluate"] == n_ssdu, counts
    assert _wildcard_methods(output, "train") == _wildcard_methods(output, "evaluate") == {"ssdu"}
    assert "simulate" not in counts


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
    assert f"data/measurements/{DATASET}/multicoil.h5" not in output


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
