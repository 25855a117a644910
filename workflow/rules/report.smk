# Per-run metrics, samples, training logs and benchmarks → leaderboards and figures.
# These rules read only run outputs, so a deleted table or figure is rebuilt alone. Each also
# depends on its own code (the table modules; a figure's plotting module and the shared style), so
# editing that code redoes those tables or figures and nothing upstream.


rule tables:
    input:
        data=scenario_store,
        metrics=scenario_metrics,
        records=lambda wildcards: trained_run_files(wildcards, "run.json"),
        code=report_files("tables"),
    output:
        csv=table_report("{scenario}", "csv"),
        md=table_report("{scenario}", "md"),
        tex=table_report("{scenario}", "tex"),
    log:
        f"logs/{DATASET}/tables/{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("tables", "threads")
    resources:
        **resources_of("tables"),
    params:
        ssibench=SSIBENCH,
        skipped=skipped_notes,
    shell:
        "{params.ssibench} tables --data {input.data:q} --metrics {input.metrics:q}"
        " --records {input.records:q} --scenario {wildcards.scenario}"
        " --skipped {params.skipped:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule combined_table:
    input:
        tables=expand(
            f"{RESULTS}/tables/leaderboard_{{scenario}}.csv",
            scenario=evaluated_scenarios(),
        ),
        code=report_files("combined-table"),
    output:
        csv=table_report("all", "csv"),
        md=table_report("all", "md"),
        tex=table_report("all", "tex"),
    log:
        f"logs/{DATASET}/tables/all.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("tables", "threads")
    resources:
        **resources_of("tables"),
    params:
        ssibench=SSIBENCH,
    shell:
        "{params.ssibench} combined-table --tables {input.tables:q} --out-csv {output.csv:q}"
        " --out-md {output.md:q} --out-tex {output.tex:q} > {log:q} 2>&1"


rule figure_samples:
    input:
        data=scenario_store,
        metrics=sample_metrics,
        samples=scenario_samples,
        code=report_files("figures", "samples"),
    output:
        pdf=f"{RESULTS}/figures/samples_{{scenario}}.pdf",
        png=figure_report("samples"),
    log:
        f"logs/{DATASET}/figures/samples_{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    params:
        ssibench=SSIBENCH,
        sample_index=config["report"]["sample_index"],
        zoom=ZOOM_OPTION,
    shell:
        "{params.ssibench} figures samples --data {input.data:q} --metrics {input.metrics:q}"
        " --samples {input.samples:q}"
        " --scenario {wildcards.scenario} --sample-index {params.sample_index} {params.zoom}"
        " --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"


rule figure_distributions:
    input:
        data=scenario_store,
        metrics=scenario_metrics,
        code=report_files("figures", "distributions"),
    output:
        pdf=f"{RESULTS}/figures/distributions_{{scenario}}.pdf",
        png=figure_report("distributions"),
    log:
        f"logs/{DATASET}/figures/distributions_{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    params:
        ssibench=SSIBENCH,
    shell:
        "{params.ssibench} figures distributions --data {input.data:q} --metrics {input.metrics:q}"
        " --scenario {wildcards.scenario} --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"


rule figure_curves:
    input:
        train_logs=lambda wildcards: trained_run_files(wildcards, "train_log.csv"),
        code=report_files("figures", "curves"),
    output:
        pdf=f"{RESULTS}/figures/curves_{{scenario}}.pdf",
        png=figure_report("curves"),
    log:
        f"logs/{DATASET}/figures/curves_{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    params:
        ssibench=SSIBENCH,
        runs=trained_run_names,
    shell:
        "{params.ssibench} figures curves --train-logs {input.train_logs:q} --runs {params.runs:q}"
        " --scenario {wildcards.scenario} --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"


rule figure_published:
    input:
        table=f"{RESULTS}/tables/leaderboard_{{scenario}}.csv",
        code=report_files("figures", "published"),
    output:
        pdf=f"{RESULTS}/figures/published_{{scenario}}.pdf",
        png=figure_report("published"),
    log:
        f"logs/{DATASET}/figures/published_{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    params:
        ssibench=SSIBENCH,
    shell:
        "{params.ssibench} figures published --table {input.table:q}"
        " --scenario {wildcards.scenario} --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"


rule figure_cost:
    input:
        benchmarks=lambda wildcards: trained_run_files(wildcards, "benchmark.tsv"),
        code=report_files("figures", "cost"),
    output:
        pdf=f"{RESULTS}/figures/cost_{{scenario}}.pdf",
        png=figure_report("cost"),
    log:
        f"logs/{DATASET}/figures/cost_{{scenario}}.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    params:
        ssibench=SSIBENCH,
        runs=trained_run_names,
    shell:
        "{params.ssibench} figures cost --benchmarks {input.benchmarks:q} --runs {params.runs:q}"
        " --scenario {wildcards.scenario} --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"
