"""What the workflow computes from the config, as tested Python: checks, the run plan, resources.

``workflow/rules/common.smk`` only calls these functions; every rule stays a declaration.

- :mod:`~ssibench.pipeline.checks`: config checks the JSON schema cannot express, and the
  config slices each job gets (the scenario spec, a method's train settings);
- :mod:`~ssibench.pipeline.plan`: the valid (scenario, method, seed) runs, every path, the
  targets and the JSON specs passed to the jobs;
- :mod:`~ssibench.pipeline.resources`: memory and run time of each job, sized from the config;
- :mod:`~ssibench.pipeline.memory`: those sizes checked against the machines before any job;
- :mod:`~ssibench.pipeline.report_code`: the report modules each table and figure rule runs,
  derived from the command's imports (its code inputs).
"""

from ssibench.pipeline.checks import (
    CONFIG_HINT,
    apply_plugins,
    drop_scenarios_without_kspace,
    n_volumes,
    scenario_spec,
    ssibench_command,
    train_config,
)
from ssibench.pipeline.memory import check_config
from ssibench.pipeline.plan import FIGURES, RunPlan, dataset_name, plan_runs
from ssibench.pipeline.report_code import report_files
from ssibench.pipeline.report_entries import figure_entry, table_entry, zoom_option
from ssibench.pipeline.resources import job_resources, rule_resource

__all__ = [
    "CONFIG_HINT",
    "FIGURES",
    "RunPlan",
    "apply_plugins",
    "check_config",
    "dataset_name",
    "drop_scenarios_without_kspace",
    "figure_entry",
    "job_resources",
    "n_volumes",
    "plan_runs",
    "report_files",
    "rule_resource",
    "scenario_spec",
    "ssibench_command",
    "table_entry",
    "train_config",
    "zoom_option",
]
