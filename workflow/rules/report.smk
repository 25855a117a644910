# Per-run metrics and samples → one leaderboard and one sample figure per scenario.
# These rules read only metrics.csv / samples.npz, so a deleted table or figure is rebuilt alone.


rule tables:
    input:
        metrics=scenario_metrics,
    output:
        csv=report(
            "results/tables/leaderboard_{scenario}.csv",
            caption="../report/leaderboard.rst",
            category="Leaderboards",
            labels={"scenario": "{scenario}", "format": "CSV"},
        ),
        md=report(
            "results/tables/leaderboard_{scenario}.md",
            caption="../report/leaderboard.rst",
            category="Leaderboards",
            labels={"scenario": "{scenario}", "format": "Markdown"},
        ),
    log:
        "logs/tables/{scenario}.log",
    params:
        skipped=skipped_notes,
    threads: res("tables", "threads")
    resources:
        **resources_of("tables"),
    conda:
        "../../envs/ssibench.yaml"
    shell:
        "ssibench tables --metrics {input.metrics:q} --scenario {wildcards.scenario}"
        " --skipped {params.skipped:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule figures:
    input:
        metrics=scenario_metrics,
        samples=scenario_samples,
    output:
        png=report(
            "results/figures/samples_{scenario}.png",
            caption="../report/samples.rst",
            category="Sample reconstructions",
            labels={"scenario": "{scenario}"},
        ),
    log:
        "logs/figures/{scenario}.log",
    params:
        sample_index=config["report"]["sample_index"],
    threads: res("figures", "threads")
    resources:
        **resources_of("figures"),
    conda:
        "../../envs/ssibench.yaml"
    shell:
        "ssibench figures --metrics {input.metrics:q} --samples {input.samples:q}"
        " --scenario {wildcards.scenario} --sample-index {params.sample_index}"
        " --out {output.png:q} > {log:q} 2>&1"
