# Slices store → measurement store of one scenario (physics, masks and noise from seeded CPU streams;
# an acquired-k-space scenario also reads the raw volumes).


rule simulate:
    input:
        unpack(simulate_inputs),
    output:
        measurements=measurements_path("{scenario}"),
    log:
        f"logs/{DATASET}/simulate/{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{scenario}}.tsv"
    wildcard_constraints:
        scenario=SIMULATED_SCENARIOS,
    conda:
        "../../envs/ssibench.yaml"
    threads: res("simulate", "threads")
    resources:
        **resources_of("simulate"),
    params:
        ssibench=SSIBENCH,
        spec=simulate_spec,
        seed=config["seed"],
        raw=simulate_raw_option,
    shell:
        "{params.ssibench} simulate --slices {input.slices:q} --out {output.measurements:q}"
        " --scenario {wildcards.scenario} --spec {params.spec:q} --seed {params.seed}"
        " {params.raw} > {log:q} 2>&1"


# K-space undersampled at acquisition (physics measured-multicoil): its own folder of volumes, no
# slices store; a training-only store (no ground truth).
rule simulate_measured:
    input:
        kspace=measured_kspace_input,
    output:
        measurements=measurements_path("{scenario}"),
    log:
        f"logs/{DATASET}/simulate/{{scenario}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{scenario}}.tsv"
    wildcard_constraints:
        scenario=TRAINING_ONLY_SCENARIOS,
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
        "{params.ssibench} simulate --out {output.measurements:q}"
        " --scenario {wildcards.scenario} --spec {params.spec:q} --seed {params.seed}"
        " > {log:q} 2>&1"
