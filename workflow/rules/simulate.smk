# Slices store → measurement store of one scenario (physics, masks and noise from seeded CPU streams).


rule simulate:
    input:
        slices=slices_path(),
    output:
        measurements=measurements_path("{scenario}"),
    log:
        f"logs/{DATASET}/simulate/{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{scenario}}.tsv"
    conda:
        "../../envs/ssibench.yaml"
    threads: res("simulate", "threads")
    resources:
        **resources_of("simulate"),
    params:
        ssibench=SSIBENCH,
        spec=simulate_spec,
        seed=config["seed"],
    shell:
        "{params.ssibench} simulate --slices {input.slices:q} --out {output.measurements:q}"
        " --scenario {wildcards.scenario} --spec {params.spec:q} --seed {params.seed}"
        " > {log:q} 2>&1"
