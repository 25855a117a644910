"""The run plan: valid (scenario, method, seed) runs, every path, the targets and the job specs.

A method runs in every scenario it applies to (:func:`ssibench.methods.skip_reason`); the others
are recorded with their reason. Paths carry the data set's folder ``<name>-<H>x<W>``
(:func:`dataset_name`), so two data sets or two image sizes never overwrite each other. Each job
is given only the config slice it uses (:meth:`RunPlan.train_spec` and friends, sorted JSON), so
Snakemake's params trigger reruns exactly the jobs a config edit affects.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.config.records import without_logging
from ssibench.config.sources import SourceKind, source_kind
from ssibench.errors import ConfigError
from ssibench.evaluation.metrics import DEFAULT_METRICS
from ssibench.methods import METHODS, skip_reason
from ssibench.pipeline.checks import scenario_spec, train_config
from ssibench.provenance import code_files, component_modules, plugin_files
from ssibench.report.published import published_leaderboards

__all__ = ["FIGURES", "Run", "RunPlan", "dataset_name", "plan_runs"]

#: Figure kinds and their subcategory in the report; kind k is made by rule ``figure_<k>``.
FIGURES = {
    "samples": "Sample reconstructions",
    "distributions": "Per-slice distributions",
    "curves": "Training curves",
    "published": "Ours against the paper",
    "cost": "Cost",
}
#: Formats of every table.
TABLE_FORMATS = ("csv", "md", "tex")
#: Formats of every figure.
FIGURE_FORMATS = ("pdf", "png")

#: (scenario, method, seed) of one run.
Run = tuple[str, str, int]


def dataset_name(config: Mapping[str, Any]) -> str:
    """The data set's folder in every path: ``<data.name>-<H>x<W>``."""
    data = config["data"]
    return f"{data['name']}-{data['image_size'][0]}x{data['image_size'][1]}"


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class RunPlan:
    """The runs of a config, and the paths and specs of their jobs.

    Attributes:
        config: the validated workflow config.
        runs: every valid (scenario, method, seed), in config order.
        skipped: scenario → (method, reason) of the configured methods that do not apply.
    """

    config: Mapping[str, Any]
    runs: tuple[Run, ...]
    skipped: Mapping[str, tuple[tuple[str, str], ...]]

    # ------------------------------------------------------------ paths

    @property
    def dataset(self) -> str:
        """The data set's folder name (:func:`dataset_name`)."""
        return dataset_name(self.config)

    @property
    def results(self) -> str:
        """Results folder of this data set: runs, tables, figures."""
        return f"results/{self.dataset}"

    def slices_path(self) -> str:
        """The slices store."""
        return f"data/slices/{self.dataset}.h5"

    def raw_dir(self) -> str:
        """The raw data: a folder a rule builds (the demo, a plugin's data set), or the user's."""
        data = self.config["data"]
        return f"data/raw/{self.dataset}" if self.source.built else str(data["raw_dir"])

    @property
    def source(self) -> SourceKind:
        """What the data source needs, makes and is read as (:mod:`ssibench.config.sources`)."""
        return source_kind(self.config["data"]["source"])

    def measurements_path(self, scenario: str) -> str:
        """The measurement store of ``scenario``."""
        return f"data/measurements/{self.dataset}/{scenario}.h5"

    def run_path(self, scenario: str, method: str, seed: int | str, name: str) -> str:
        """File ``name`` of one run's folder."""
        return f"{self.results}/runs/{scenario}/{method}/seed{seed}/{name}"

    def figure_kinds(self, scenario: str) -> list[str]:
        """The figures of a scenario: all, ``published`` only where the paper has numbers."""
        published = set(published_leaderboards()["scenario"])
        return [k for k in FIGURES if k != "published" or scenario in published]

    def has_ground_truth(self, scenario: str) -> bool:
        """Whether ``scenario``'s data have reference images (else it is for training only)."""
        return PHYSICS_KINDS[self.config["scenarios"][scenario]["physics"]].ground_truth

    def evaluated_scenarios(self) -> list[str]:
        """The scenarios with a leaderboard: all but the training-only ones (no ground truth)."""
        return [s for s in self.config["scenarios"] if self.has_ground_truth(s)]

    def training_only_scenarios(self) -> list[str]:
        """The scenarios on k-space undersampled at acquisition: trained, never evaluated."""
        return [s for s in self.config["scenarios"] if not self.has_ground_truth(s)]

    def all_targets(self) -> list[str]:
        """Every table (CSV, Markdown, LaTeX) and figure (PDF, PNG) of the configured scenarios.

        A training-only scenario has its runs' ``model.pt`` and its training curves instead.
        """
        tables = f"{self.results}/tables"
        targets = []
        if self.evaluated_scenarios():
            targets += [f"{tables}/leaderboard_all.{ext}" for ext in TABLE_FORMATS]
        for scenario in self.training_only_scenarios():
            targets += self.trained_files(scenario, "model.pt")
            targets += [f"{self.results}/figures/curves_{scenario}.{e}" for e in FIGURE_FORMATS]
        for scenario in self.evaluated_scenarios():
            targets += [f"{tables}/leaderboard_{scenario}.{ext}" for ext in TABLE_FORMATS]
            for kind in self.figure_kinds(scenario):
                targets += [
                    f"{self.results}/figures/{kind}_{scenario}.{ext}" for ext in FIGURE_FORMATS
                ]
        return targets

    # ------------------------------------------------------------ runs of a scenario

    def scenario_runs(self, scenario: str) -> list[Run]:
        """The runs of ``scenario`` (the order of every per-run list of that scenario)."""
        return [run for run in self.runs if run[0] == scenario]

    def trained_runs(self, scenario: str) -> list[Run]:
        """The runs of ``scenario`` whose method trains (all but zero-filled)."""
        return [run for run in self.scenario_runs(scenario) if METHODS[run[1]].trains]

    def scenario_files(self, scenario: str, name: str) -> list[str]:
        """File ``name`` (``metrics.csv``, ``samples.npz``) of every run of ``scenario``.

        The scenario's runs, then its external runs that have the file: every one has a
        ``metrics.csv``, those evaluated from a checkpoint a ``samples.npz``.
        """
        kind = "checkpoint" if name == "samples.npz" else None
        return self._own_files(scenario, name) + self._external_files(scenario, name, kind)

    def sample_metrics(self, scenario: str) -> list[str]:
        """``metrics.csv`` of every run with images (the order of the ``samples.npz`` files)."""
        own = self._own_files(scenario, "metrics.csv")
        return own + self._external_files(scenario, "metrics.csv", "checkpoint")

    def _own_files(self, scenario: str, name: str) -> list[str]:
        return [self.run_path(*run, name) for run in self.scenario_runs(scenario)]

    def trained_files(self, scenario: str, name: str) -> list[str]:
        """File ``name`` (``train_log.csv``, ``run.json``, ...) of every training run."""
        return [self.run_path(*run, name) for run in self.trained_runs(scenario)]

    def trained_names(self, scenario: str) -> list[str]:
        """``method:seed`` of every training run (the order of :meth:`trained_files`)."""
        return [f"{method}:{seed}" for _, method, seed in self.trained_runs(scenario)]

    def skipped_notes(self, scenario: str) -> list[str]:
        """``method: reason`` of each method skipped in ``scenario`` (listed under its table)."""
        return [f"{method}: {reason}" for method, reason in self.skipped[scenario]]

    def skipped_summary(self) -> str:
        """The skipped (scenario, method) pairs as one short block, grouped by reason; "" if none.

        Printed once per Snakemake call (dry runs and ``--report`` included), so it is a count and
        one line per reason and set of scenarios, e.g. ``  needs a noise level (sigma > 0): ensure,
        robust-ssdu in single-coil, multicoil``, rather than a line per pair. Reasons, methods and
        scenarios keep the config's order.
        """
        scenarios_of: dict[tuple[str, str], list[str]] = {}  # (reason, method) → scenarios
        for scenario, pairs in self.skipped.items():
            for method, reason in pairs:
                scenarios_of.setdefault((reason, method), []).append(scenario)
        if not scenarios_of:
            return ""
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (reason, scenarios) → methods
        for (reason, method), scenarios in scenarios_of.items():
            groups.setdefault((reason, tuple(scenarios)), []).append(method)
        total = sum(len(scenarios) for scenarios in scenarios_of.values())
        noun = "pair" if total == 1 else "pairs"
        lines = [f"ssibench: {total} (scenario, method) {noun} skipped (listed under each table):"]
        lines += [
            f"  {reason}: {', '.join(methods)} in {', '.join(scenarios)}"
            for (reason, scenarios), methods in groups.items()
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------ external runs

    def external_names(self, scenario: str, kind: str | None = None) -> list[str]:
        """External runs of ``scenario``, in config order.

        ``kind`` (``checkpoint`` or ``metrics``) keeps those given by that key.
        """
        return [
            name
            for name, run in self.config.get("external_runs", {}).items()
            if run["scenario"] == scenario and (kind is None or run.get(kind) is not None)
        ]

    def external_path(self, scenario: str, name: str, file: str) -> str:
        """File ``file`` of external run ``name``'s folder, beside the scenario's method folders."""
        return f"{self.results}/runs/{scenario}/external/{name}/{file}"

    def _external_files(self, scenario: str, file: str, kind: str | None) -> list[str]:
        return [self.external_path(scenario, n, file) for n in self.external_names(scenario, kind)]

    def _evaluate_section(self) -> dict[str, Any]:
        """The ``evaluate`` section every evaluation gets, the same for external checkpoints."""
        return dict(self.config["evaluate"])

    def external_evaluate_spec(self, name: str) -> str:
        """``--spec`` of an external checkpoint's evaluation: this config's slices of evaluation.

        A model.pt keeps its own model, train, options and scenario (a differing one is refused);
        a plain state_dict gets its method's ``method_options``, as the workflow's runs do.
        """
        run = self.config["external_runs"][name]
        spec: dict[str, Any] = {"evaluate": self._evaluate_section()}
        metrics = list(self.config.get("metrics", DEFAULT_METRICS))
        if metrics != list(DEFAULT_METRICS):
            spec["metrics"] = metrics
        if run.get("method") is not None:
            spec["method_options"] = self.config["method_options"].get(run["method"], {})
        return _json(spec)

    def external_transfer_option(self, name: str) -> str:
        """``--transfer`` for a checkpoint trained on another scenario's data; else empty."""
        return "--transfer" if self.config["external_runs"][name].get("transfer") else ""

    def external_state_dict_options(self, name: str) -> str:
        """``--method M --model-spec JSON`` for a plain state_dict, shell-quoted; else empty.

        A DeepInverse checkpoint gets ``--method M`` alone (its model is read from its weights).
        """
        run = self.config["external_runs"][name]
        if run.get("method") is None:
            return ""
        method = f"--method {shlex.quote(run['method'])}"
        if not run.get("model_spec"):
            return method
        return f"{method} --model-spec {shlex.quote(_json(run['model_spec']))}"

    def external_source(self, name: str) -> str:
        """The ``metrics.csv`` an external run's rows are imported from.

        The config's file, or the evaluation of the run's checkpoint.
        """
        run = self.config["external_runs"][name]
        if run.get("metrics") is not None:
            return str(run["metrics"])
        return self.external_path(run["scenario"], name, "checkpoint_metrics.csv")

    # ------------------------------------------------------------ code a job depends on

    def run_code(self, scenario: str, method: str) -> list[str]:
        """Source files a train or evaluate job depends on (:mod:`ssibench.provenance`).

        The method's code, with the module of a plugin model (for a method that trains) and of a
        plugin physics the scenario uses: editing one reruns exactly the runs that use it.
        """
        spec = {
            "model": self.config["model"],
            "scenario": {"physics": self.config["scenarios"][scenario]["physics"]},
        }
        return code_files(method, component_modules(spec, trains=METHODS[method].trains))

    def evaluate_code(self, scenario: str, method: str) -> list[str]:
        """:meth:`run_code`, and the modules of the plugin metrics ``evaluate`` computes."""
        metrics = plugin_files("metric", self.config.get("metrics", DEFAULT_METRICS))
        return self.run_code(scenario, method) + metrics

    def simulate_code(self, scenario: str) -> list[str]:
        """The module of a plugin physics (it measures the scenario); empty for built-in kinds."""
        return plugin_files("physics", [self.config["scenarios"][scenario]["physics"]])

    def dataset_code(self) -> list[str]:
        """The module of the plugin data set the ``dataset`` rule builds."""
        return plugin_files("dataset", [self.config["data"]["source"]])

    # ------------------------------------------------------------ job specs (sorted JSON)

    def simulate_spec(self, scenario: str) -> str:
        """What ``simulate`` gets: the scenario spec."""
        return _json(scenario_spec(self.config, scenario))

    def reads_raw_kspace(self, scenario: str) -> bool:
        """Whether ``scenario`` measures the raw volumes' own fully sampled k-space."""
        kind = PHYSICS_KINDS[self.config["scenarios"][scenario]["physics"]]
        return kind.acquired and kind.ground_truth

    def kspace_dir(self, scenario: str) -> str:
        """The folder of a training-only scenario's measured volumes (``kspace_dir``)."""
        return str(self.config["scenarios"][scenario]["kspace_dir"])

    def simulate_inputs(self, scenario: str) -> dict[str, Any]:
        """Inputs of ``simulate``: slices store, raw volumes (acquired k-space), plugin physics."""
        inputs: dict[str, Any] = {"slices": self.slices_path()}
        if self.reads_raw_kspace(scenario):
            inputs["raw"] = self.raw_dir()
        code = self.simulate_code(scenario)
        if code:  # a plugin physics: editing it re-simulates the scenario
            inputs["code"] = code
        return inputs

    def simulate_raw_option(self, scenario: str) -> str:
        """``--raw-dir <folder>`` for a scenario on acquired k-space, else empty."""
        if not self.reads_raw_kspace(scenario):
            return ""
        return f"--raw-dir {shlex.quote(self.raw_dir())}"

    def train_spec(self, scenario: str, method: str) -> str:
        """What ``train`` gets: model, train (with the method's overrides), options, scenario."""
        return _json(
            {
                "model": dict(self.config["model"]),
                "train": train_config(self.config, method),
                "method_options": self.config["method_options"].get(method, {}),
                "scenario": scenario_spec(self.config, scenario),
            }
        )

    def evaluate_spec(self, scenario: str, method: str) -> str:
        """What ``evaluate`` gets; zero-filled (no network) only needs its batch size.

        ``metrics`` (the columns of ``metrics.csv``) is passed only when it is not the default.
        """
        spec: dict[str, Any] = {
            "method_options": self.config["method_options"].get(method, {}),
            "scenario": scenario_spec(self.config, scenario),
            "evaluate": self._evaluate_section(),
        }
        if METHODS[method].trains:
            spec.update(
                model=dict(self.config["model"]),
                # log_to: how training is watched, nothing evaluation reads
                train=without_logging(train_config(self.config, method)),
            )
        else:
            spec.update(train={"batch_size": self.config["train"]["batch_size"]})
        metrics = list(self.config.get("metrics", DEFAULT_METRICS))
        if metrics != list(DEFAULT_METRICS):  # left out by default: older runs keep their params
            spec["metrics"] = metrics
        return _json(spec)


def plan_runs(config: Mapping[str, Any]) -> RunPlan:
    """The valid runs of ``config`` and the skipped (method, reason) pairs per scenario.

    Raises:
        ConfigError: for a scenario to which none of the configured methods applies.
    """
    runs: list[Run] = []
    skipped: dict[str, tuple[tuple[str, str], ...]] = {}
    for scenario in config["scenarios"]:
        spec = scenario_spec(config, scenario)
        reasons = [(m, skip_reason(m, spec)) for m in config["methods"]]
        applicable = [m for m, reason in reasons if reason is None]
        skipped[scenario] = tuple((m, r) for m, r in reasons if r is not None)
        if not applicable:
            raise ConfigError(
                f"scenarios.{scenario}: none of the configured methods applies "
                f"({'; '.join(f'{m}: {r}' for m, r in skipped[scenario])}); add a method to "
                f"`methods` or remove the scenario"
            )
        runs += [(scenario, m, seed) for m in applicable for seed in config["seeds"]]
    return RunPlan(config=config, runs=tuple(runs), skipped=skipped)
