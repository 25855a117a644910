# Shared wiring: the config checks, the run plan and the resources come from ssibench.pipeline
# (tested Python); this file only adapts them to Snakemake: wildcard constraints, input and
# params functions, report() entries. Rule files only declare.

import functools
import json
import re
import sys
from pathlib import Path

from ssibench.methods import METHODS
from ssibench.pipeline import (
    apply_plugins,
    check_config,
    drop_scenarios_without_kspace,
    figure_entry,
    job_resources,
    plan_runs,
    report_files,
    rule_resource,
    ssibench_command,
    table_entry,
    zoom_option,
)

apply_plugins(config)  # before the checks: plugins add methods, models, metrics, ...
# e.g. raw-multicoil on your own images: left out, with a note
for _note in drop_scenarios_without_kspace(config):
    print(_note, file=sys.stderr)
check_config(config)
PLAN = plan_runs(config)
#: `ssibench`, with `--plugin <module>` per plugin: how every rule calls the package.
SSIBENCH = ssibench_command(config)
# One block per call, grouped by reason (not a line per pair): every dry run prints it too.
_SKIPPED = PLAN.skipped_summary()
if _SKIPPED:
    print(_SKIPPED, file=sys.stderr)

DATA = config["data"]
#: What the data source needs, makes and is read as (ssibench.config.sources).
SOURCE = PLAN.source
SCENARIOS = config["scenarios"]
#: The data set's folder in every path (`<data.name>-<H>x<W>`) and its results folder.
DATASET = PLAN.dataset
RESULTS = PLAN.results


def _alternatives(names):
    """A regex matching exactly one of `names` (none: matches nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


#: Scenarios simulated from the slices store (or its raw volumes), and the training-only ones
#: read from their own folder of measured k-space: two rules make their stores.
SIMULATED_SCENARIOS = _alternatives(PLAN.evaluated_scenarios())
TRAINING_ONLY_SCENARIOS = _alternatives(PLAN.training_only_scenarios())


wildcard_constraints:
    dataset=re.escape(DATASET),
    scenario=_alternatives(SCENARIOS),
    method=_alternatives(config["methods"]),
    seed=r"\d+",


# ---------------------------------------------------------------- paths and targets
slices_path = PLAN.slices_path
raw_dir = PLAN.raw_dir  # built by demo_data or dataset, or the user's (data.raw_dir)
measurements_path = PLAN.measurements_path
run_path = PLAN.run_path
external_path = PLAN.external_path
all_targets = PLAN.all_targets
evaluated_scenarios = PLAN.evaluated_scenarios
dataset_code = PLAN.dataset_code


#: `--zoom ROW COL SIZE` of the sample figures (config report.zoom), or nothing.
ZOOM_OPTION = zoom_option(config)


def figure_report(kind):
    """The PNG output of figure rule `kind`, flagged for `snakemake --report`."""
    path, keywords = figure_entry(RESULTS, kind)
    return report(path, **keywords)


def table_report(table, extension):
    """Output `table` (`{scenario}` or `all`) of a leaderboard rule, flagged for the report."""
    path, keywords = table_entry(RESULTS, table, extension)
    return report(path, **keywords)


# ---------------------------------------------------------------- resources (ssibench.pipeline)


#: res(rule, key) from config.resources; resources_of(rule): its resources sized from the config
res = functools.partial(rule_resource, config)
resources_of = functools.partial(job_resources, config)


# ---------------------------------------------------------------- input functions


def _of_scenario(plan_method):
    """An input or params function: `plan_method` of the job's scenario."""
    return lambda wildcards: plan_method(wildcards.scenario)


def _of_external(plan_method):
    """An input or params function: `plan_method` of the job's external run."""
    return lambda wildcards: plan_method(wildcards.name)


def run_code(wildcards):
    """Source files a run depends on (ssibench.provenance): its method's, and a plugin model's or
    physics' it uses; editing one of them reruns exactly the runs that use it."""
    return PLAN.run_code(wildcards.scenario, wildcards.method)


def evaluate_input(wildcards):
    """The measurements and the run's code, plus the trained model for methods that train."""
    inputs = {
        "data": measurements_path(wildcards.scenario),
        "code": PLAN.evaluate_code(wildcards.scenario, wildcards.method),
    }
    if METHODS[wildcards.method].trains:
        inputs["model"] = run_path(
            wildcards.scenario, wildcards.method, wildcards.seed, "model.pt"
        )
    return inputs


def scenario_store(wildcards):
    """The scenario's measurement store: tables and figures check the runs' coverage against it."""
    return measurements_path(wildcards.scenario)


def scenario_metrics(wildcards):
    """metrics.csv of every run of the scenario, its external runs included."""
    return PLAN.scenario_files(wildcards.scenario, "metrics.csv")


def scenario_samples(wildcards):
    """samples.npz of every run of the scenario with images (same order as sample_metrics)."""
    return PLAN.scenario_files(wildcards.scenario, "samples.npz")


#: metrics.csv of every run with a samples.npz: all but external runs given as metrics
sample_metrics = _of_scenario(PLAN.sample_metrics)


# ---------------------------------------------------------------- external runs


def external_names_regex(kind=None):
    """The external run names (given by `kind`, if any); none: the rules never claim a path."""
    names = [name for s in SCENARIOS for name in PLAN.external_names(s, kind)]
    return _alternatives(names)


def external_checkpoint_input(wildcards):
    """The scenario's measurements and the external run's checkpoint file."""
    return {
        "data": measurements_path(wildcards.scenario),
        "checkpoint": config["external_runs"][wildcards.name]["checkpoint"],
    }


def external_import_input(wildcards):
    """The measurements, the metrics.csv to import (the config's or the checkpoint's evaluation)
    and the checks it must pass."""
    return {
        "data": measurements_path(wildcards.scenario),
        "metrics": PLAN.external_source(wildcards.name),
        "code": report_files("import-metrics"),
    }


def trained_run_files(wildcards, name):
    """File `name` (train_log.csv, run.json, benchmark.tsv) of every training run of the scenario."""
    return PLAN.trained_files(wildcards.scenario, name)


def trained_run_names(wildcards):
    """`method:seed` of every training run of the scenario (same order as trained_run_files)."""
    return PLAN.trained_names(wildcards.scenario)


# ---------------------------------------------------------------- params functions
# Each job gets only the config slice it uses, so that an edit re-runs exactly the affected jobs.


simulate_spec = _of_scenario(PLAN.simulate_spec)
simulate_inputs = _of_scenario(PLAN.simulate_inputs)
simulate_raw_option = _of_scenario(PLAN.simulate_raw_option)
#: the folder of k-space undersampled at acquisition of a training-only scenario
measured_kspace_input = _of_scenario(PLAN.kspace_dir)


def train_spec(wildcards):
    return PLAN.train_spec(wildcards.scenario, wildcards.method)


def evaluate_spec(wildcards):
    return PLAN.evaluate_spec(wildcards.scenario, wildcards.method)


external_evaluate_spec = _of_external(PLAN.external_evaluate_spec)
#: `--method M [--model-spec JSON]` of a state_dict or DeepInverse checkpoint, shell-quoted
external_state_dict_options = _of_external(PLAN.external_state_dict_options)
#: `--transfer` for an external model scored on another scenario's data; else empty
external_transfer_option = _of_external(PLAN.external_transfer_option)


def external_label(wildcards):
    return config["external_runs"][wildcards.name]["label"]


#: `method: reason` for each method skipped in the scenario (shown under its leaderboard)
skipped_notes = _of_scenario(PLAN.skipped_notes)
