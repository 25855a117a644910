"""Config ``external_runs``: checkpoints and metrics made elsewhere join the tables, marked.

A tiny ``mc`` run is trained here; its ``model.pt`` copied elsewhere is the external checkpoint and
its ``metrics.csv`` copied elsewhere the external metrics, so both external rows must repeat the
run's numbers under their own labels. Files of another store or split are refused naming the file,
bad entries at DAG time naming the key, and one dry run plans the external jobs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config, validate

from ssibench.cli import main
from ssibench.config import drop_disabled_scenarios
from ssibench.errors import ConfigError
from ssibench.evaluation.evaluate import evaluate
from ssibench.pipeline import check_config, plan_runs
from ssibench.report import RunSamples, build_leaderboard, sample_figure, scenario_markdown
from ssibench.report.fig_distributions import distribution_figure
from ssibench.report.inputs import read_metrics
from ssibench.report.render import EXTERNAL_MARK, EXTERNAL_NOTE
from ssibench.simulate import simulate
from ssibench.training import MODEL, train

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SCENARIO = "sc"
SCENARIO_SPEC = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
MODEL_SPEC = {"num_iter": 1, "scales": 2, "width": 4}
SPEC = {
    "model": MODEL_SPEC,
    "train": {"epochs": 1, "batch_size": 2},
    "method_options": {},
    "scenario": SCENARIO_SPEC,
    "evaluate": {"n_samples": 1},
}
CPU = torch.device("cpu")
LABELS = {"theirs": "MC (their checkpoint)", "paper": "MC (their metrics)"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_slices: Path) -> dict[str, Path]:
    """A store, an ``mc`` run on it, a second store of the same slices, and downloaded copies."""
    root = tmp_path_factory.mktemp("external")
    store = simulate(tiny_slices, root / "store.h5", SCENARIO, SCENARIO_SPEC, seed=0)
    other = simulate(tiny_slices, root / "other.h5", SCENARIO, SCENARIO_SPEC, seed=1)
    run = root / "run"
    train(store, run, "mc", 0, SPEC, CPU)
    evaluate(store, "mc", run, 0, SPEC, CPU, run / "metrics.csv", run / "samples.npz")
    downloads = root / "downloads"
    downloads.mkdir()
    shutil.copy(run / MODEL, downloads / "their_model.pt")
    shutil.copy(run / "metrics.csv", downloads / "their_metrics.csv")
    return {"store": store, "other": other, "run": run, "downloads": downloads}


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    status = main([str(arg) for arg in args])
    return status, capsys.readouterr().err


def _import(capsys, store: Path, metrics: Path, name: str, out: Path) -> tuple[int, str]:
    return _cli(
        capsys,
        *["import-metrics", "--data", store, "--metrics", metrics, "--scenario", SCENARIO],
        *["--name", name, "--label", LABELS.get(name, name), "--out", out],
    )


@pytest.fixture(scope="module")
def external(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two external runs as the workflow makes them: evaluate --ckpt, then import-metrics."""
    folder = tmp_path_factory.mktemp("runs")
    ckpt = folder / "theirs"
    status = main(
        [
            *["evaluate", "--device", "cpu", "--data", str(trained["store"])],
            *["--ckpt", str(trained["downloads"] / "their_model.pt")],
            *["--spec", '{"evaluate": {"n_samples": 1}}'],
            *["--out-metrics", str(ckpt / "checkpoint_metrics.csv")],
            *["--out-samples", str(ckpt / "samples.npz")],
        ]
    )
    assert status == 0
    sources = {
        "theirs": ckpt / "checkpoint_metrics.csv",
        "paper": trained["downloads"] / "their_metrics.csv",
    }
    outputs = {}
    for name, source in sources.items():
        outputs[name] = folder / name / "metrics.csv"
        cli_args = ["import-metrics", "--data", str(trained["store"]), "--metrics", str(source)]
        cli_args += ["--scenario", SCENARIO, "--name", name, "--label", LABELS[name]]
        assert main([*cli_args, "--out", str(outputs[name])]) == 0
    return {**outputs, "samples": ckpt / "samples.npz"}


# ---------------------------------------------------------------- tables and figures


def test_external_runs_join_the_leaderboard_with_their_labels_and_numbers(
    trained, external, capsys, tmp_path
):
    files = [trained["run"] / "metrics.csv", external["theirs"], external["paper"]]
    tables = {ext: tmp_path / f"leaderboard.{ext}" for ext in ("csv", "md", "tex")}
    status, err = _cli(
        capsys,
        *["tables", "--data", trained["store"], "--metrics", *files, "--scenario", SCENARIO],
        *[arg for ext, path in tables.items() for arg in (f"--out-{ext}", path)],
    )
    assert status == 0, err
    assert "‡" not in err  # an external run's code is not compared with the installed one
    table = pd.read_csv(tables["csv"]).set_index("method")
    assert list(table.columns[:4]) == ["scenario", "label", "supervised", "trains"]
    assert table.columns[4] == "external"
    assert table["external"].to_dict() == {"mc": False, "theirs": True, "paper": True}
    assert table.loc["theirs", "label"] == LABELS["theirs"]
    assert table.loc["paper", "label"] == LABELS["paper"]
    for name in ("theirs", "paper"):  # the same model, the same slices: the same numbers
        assert not table.loc[name, "supervised"]
        assert table.loc[name, "trains"]
        for column in ("psnr_mean", "psnr_std", "ssim_mean", "nmse_mean", "n_slices"):
            assert table.loc[name, column] == table.loc["mc", column], (name, column)
        assert np.isnan(table.loc[name, "psnr_published"])
    markdown = tables["md"].read_text()
    for label in LABELS.values():
        assert f"| {label}{EXTERNAL_MARK} |" in markdown or f"| **{label}{EXTERNAL_MARK}** |" in (
            markdown
        )
    assert "| MC |" in markdown or "| **MC** |" in markdown  # the registered method is not marked
    assert EXTERNAL_NOTE in markdown
    latex = tables["tex"].read_text()
    assert r"MC (their checkpoint)$^\S$" in latex
    assert r"external run (config external\_runs): made outside this workflow" in latex

    # beside a scenario without external runs (no `external` column)
    other = tmp_path / "other.csv"
    plain = table.loc[["mc"]].drop(columns="external").assign(scenario="other")
    plain.reset_index().to_csv(other, index=False)
    combined = {ext: tmp_path / f"all.{ext}" for ext in ("csv", "md", "tex")}
    status, err = _cli(
        capsys,
        *["combined-table", "--tables", other, tables["csv"]],
        *[arg for ext, path in combined.items() for arg in (f"--out-{ext}", path)],
    )
    assert status == 0, err
    combined_md = combined["md"].read_text()
    assert f"| {LABELS['paper']}{EXTERNAL_MARK} | – |" in combined_md
    assert "| MC | **" in combined_md  # the best in both scenarios, not marked
    assert EXTERNAL_NOTE in combined_md
    assert r"MC (their metrics)$^\S$" in combined["tex"].read_text()


def test_without_external_runs_the_tables_are_as_before(trained):
    (frame,) = read_metrics([trained["run"] / "metrics.csv"], SCENARIO, trained["store"])
    table = build_leaderboard(frame, SCENARIO)
    assert "external" not in table.columns
    markdown = scenario_markdown(table, SCENARIO)
    assert EXTERNAL_MARK not in markdown
    assert "external" not in markdown


def test_figures_show_external_runs_under_their_labels(trained, external):
    files = [trained["run"] / "metrics.csv", external["theirs"], external["paper"]]
    frames = read_metrics(files, SCENARIO, trained["store"])
    metrics = pd.concat(frames, ignore_index=True)
    figure = distribution_figure(metrics, SCENARIO)
    ticks = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert sorted(ticks) == sorted(["MC", *(f"{label} (external)" for label in LABELS.values())])

    runs = []
    for path, name in ((trained["run"] / "samples.npz", "mc"), (external["samples"], "theirs")):
        with np.load(path) as saved:
            keys = ("indices", "target", "recon", "zero_filled")
            runs.append(RunSamples(name, 0, *(saved[key] for key in keys)))
    with_images = pd.concat(frames[:2], ignore_index=True)  # metrics-only runs have no images
    figure = sample_figure(runs, with_images, SCENARIO, sample_index=0)
    titles = {ax.get_label(): ax.get_title() for ax in figure.axes if ax.get_title()}
    assert titles["image:theirs"] == f"{LABELS['theirs']} (external)"
    assert titles["image:mc"] == "MC"


# ---------------------------------------------------------------- refused files


def test_metrics_of_another_store_or_split_are_refused_naming_the_file(trained, capsys, tmp_path):
    theirs = trained["downloads"] / "their_metrics.csv"
    status, err = _import(capsys, trained["other"], theirs, "paper", tmp_path / "a.csv")
    assert status == 2
    assert f"{theirs}: evaluated on another measurement store" in err
    assert "compute it again on the test split of" in err
    assert "--force" not in err  # the workflow cannot rebuild a file made elsewhere

    partial = tmp_path / "partial.csv"
    frame = pd.read_csv(theirs)
    frame[frame["sample"] != 0].to_csv(partial, index=False)
    status, err = _import(capsys, trained["store"], partial, "paper", tmp_path / "b.csv")
    assert status == 2
    assert f"{partial}: covers 1 of the 2 test slices" in err
    assert "missing slice(s) 0" in err

    extra = tmp_path / "extra.csv"
    beyond = frame[frame["sample"] == 0].assign(sample=7)
    pd.concat([frame, beyond]).to_csv(extra, index=False)
    status, err = _import(capsys, trained["store"], extra, "paper", tmp_path / "c.csv")
    assert status == 2
    assert f"{extra}: metric mode 'ssibench' has slice(s) 7 beyond the test split" in err

    mixed = tmp_path / "mixed.csv"
    frame.assign(method=np.where(frame["sample"] == 0, "ei", "mc")).to_csv(mixed, index=False)
    status, err = _import(capsys, trained["store"], mixed, "paper", tmp_path / "d.csv")
    assert status == 2
    assert f"{mixed}: rows of methods ei, mc" in err
    assert not any((tmp_path / name).exists() for name in ("a.csv", "b.csv", "c.csv", "d.csv"))


# ---------------------------------------------------------------- config checks at DAG time


def _config(**overlay: object) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    drop_disabled_scenarios(config)
    validate(config, str(SCHEMA))
    return config


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "model.pt").touch()
    (tmp_path / "metrics.csv").touch()
    return {"ckpt": str(tmp_path / "model.pt"), "metrics": str(tmp_path / "metrics.csv")}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"scenario": "noisey", "checkpoint": "ckpt"},
            "external_runs.x.scenario: unknown scenario 'noisey' (did you mean 'noisy'?)",
        ),
        ({"scenario": "noisy"}, "external_runs.x: give exactly one of `checkpoint`"),
        (
            {"scenario": "noisy", "checkpoint": "ckpt", "metrics": "metrics"},
            "got checkpoint and metrics",
        ),
        ({"scenario": "noisy", "checkpoint": "/no/such.pt"}, "checkpoint: no such file"),
        (
            {"scenario": "noisy", "metrics": "metrics", "method": "mc"},
            "external_runs.x: `method` and `model_spec` describe a checkpoint",
        ),
        (
            {"scenario": "noisy", "checkpoint": "ckpt", "method": "mc"},
            "external_runs.x: a plain state_dict needs both `method` and `model_spec`",
        ),
        (
            {"scenario": "noisy", "checkpoint": "ckpt", "method": "zero-filled", "model_spec": {}},
            "a plain state_dict needs both",
        ),
        (
            {
                "scenario": "noisy",
                "checkpoint": "ckpt",
                "method": "zero-filled",
                "model_spec": {"width": 4},
            },
            "external_runs.x.method: 'zero-filled' is not a method with a network",
        ),
        (
            {"scenario": "noisy", "checkpoint": "ckpt", "method": "mc", "model_spec": {"wdth": 4}},
            "external_runs.x.model_spec: model: unknown key(s) wdth",
        ),
    ],
)
def test_bad_external_runs_are_refused_naming_the_key(files, entry, message):
    entry = {
        "label": "X",
        **{k: files.get(v, v) if isinstance(v, str) else v for k, v in entry.items()},
    }
    with pytest.raises(ConfigError) as raised:
        check_config(_config(external_runs={"x": entry}))
    assert message in str(raised.value)
    assert "fix it in the config file" in str(raised.value)


def test_an_external_run_may_not_take_a_methods_name(files):
    entry = {"scenario": "noisy", "label": "X", "checkpoint": files["ckpt"]}
    with pytest.raises(ConfigError, match=r"external_runs.mc: 'mc' is a method's name; rename"):
        check_config(_config(external_runs={"mc": entry}))


def test_the_plan_adds_external_files_after_the_scenarios_runs(files):
    config = _config(
        methods=["zero-filled", "mc"],
        metrics=["psnr", "ssim", "nmse"],
        external_runs={
            "theirs": {"scenario": "noisy", "label": "T", "checkpoint": files["ckpt"]},
            "sd": {
                "scenario": "noisy",
                "label": "S",
                "checkpoint": files["ckpt"],
                "method": "mc",
                "model_spec": MODEL_SPEC,
            },
            "paper": {"scenario": "noisy", "label": "P", "metrics": files["metrics"]},
        },
    )
    check_config(config)
    plan = plan_runs(config)
    folder = "results/demo-40x40/runs/noisy"
    own = [f"{folder}/zero-filled/seed0", f"{folder}/mc/seed0"]
    externals = [f"{folder}/external/{name}" for name in ("theirs", "sd", "paper")]
    assert plan.scenario_files("noisy", "metrics.csv") == [
        f"{path}/metrics.csv" for path in own + externals
    ]
    assert plan.scenario_files("noisy", "samples.npz") == [
        f"{path}/samples.npz" for path in own + externals[:2]
    ]
    assert plan.sample_metrics("noisy") == [f"{path}/metrics.csv" for path in own + externals[:2]]
    assert plan.scenario_files("single-coil", "metrics.csv") == [
        f"results/demo-40x40/runs/single-coil/{m}/seed0/metrics.csv" for m in ("zero-filled", "mc")
    ]
    assert plan.external_source("paper") == files["metrics"]
    assert plan.external_source("theirs") == f"{externals[0]}/checkpoint_metrics.csv"
    assert plan.external_state_dict_options("theirs") == ""
    assert shlex.split(plan.external_state_dict_options("sd")) == [
        "--method",
        "mc",
        "--model-spec",
        '{"num_iter": 1, "scales": 2, "width": 4}',
    ]
    # the config's own evaluation settings, the final step included: comparable with its runs
    assert plan.external_evaluate_spec("theirs") == (
        '{"evaluate": {"final_dc": "noiseless", "n_samples": 5}}'
    )


def test_the_plans_state_dict_options_evaluate_a_plain_state_dict(trained, tmp_path, capsys):
    plain = tmp_path / "plain.pt"
    torch.save(torch.load(trained["run"] / MODEL, weights_only=True)["model"], plain)
    entry = {
        "scenario": "noisy",
        "label": "S",
        "checkpoint": str(plain),
        "method": "mc",
        "model_spec": MODEL_SPEC,
    }
    plan = plan_runs(_config(external_runs={"sd": entry}))
    options = shlex.split(plan.external_state_dict_options("sd"))
    status, err = _cli(
        capsys,
        *["evaluate", "--device", "cpu", "--data", trained["store"], "--ckpt", plain, *options],
        *["--spec", '{"evaluate": {"n_samples": 1}}', "--out-metrics", tmp_path / "m.csv"],
        *["--out-samples", tmp_path / "s.npz"],
    )
    assert status == 0, err
    ours = pd.read_csv(tmp_path / "m.csv").drop(columns="code_hash")
    pd.testing.assert_frame_equal(
        ours, pd.read_csv(trained["run"] / "metrics.csv").drop(columns="code_hash")
    )


# ---------------------------------------------------------------- the DAG


def test_a_dry_run_plans_the_external_jobs(tmp_path):
    (tmp_path / "their_model.pt").touch()
    (tmp_path / "their_metrics.csv").touch()
    overlay = {
        "methods": ["zero-filled", "mc"],
        "external_runs": {
            "theirs": {"scenario": "noisy", "label": "T", "checkpoint": "their_model.pt"},
            "paper": {"scenario": "noisy", "label": "P (paper)", "metrics": "their_metrics.csv"},
        },
    }
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1"]
    command += ["-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--workflow-profile", "none"]
    command += ["--configfile", str(ROOT / "config" / "config.yaml"), "overlay.yaml"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    folder = "results/demo-40x40/runs/noisy/external"
    assert (
        "ssibench evaluate --data data/measurements/demo-40x40/noisy.h5 --ckpt their_model.pt"
        in output
    )
    assert f"--out-metrics {folder}/theirs/checkpoint_metrics.csv" in output
    assert (
        f"ssibench import-metrics --data data/measurements/demo-40x40/noisy.h5 --metrics "
        f"their_metrics.csv --scenario noisy --name paper --label 'P (paper)' --out "
        f"{folder}/paper/metrics.csv"
    ) in output
    assert f"--metrics {folder}/theirs/checkpoint_metrics.csv --scenario noisy --name theirs" in (
        output
    )
    tables = next(
        line for line in output.splitlines() if "ssibench tables" in line and "noisy" in line
    )
    assert f"{folder}/theirs/metrics.csv {folder}/paper/metrics.csv --records" in tables
    samples = next(
        line for line in output.splitlines() if "figures samples" in line and "noisy" in line
    )
    assert f"{folder}/paper" not in samples  # no images of a metrics-only run
    assert f"{folder}/theirs/samples.npz" in samples
    curves = next(
        line for line in output.splitlines() if "figures curves" in line and "noisy" in line
    )
    assert "external" not in curves
