# Shared wiring: config checks that the schema cannot express, the valid (scenario, method, seed)
# runs, wildcard constraints, resources, and every input/params function. Rule files only declare.

import difflib
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

from ssibench.config import check_finite_numbers
from ssibench.data.slices import check_split_sizes
from ssibench.errors import ConfigError
from ssibench.masks import make_mask_generator
from ssibench.methods import METHODS, method_options, skip_reason
from ssibench.provenance import code_files
from ssibench.report.published import published_leaderboards
from ssibench.train import parse_model_config, parse_train_config

# Tolerance of the check that the split fractions sum to 1.
SPLIT_SUM_TOLERANCE = 1e-6
# Keys of the `simulate` section that every scenario spec inherits.
SIMULATE_KEYS = ("mask", "acceleration", "center_fraction")

DATA = config["data"]
SCENARIOS = config["scenarios"]
METHOD_NAMES = config["methods"]
SEEDS = config["seeds"]
CONFIG_HINT = "fix it in the config file (or --config) and re-run"
#: The data set's folder in every path: its name and image size, so that data sets and sizes
#: never overwrite each other's stores and results.
DATASET = f"{DATA['name']}-{DATA['image_size'][0]}x{DATA['image_size'][1]}"


def _closest(name, valid):
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def n_volumes():
    """Raw volumes extracted: the demo's count, or the .h5 files in data.raw_dir."""
    if DATA["source"] == "demo":
        return DATA["demo"]["n_volumes"]
    return len(list(Path(DATA["raw_dir"]).glob("*.h5")))


def train_config(method):
    """The train section with the method's overrides from `method_train` applied.

    `amp: none` is left out: it is the trainer's default, and runs made before the key existed
    keep their params (Snakemake reruns a job whose params changed).
    """
    train = {**config["train"], **config["method_train"].get(method, {})}
    if train.get("amp") == "none":
        del train["amp"]
    return train


def check_config():
    """Raise ConfigError for what the JSON schema cannot check (cross-key rules, registries, files)."""
    check_finite_numbers(config)
    split = DATA["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > SPLIT_SUM_TOLERANCE:
        raise ConfigError(
            f"data.split: train + val + test = {total:g}, must be 1 "
            f"(got {split}); {CONFIG_HINT}"
        )
    for index, method in enumerate(METHOD_NAMES):
        if method not in METHODS:
            raise ConfigError(
                f"methods[{index}]: unknown method {method!r}{_closest(method, METHODS)}; "
                f"valid: {', '.join(METHODS)}; {CONFIG_HINT}"
            )
    for method, overrides in config["method_options"].items():
        if method not in METHODS:
            raise ConfigError(
                f"method_options.{method}: unknown method{_closest(method, METHODS)}; "
                f"valid: {', '.join(METHODS)}; {CONFIG_HINT}"
            )
        method_options(method, overrides)  # raises ConfigError naming an unknown option
    for method in config["method_train"]:
        if method not in METHODS:
            raise ConfigError(
                f"method_train.{method}: unknown method{_closest(method, METHODS)}; "
                f"valid: {', '.join(METHODS)}; {CONFIG_HINT}"
            )
    try:  # the values the jobs will parse, checked now rather than after the data jobs
        parse_model_config(config["model"])
        for method in METHOD_NAMES:
            parse_train_config(train_config(method))
    except ConfigError as error:
        raise ConfigError(f"{error}; {CONFIG_HINT}") from None
    n_samples = config["evaluate"]["n_samples"]
    if config["report"]["sample_index"] >= n_samples:
        raise ConfigError(
            f"report.sample_index: {config['report']['sample_index']} is not below "
            f"evaluate.n_samples = {n_samples} (the number of saved test slices); {CONFIG_HINT}"
        )
    simulate = config["simulate"]
    try:  # the line counts at this image width must be feasible
        masks = make_mask_generator(
            simulate["mask"], simulate["acceleration"], simulate["center_fraction"]
        )
        masks.pdf(DATA["image_size"][1])
    except ValueError as error:
        raise ConfigError(
            f"simulate (at data.image_size {DATA['image_size']}): {error}; {CONFIG_HINT}"
        ) from None
    if DATA["source"] == "fastmri":
        raw_dir = DATA["raw_dir"]
        if raw_dir is None:
            raise ConfigError(
                "data.raw_dir: required when data.source is 'fastmri'; set it to the folder of "
                "fastMRI .h5 files, e.g. --config data='{source: fastmri, raw_dir: /data/brain}'"
            )
        if not Path(raw_dir).is_dir():
            raise ConfigError(f"data.raw_dir: {raw_dir!r} is not a folder; {CONFIG_HINT}")
        if not any(Path(raw_dir).glob("*.h5")):
            raise ConfigError(
                f"data.raw_dir: {raw_dir!r} holds no .h5 files; point it to the fastMRI volumes"
            )
    fractions = [split[part] for part in ("train", "val", "test")]
    check_split_sizes(n_volumes(), fractions, where="data.split")



def scenario_spec(scenario):
    """The spec `simulate`, `train` and `evaluate` get: the scenario merged with `simulate`."""
    spec = {key: config["simulate"][key] for key in SIMULATE_KEYS}
    spec.update(SCENARIOS[scenario])
    # Keys of other physics would only trigger needless reruns when edited.
    if spec["physics"] != "multicoil":
        spec.pop("n_coils", None)
    if spec["physics"] != "sequential":
        spec.pop("n_frames", None)
        spec.pop("frame_partition", None)
    return spec


def _plan():
    """Valid (scenario, method, seed) runs, and the skipped (method, reason) pairs per scenario."""
    runs, skipped = [], {}
    for scenario in SCENARIOS:
        skipped[scenario] = []
        for method in METHOD_NAMES:
            reason = skip_reason(method, scenario_spec(scenario))
            if reason is None:
                runs.extend((scenario, method, seed) for seed in SEEDS)
            else:
                skipped[scenario].append((method, reason))
        if not any(run[0] == scenario for run in runs):
            raise ConfigError(
                f"scenarios.{scenario}: none of the configured methods applies "
                f"({'; '.join(f'{m}: {r}' for m, r in skipped[scenario])}); add a method to "
                f"`methods` or remove the scenario"
            )
    return runs, skipped


check_config()
RUNS, SKIPPED = _plan()
for _scenario, _pairs in SKIPPED.items():
    for _method, _reason in _pairs:
        print(f"ssibench: skipping {_method} in scenario {_scenario}: {_reason}", file=sys.stderr)


wildcard_constraints:
    dataset=re.escape(DATASET),
    scenario="|".join(re.escape(name) for name in SCENARIOS),
    method="|".join(re.escape(name) for name in METHOD_NAMES),
    seed=r"\d+",


# ---------------------------------------------------------------- paths


def slices_path():
    return f"data/slices/{DATASET}.h5"


def measurements_path(scenario):
    return f"data/measurements/{DATASET}/{scenario}.h5"


#: Results of this data set: runs, tables, figures.
RESULTS = f"results/{DATASET}"


def run_path(scenario, method, seed, name):
    return f"{RESULTS}/runs/{scenario}/{method}/seed{seed}/{name}"


#: Figure kinds and their subcategory in the report; kind k is made by `figure_<k>`.
FIGURES = {
    "samples": "Sample reconstructions",
    "distributions": "Per-slice distributions",
    "curves": "Training curves",
    "published": "Ours against the paper",
    "cost": "Cost",
}
#: Scenarios with a published SSIBench leaderboard (matched by name).
PUBLISHED_SCENARIOS = set(published_leaderboards()["scenario"])


def figure_kinds(scenario):
    """The figures of a scenario: all of them, `published` only where the paper has numbers."""
    return [k for k in FIGURES if k != "published" or scenario in PUBLISHED_SCENARIOS]


def all_targets():
    """Every table (CSV, Markdown, LaTeX) and figure (PDF, PNG) of the configured scenarios."""
    targets = [f"{RESULTS}/tables/leaderboard_all.{ext}" for ext in ("csv", "md", "tex")]
    for scenario in SCENARIOS:
        targets += [
            f"{RESULTS}/tables/leaderboard_{scenario}.{ext}" for ext in ("csv", "md", "tex")
        ]
        for kind in figure_kinds(scenario):
            targets += [f"{RESULTS}/figures/{kind}_{scenario}.{ext}" for ext in ("pdf", "png")]
    return targets


def figure_report(kind):
    """The PNG output of figure rule `kind`, flagged for `snakemake --report`."""
    return report(
        f"{RESULTS}/figures/{kind}_{{scenario}}.png",
        caption=f"../report/{kind}.rst",
        category="Scenario {scenario}",
        subcategory=FIGURES[kind],
        labels={"figure": FIGURES[kind]},
    )


def report_code(*modules):
    """Source files of `ssibench.report` modules, as inputs of the table and figure rules.

    As inputs they make Snakemake redo a table or figure (and nothing upstream) when its code is
    edited.
    """
    return [importlib.util.find_spec(f"ssibench.report.{name}").origin for name in modules]


#: Code of the tables: statistics, paired tests, published numbers, rendering, input checks.
TABLE_CODE = ("leaderboard", "stats", "published", "render", "checks")


def figure_code(module):
    """Source files of a figure: its plotting module and the shared style."""
    return report_code(module, "style")


def zoom_option():
    """`--zoom ROW COL SIZE` from config report.zoom, or nothing (automatic region)."""
    zoom = config["report"]["zoom"]
    return "" if zoom is None else "--zoom " + " ".join(str(value) for value in zoom)


# ---------------------------------------------------------------- resources
# Train and evaluate jobs ask for a fixed part (resources.<rule>.mem_mb / runtime_min: start-up,
# CUDA context, I/O) plus a part sized from the config; every request is multiplied by the
# attempt number on a retry. Formulas and constants: config/README.md, "resources". The constants
# were fitted to `ssibench train` on the CPU at 128 x 128 (U-Net width 8-32, 2-4 scales, 1-3
# iterations, batch 4-8): activation memory of plain MC within about 20 %, EI and MOI below the
# LOSS_PASSES bound.

BYTES_PER_FLOAT = 4
MB = 1e6
# 3x3 convolutions per U-Net level (2 encoder, 3 decoder incl. the up-convolution); the bottom
# level has 2. Channels double as pixels quarter, so each level costs about 9 * 5 * width^2
# multiply-accumulates (MACs) per full-resolution pixel.
CONVS_PER_LEVEL, CONVS_BOTTOM, KERNEL_TAPS = 5, 2, 9
# Floats kept for backpropagation per full-resolution pixel, per width channel and per unrolled
# iteration, times the level sum 2 - 2^(1 - scales) (measured: 12).
ACTIVATION_FLOATS = 12
# FLOPs per MAC: a forward pass (evaluation, validation) and forward + backward (training).
FLOPS_FORWARD, FLOPS_TRAIN = 2, 6
# Network passes per image of the costliest losses (EI, MOI, MO-EI, the adversarial methods,
# Noise2Inverse's evaluation; measured 2.5x plain MC); every method is sized with it.
LOSS_PASSES = 3
# The measurement store is read into memory (the HDF5 read and the tensors).
DATA_COPIES = 2
# Rules whose memory and run time are sized from the config.
SIZED_RULES = ("train", "evaluate")


def res(rule, key):
    """A resource of `rule` from config.resources (its own entry, else `default`)."""
    resources = config["resources"]
    return resources.get(rule, resources["default"])[key]


def n_images(split):
    """Slices in one split: one per demo volume or fastMRI file, times the split fraction."""
    return math.ceil(n_volumes() * DATA["split"][split])


def store_floats_per_pixel(scenario):
    """Floats per pixel of one measurement-store row: x (2), y (2 per coil or frame), mask."""
    spec = scenario_spec(scenario)
    channels = spec.get("n_coils", 1) if spec["physics"] == "multicoil" else spec.get("n_frames", 1)
    return 2 + 3 * channels


def data_mb(scenario, splits):
    """Memory (MB) of the measurement-store splits a job holds."""
    height, width = DATA["image_size"]
    images = sum(n_images(split) for split in splits)
    floats = images * height * width * store_floats_per_pixel(scenario)
    return DATA_COPIES * BYTES_PER_FLOAT * floats / MB


def network_macs():
    """Multiply-accumulates of one MoDL forward pass on one image."""
    model = config["model"]
    height, width = DATA["image_size"]
    convs = CONVS_PER_LEVEL * (model["scales"] - 1) + CONVS_BOTTOM
    per_pixel = KERNEL_TAPS * model["width"] ** 2 * convs
    return per_pixel * height * width * model["num_iter"]


def activation_mb():
    """Memory (MB) of one training batch's activations (on the GPU, or in RAM on the CPU)."""
    model = config["model"]
    height, width = DATA["image_size"]
    levels = 2 - 2 ** (1 - model["scales"])
    floats = ACTIVATION_FLOATS * model["width"] * levels * height * width * model["num_iter"]
    return LOSS_PASSES * config["train"]["batch_size"] * BYTES_PER_FLOAT * floats / MB


def gflops(rule):
    """Effective throughput (GFLOP/s) of one job of `rule`: its GPU, else its CPU threads."""
    throughput = config["resources"]["throughput"]
    if config["resources"][rule]["gpu"] > 0:
        return throughput["gpu_gflops"]
    return throughput["cpu_gflops"] * res(rule, "threads")


def sized_mem_mb(rule_name, scenario):
    """The config-sized part of a train or evaluate job's memory request (MB)."""
    if rule_name == "train":
        on_cpu = config["resources"]["train"]["gpu"] == 0
        return data_mb(scenario, ("train", "val")) + (activation_mb() if on_cpu else 0)
    return data_mb(scenario, ("test",))


def sized_runtime_min(rule_name, method):
    """The config-sized part of a train or evaluate job's run time (minutes)."""
    if not METHODS[method].trains:  # zero-filled: no network
        return 0
    if rule_name == "train":
        train = config["train"]
        validations = math.ceil(train["epochs"] / train["val_every"])
        flops = (
            train["epochs"] * n_images("train") * FLOPS_TRAIN * LOSS_PASSES
            + validations * n_images("val") * FLOPS_FORWARD
        ) * network_macs()
    else:
        flops = n_images("test") * FLOPS_FORWARD * LOSS_PASSES * network_macs()
    return flops / (gflops(rule_name) * 1e9) / 60


def resources_of(rule_name):
    """Snakemake resources of `rule_name`: memory and runtime grow with the attempt; gpu if any.

    train and evaluate add the config-sized part to their fixed part (whole MB and minutes).
    """
    mem_mb, runtime_min = res(rule_name, "mem_mb"), res(rule_name, "runtime_min")
    sized = rule_name in SIZED_RULES
    if sized:

        def sized_mem(wildcards, attempt):
            return math.ceil(mem_mb + sized_mem_mb(rule_name, wildcards.scenario)) * attempt

        def sized_runtime(wildcards, attempt):
            return math.ceil(runtime_min + sized_runtime_min(rule_name, wildcards.method)) * attempt

        resources = {"mem_mb": sized_mem, "runtime": sized_runtime}
    else:
        resources = {
            "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
            "runtime": lambda wildcards, attempt: runtime_min * attempt,
        }
    gpu = config["resources"].get(rule_name, {}).get("gpu", 0)
    if gpu > 0 and rule_name == "evaluate":  # zero-filled evaluates no network: it needs no GPU
        resources["gpu"] = lambda wildcards: gpu if METHODS[wildcards.method].trains else 0
    elif gpu > 0:
        resources["gpu"] = gpu
    return resources


# ---------------------------------------------------------------- input functions


def raw_input(wildcards):
    """The raw volume folder: built by demo_data, or the user's fastMRI folder."""
    if DATA["source"] == "demo":
        return f"data/raw/{wildcards.dataset}"
    return DATA["raw_dir"]


def run_code(wildcards):
    """Source files a run of the method depends on (ssibench.provenance): editing one of them
    reruns exactly the runs that use it."""
    return code_files(wildcards.method)


def evaluate_input(wildcards):
    """The measurements and the run's code, plus the trained model for methods that train."""
    inputs = {"data": measurements_path(wildcards.scenario), "code": run_code(wildcards)}
    if METHODS[wildcards.method].trains:
        inputs["model"] = run_path(wildcards.scenario, wildcards.method, wildcards.seed, "model.pt")
    return inputs


def scenario_store(wildcards):
    """The scenario's measurement store: tables and figures check the runs' coverage against it."""
    return measurements_path(wildcards.scenario)


def _scenario_runs(scenario):
    return [run for run in RUNS if run[0] == scenario]


def scenario_metrics(wildcards):
    """metrics.csv of every run of the scenario (same order as scenario_samples)."""
    return [run_path(*run, "metrics.csv") for run in _scenario_runs(wildcards.scenario)]


def _trained_runs(scenario):
    return [run for run in _scenario_runs(scenario) if METHODS[run[1]].trains]


def trained_run_files(wildcards, name):
    """File `name` (train_log.csv, run.json, benchmark.tsv) of every training run of the scenario."""
    return [run_path(*run, name) for run in _trained_runs(wildcards.scenario)]


def trained_run_names(wildcards):
    """`method:seed` of every training run of the scenario (same order as trained_run_files)."""
    return [f"{method}:{seed}" for _, method, seed in _trained_runs(wildcards.scenario)]


def scenario_samples(wildcards):
    """samples.npz of every run of the scenario (same order as scenario_metrics)."""
    return [run_path(*run, "samples.npz") for run in _scenario_runs(wildcards.scenario)]


# ---------------------------------------------------------------- params functions
# Each job gets only the config slice it uses, so that an edit re-runs exactly the affected jobs.


def _json(value):
    return json.dumps(value, sort_keys=True)


def simulate_spec(wildcards):
    return _json(scenario_spec(wildcards.scenario))


def train_spec(wildcards):
    return _json(
        {
            "model": config["model"],
            "train": train_config(wildcards.method),
            "method_options": config["method_options"].get(wildcards.method, {}),
            "scenario": scenario_spec(wildcards.scenario),
        }
    )


def evaluate_spec(wildcards):
    spec = {
        "method_options": config["method_options"].get(wildcards.method, {}),
        "scenario": scenario_spec(wildcards.scenario),
        "evaluate": config["evaluate"],
    }
    if METHODS[wildcards.method].trains:
        spec.update(model=config["model"], train=train_config(wildcards.method))
    else:  # no network: only the batch size of the zero-filled pass matters
        spec.update(train={"batch_size": config["train"]["batch_size"]})
    return _json(spec)


def skipped_notes(wildcards):
    """`method: reason` for each method skipped in the scenario (shown under its leaderboard)."""
    return [f"{method}: {reason}" for method, reason in SKIPPED[wildcards.scenario]]

