# Raw volumes or your own images → slices store (images + provenance + deterministic split).

if SOURCE.built_by == "demo_data":

    rule demo_data:
        output:
            raw=directory("data/raw/{dataset}"),
        log:
            "logs/{dataset}/demo_data.log",
        conda:
            "../../envs/ssibench.yaml"
        threads: res("demo_data", "threads")
        resources:
            **resources_of("demo_data"),
        params:
            ssibench=SSIBENCH,
            n_volumes=DATA["demo"]["n_volumes"],
            n_slices=DATA["demo"]["n_slices"],
            n_coils=DATA["demo"]["n_coils"],
            height=DATA["image_size"][0],
            width=DATA["image_size"][1],
            seed=config["seed"],
        shell:
            "{params.ssibench} demo-data --out-dir {output.raw:q} --n-volumes {params.n_volumes}"
            " --n-slices {params.n_slices} --height {params.height} --width {params.width}"
            " --n-coils {params.n_coils} --seed {params.seed} > {log:q} 2>&1"


if SOURCE.built_by == "dataset":

    rule dataset:
        input:
            code=dataset_code(),
        output:
            raw=directory("data/raw/{dataset}"),
        log:
            "logs/{dataset}/dataset.log",
        conda:
            "../../envs/ssibench.yaml"
        threads: res("demo_data", "threads")
        resources:
            **resources_of("demo_data"),
        params:
            ssibench=SSIBENCH,
            source=DATA["source"],
            options=json.dumps(DATA["options"], sort_keys=True),
        shell:
            "{params.ssibench} dataset --source {params.source} --options {params.options:q}"
            " --out-dir {output.raw:q} > {log:q} 2>&1"


rule extract:
    input:
        raw=raw_dir(),
    output:
        slices="data/slices/{dataset}.h5",
    log:
        "logs/{dataset}/extract.log",
    conda:
        "../../envs/ssibench.yaml"
    threads: res("extract", "threads")
    resources:
        **resources_of("extract"),
    params:
        ssibench=SSIBENCH,
        size=DATA["image_size"],
        split=[DATA["split"][part] for part in ("train", "val", "test")],
        seed=config["seed"],
        split_rule=DATA["split_rule"],
        on_bad_file=DATA["on_bad_file"],
        # the demo's volumes are fastMRI files; a plugin data set is written as .npy images
        source=SOURCE.extract_as,
    shell:
        "{params.ssibench} extract --source {params.source} --raw-dir {input.raw:q}"
        " --out {output.slices:q} --size {params.size} --split {params.split}"
        " --seed {params.seed} --split-rule {params.split_rule}"
        " --on-bad-file {params.on_bad_file} > {log:q} 2>&1"
