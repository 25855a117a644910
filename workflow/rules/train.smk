# Measurement store → trained network of one (scenario, method, seed).
# checkpoint.pt is deliberately not an output: Snakemake would delete it before a re-run, and it is
# what lets an interrupted job resume where it stopped.


rule train:
    input:
        data=lambda wildcards: measurements_path(wildcards.scenario),
        code=run_code,
    output:
        model=run_path("{scenario}", "{method}", "{seed}", "model.pt"),
        train_log=run_path("{scenario}", "{method}", "{seed}", "train_log.csv"),
        record=run_path("{scenario}", "{method}", "{seed}", "run.json"),
    log:
        f"logs/{DATASET}/train/{{scenario}}/{{method}}/seed{{seed}}.log",
    benchmark:
        run_path("{scenario}", "{method}", "{seed}", "benchmark.tsv")
    conda:
        "../../envs/ssibench.yaml"
    threads: res("train", "threads")
    resources:
        **resources_of("train"),
    params:
        ssibench=SSIBENCH,
        spec=train_spec,
        run_dir=lambda wildcards, output: Path(output.model).parent,
    shell:
        "{params.ssibench} train --data {input.data:q} --out-dir {params.run_dir:q}"
        " --method {wildcards.method} --seed {wildcards.seed} --spec {params.spec:q}"
        " --device auto > {log:q} 2>&1"
