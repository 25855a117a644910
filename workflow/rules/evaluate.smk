# Trained network (or none, for zero-filled) → per-slice test metrics and saved test images.


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics=run_path("{scenario}", "{method}", "{seed}", "metrics.csv"),
        samples=run_path("{scenario}", "{method}", "{seed}", "samples.npz"),
    log:
        f"logs/{DATASET}/evaluate/{{scenario}}/{{method}}/seed{{seed}}.log",
    benchmark:
        run_path("{scenario}", "{method}", "{seed}", "benchmark_evaluate.tsv")
    conda:
        "../../envs/ssibench.yaml"
    threads: res("evaluate", "threads")
    resources:
        **resources_of("evaluate"),
    params:
        ssibench=SSIBENCH,
        spec=evaluate_spec,
        run_dir=lambda wildcards, output: Path(output.metrics).parent,
    shell:
        "{params.ssibench} evaluate --data {input.data:q} --method {wildcards.method}"
        " --run-dir {params.run_dir:q} --seed {wildcards.seed} --spec {params.spec:q}"
        " --device auto --out-metrics {output.metrics:q} --out-samples {output.samples:q}"
        " > {log:q} 2>&1"


# External runs (config external_runs): a checkpoint trained elsewhere is scored here on the
# scenario's test split; its metrics, or a metrics.csv computed elsewhere, are then checked against
# the store and imported under the run's name and label for the tables and figures.


rule evaluate_external:
    input:
        unpack(external_checkpoint_input),
    output:
        metrics=external_path("{scenario}", "{name}", "checkpoint_metrics.csv"),
        samples=external_path("{scenario}", "{name}", "samples.npz"),
    log:
        f"logs/{DATASET}/evaluate/{{scenario}}/external/{{name}}.log",
    wildcard_constraints:
        name=external_names_regex("checkpoint"),
    conda:
        "../../envs/ssibench.yaml"
    threads: res("evaluate", "threads")
    resources:
        **resources_of("evaluate"),
    params:
        ssibench=SSIBENCH,
        spec=external_evaluate_spec,
        state_dict=external_state_dict_options,
        transfer=external_transfer_option,
    shell:
        "{params.ssibench} evaluate --data {input.data:q} --ckpt {input.checkpoint:q}"
        " {params.state_dict} {params.transfer} --spec {params.spec:q} --device auto"
        " --out-metrics {output.metrics:q} --out-samples {output.samples:q} > {log:q} 2>&1"


rule import_external:
    input:
        unpack(external_import_input),
    output:
        metrics=external_path("{scenario}", "{name}", "metrics.csv"),
    log:
        f"logs/{DATASET}/evaluate/{{scenario}}/external/{{name}}_import.log",
    wildcard_constraints:
        name=external_names_regex(),
    conda:
        "../../envs/ssibench.yaml"
    threads: res("tables", "threads")
    resources:
        **resources_of("tables"),
    params:
        ssibench=SSIBENCH,
        label=external_label,
    shell:
        "{params.ssibench} import-metrics --data {input.data:q} --metrics {input.metrics:q}"
        " --scenario {wildcards.scenario} --name {wildcards.name} --label {params.label:q}"
        " --out {output.metrics:q} > {log:q} 2>&1"
