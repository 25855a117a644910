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
