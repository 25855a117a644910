# ssibench: the SSIBench benchmark of self-supervised MRI reconstruction as a Snakemake workflow.
# Wiring only; every rule calls one `ssibench <subcommand>` (see README.md and docs/).

from snakemake.utils import min_version, validate

from ssibench.config import drop_disabled_scenarios

min_version("9.27")


configfile: "config/config.yaml"


drop_disabled_scenarios(config)  # `name: null` in an overlay drops a scenario
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
