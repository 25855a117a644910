"""Memory and run time of each job, sized from the config (``resources`` in the config).

Every job asks for a fixed part (``resources.<rule>.mem_mb`` / ``runtime_min``: start-up, CUDA
context, I/O) plus the memory of the data it holds, sized from the config: the demo volume being
written (demo_data), the slices store and a raw slice (extract), the slices store and the rows
being simulated (simulate), the measurement store and, on the CPU, a batch's activations (train,
evaluate); train and evaluate also get a run time from their FLOPs. Every request is multiplied by
the attempt number on a retry. :func:`check_job_memory` refuses, before any job runs, a config
whose jobs would need more than ``resources.max_mem_mb`` (or ``max_gpu_mem_mb`` on a GPU).
Formulas: ``config/README.md``, "resources".

The network's FLOPs and activations come from the closed-form cost model beside the models,
:mod:`ssibench.models.cost`. The constants were fitted to ``ssibench train`` on the CPU at
128 × 128 (U-Net width 8–32, 2–4 scales, 1–3 iterations, batch 4–8): activation memory of plain MC
within about 20 %, EI and MOI below the :data:`LOSS_PASSES` bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ssibench.config import PHYSICS_KINDS
from ssibench.config.sources import source_kind
from ssibench.methods import METHODS
from ssibench.models.cost import FLOPS_FORWARD, FLOPS_TRAIN, model_cost
from ssibench.pipeline.checks import n_volumes, scenario_spec, train_config
from ssibench.simulate.writer import SIMULATE_CHUNK

__all__ = [
    "DATA_RULES",
    "SIZED_RULES",
    "gpu_mem_mb",
    "job_mem_mb",
    "job_resources",
    "rule_resource",
    "sized_mem_mb",
    "sized_runtime_min",
]

Config = Mapping[str, Any]

BYTES_PER_FLOAT = 4
BYTES_PER_COMPLEX = 8
MB = 1e6
#: Network passes per image of the costliest losses (EI, MOI, MO-EI, the adversarial methods,
#: Noise2Inverse's evaluation; measured 2.5× plain MC); every method is sized with it.
LOSS_PASSES = 3
#: The measurement store is read into memory (the HDF5 read and the tensors).
DATA_COPIES = 2
#: Rules whose memory and run time are sized from the config.
SIZED_RULES = ("train", "evaluate")
#: Rules whose memory (not run time) is sized from the data they hold; their fixed part is
#: ``resources.default`` (a plugin's ``dataset`` rule asks as demo_data, sized 0: unknown data).
DATA_RULES = ("demo_data", "extract", "simulate")
#: Raw k-space rows per image row (fastMRI brain: 640 rows for 320; the demo's oversampling).
READOUT_OVERSAMPLING = 2
#: Copies of raw k-space a reader holds at once (the read, the centred and cropped copies, the FFT
#: buffers), and of a volume the demo holds while it writes it.
KSPACE_COPIES = 4


def rule_resource(config: Config, rule: str, key: str) -> Any:
    """A resource of ``rule`` from ``config.resources`` (its own entry, else ``default``)."""
    resources = config["resources"]
    return resources.get(rule, resources["default"])[key]


#: Coils assumed for an acquired-k-space scenario whose ``filter.n_coils`` does not fix the count
#: (the most fastMRI brain volumes have).
ACQUIRED_COILS_GUESS = 16


def image_size(config: Config, scenario: str | None) -> tuple[int, int]:
    """(H, W) of a scenario's images: ``data.image_size``, or an acquired scenario's ``crop``."""
    if scenario is not None:
        spec = scenario_spec(config, scenario)
        if PHYSICS_KINDS[spec["physics"]].acquired:
            return tuple(spec["crop"])  # type: ignore[return-value]
    height, width = config["data"]["image_size"]
    return height, width


def n_images(config: Config, split: str, scenario: str | None = None) -> int:
    """Slices in one split: one per volume times the split fraction.

    An acquired scenario's training split has ``slices_per_volume`` per volume; a training-only
    one (measured k-space) has all the volumes of its ``kspace_dir`` in it, and no other split.
    """
    data = config["data"]
    per_volume = 1
    if scenario is not None and split == "train":
        per_volume = scenario_spec(config, scenario).get("slices_per_volume", 1)
    if (
        scenario is not None
        and not PHYSICS_KINDS[scenario_spec(config, scenario)["physics"]].ground_truth
    ):
        # training only, every volume of its own folder
        folder = Path(config["scenarios"][scenario]["kspace_dir"])
        return len(list(folder.glob("*.h5"))) * per_volume if split == "train" else 0
    return math.ceil(n_volumes(data) * data["split"][split]) * per_volume


def store_floats_per_pixel(config: Config, scenario: str) -> int:
    """Floats per pixel of one measurement-store row: x (2), y (2 per coil or frame), mask.

    An acquired scenario's rows also hold their coil maps (2 per coil).
    """
    spec = scenario_spec(config, scenario)
    kind = PHYSICS_KINDS[spec["physics"]]
    if kind.acquired:
        wanted = spec["filter"].get("n_coils", ACQUIRED_COILS_GUESS)
        coils = max(wanted) if isinstance(wanted, list) else wanted
        return 2 + 3 * coils + 2 * coils
    channels = spec.get("n_coils", 1) if kind.coils else spec.get("n_frames", 1)
    return 2 + 3 * channels


def data_mb(config: Config, scenario: str, splits: tuple[str, ...]) -> float:
    """Memory (MB) of the measurement-store splits a job holds."""
    height, width = image_size(config, scenario)
    images = sum(n_images(config, split, scenario) for split in splits)
    floats = images * height * width * store_floats_per_pixel(config, scenario)
    return DATA_COPIES * BYTES_PER_FLOAT * floats / MB


def model_macs(config: Config, scenario: str | None = None) -> float:
    """Multiply-accumulates of one forward pass on one image (MoDL's, or a plugin's cost)."""
    return model_cost(config["model"], image_size(config, scenario))[0]


def batch_size(config: Config, method: str | None = None) -> int:
    """``train.batch_size`` of ``method`` (its ``method_train`` override); None: the largest."""
    if method is not None:
        return int(train_config(config, method)["batch_size"])
    overrides = [
        o["batch_size"] for o in config.get("method_train", {}).values() if "batch_size" in o
    ]
    return int(max([config["train"]["batch_size"], *overrides]))


def activation_mb(config: Config, scenario: str | None = None, method: str | None = None) -> float:
    """Memory (MB) of one training batch's activations (on the GPU, or in RAM on the CPU)."""
    floats = model_cost(config["model"], image_size(config, scenario))[1]
    return LOSS_PASSES * batch_size(config, method) * BYTES_PER_FLOAT * floats / MB


def gflops(config: Config, rule: str) -> float:
    """Effective throughput (GFLOP/s) of one job of ``rule``: its GPU, else its CPU threads."""
    throughput = config["resources"]["throughput"]
    if config["resources"][rule]["gpu"] > 0:
        return throughput["gpu_gflops"]
    return throughput["cpu_gflops"] * rule_resource(config, rule, "threads")


def raw_kspace_mb(coils: int, height: int, width: int, slices: int = 1) -> float:
    """Memory (MB) of reading ``slices`` slices of raw k-space for (H, W) images, with copies."""
    raw = slices * coils * READOUT_OVERSAMPLING * height * width
    return KSPACE_COPIES * BYTES_PER_COMPLEX * raw / MB


def acquired_coils(spec: Mapping[str, Any]) -> int:
    """Coils an acquired scenario reads: its ``filter.n_coils`` (the largest), else a guess."""
    wanted = spec.get("filter", {}).get("n_coils", ACQUIRED_COILS_GUESS)
    return max(wanted) if isinstance(wanted, list) else wanted


def slices_store_mb(config: Config) -> float:
    """Memory (MB) of the slices store: one ``data.image_size`` image per volume, 2 copies."""
    height, width = config["data"]["image_size"]
    return DATA_COPIES * BYTES_PER_FLOAT * n_volumes(config["data"]) * height * width / MB


def data_rule_mem_mb(config: Config, rule: str, scenario: str | None = None) -> float:
    """The data-sized part of a demo_data, extract or simulate job's memory (MB).

    demo_data: one demo volume (S slices, N coils, 2H × W complex); extract: the slices store
    and one raw slice (the demo's coils, else :data:`ACQUIRED_COILS_GUESS`; none for image
    folders); simulate: the slices store and the store rows it holds at once — a chunk of
    :data:`~ssibench.simulate.writer.SIMULATE_CHUNK`, an acquired volume's slices with their raw
    k-space, or, for measured k-space (written at the end), every training row.
    """
    data = config["data"]
    height, width = data["image_size"]
    if rule == "demo_data":
        if source_kind(data["source"]).built_by != "demo_data":
            return 0.0
        demo = data["demo"]
        return raw_kspace_mb(demo["n_coils"], height, width, demo["n_slices"])
    if rule == "extract":
        source = source_kind(data["source"])
        coils = data["demo"]["n_coils"] if source.built_by == "demo_data" else ACQUIRED_COILS_GUESS
        raw = raw_kspace_mb(coils, height, width) if source.kspace else 0
        return slices_store_mb(config) + raw
    if scenario is None:
        return 0.0
    spec = scenario_spec(config, scenario)
    kind = PHYSICS_KINDS[spec["physics"]]
    height, width = image_size(config, scenario)
    row_floats = height * width * store_floats_per_pixel(config, scenario)
    row_mb = DATA_COPIES * BYTES_PER_FLOAT * row_floats / MB
    if not kind.acquired:
        return slices_store_mb(config) + SIMULATE_CHUNK * row_mb
    per_volume = spec["slices_per_volume"]
    raw = raw_kspace_mb(acquired_coils(spec), height, width, per_volume)
    if not kind.ground_truth:  # every volume's rows are kept until the store is written
        return n_images(config, "train", scenario) * row_mb + raw
    return slices_store_mb(config) + per_volume * row_mb + raw


def sized_mem_mb(
    config: Config, rule: str, scenario: str | None = None, method: str | None = None
) -> float:
    """The config-sized part of a job's memory request (MB).

    train: the train and validation data, plus a batch's activations on the CPU (``method``'s
    batch size; None: the largest); evaluate: the test data; the :data:`DATA_RULES`:
    :func:`data_rule_mem_mb`; any other rule: 0.
    """
    if rule in DATA_RULES:
        return data_rule_mem_mb(config, rule, scenario)
    if rule not in SIZED_RULES or scenario is None:
        return 0.0
    if rule == "train":
        on_cpu = config["resources"]["train"]["gpu"] == 0
        return data_mb(config, scenario, ("train", "val")) + (
            activation_mb(config, scenario, method) if on_cpu else 0
        )
    return data_mb(config, scenario, ("test",))


def job_mem_mb(
    config: Config, rule: str, scenario: str | None = None, method: str | None = None
) -> float:
    """A job's memory request (MB) on its first attempt: the fixed part plus the sized part."""
    return rule_resource(config, rule, "mem_mb") + sized_mem_mb(config, rule, scenario, method)


def gpu_mem_mb(config: Config, rule: str, scenario: str, method: str | None = None) -> float:
    """GPU memory (MB) of a train or evaluate job with a GPU.

    One copy of its data (the splits move to the device whole) and one batch's activations.
    """
    splits = ("train", "val") if rule == "train" else ("test",)
    return data_mb(config, scenario, splits) / DATA_COPIES + activation_mb(config, scenario, method)


def sized_runtime_min(
    config: Config, rule: str, method: str | None, scenario: str | None = None
) -> float:
    """The config-sized part of a train or evaluate job's run time (minutes).

    ``method`` None is an external checkpoint's evaluation, sized as the config's network;
    ``scenario`` None sizes ``data.image_size`` images, one per volume.
    """
    if method is not None and not METHODS[method].trains:  # zero-filled: no network
        return 0
    if rule == "train":
        train = config["train"]
        validations = math.ceil(train["epochs"] / train["val_every"])
        flops = (
            train["epochs"] * n_images(config, "train", scenario) * FLOPS_TRAIN * LOSS_PASSES
            + validations * n_images(config, "val", scenario) * FLOPS_FORWARD
        ) * model_macs(config, scenario)
    else:
        flops = (
            n_images(config, "test", scenario)
            * FLOPS_FORWARD
            * LOSS_PASSES
            * model_macs(config, scenario)
        )
    return flops / (gflops(config, rule) * 1e9) / 60


def _method(wildcards: Any) -> str | None:
    """The job's method; None for an external checkpoint's evaluation (no method wildcard)."""
    return getattr(wildcards, "method", None)


def _evaluates_network(wildcards: Any) -> bool:
    method = _method(wildcards)
    return method is None or METHODS[method].trains


def job_resources(config: Config, rule: str) -> dict[str, Callable[..., int] | int]:
    """Snakemake resources of ``rule``: memory and run time grow with the attempt; gpu if any.

    Memory is the fixed part plus :func:`sized_mem_mb` (whole MB); train and evaluate also add
    the config-sized run time (whole minutes). Values are Snakemake resource callables
    ``(wildcards, attempt) -> int``.
    """
    runtime_min = rule_resource(config, rule, "runtime_min")

    def sized_mem(wildcards: Any, attempt: int) -> int:
        scenario = getattr(wildcards, "scenario", None)
        return math.ceil(job_mem_mb(config, rule, scenario, _method(wildcards))) * attempt

    def sized_runtime(wildcards: Any, attempt: int) -> int:
        scenario = getattr(wildcards, "scenario", None)
        sized = sized_runtime_min(config, rule, _method(wildcards), scenario)
        return math.ceil(runtime_min + sized) * attempt

    resources: dict[str, Callable[..., int] | int] = {"mem_mb": sized_mem}
    if rule in SIZED_RULES:
        resources["runtime"] = sized_runtime
    else:
        resources["runtime"] = lambda wildcards, attempt: runtime_min * attempt
    gpu = config["resources"].get(rule, {}).get("gpu", 0)
    if gpu > 0 and rule == "evaluate":  # zero-filled evaluates no network: it needs no GPU
        resources["gpu"] = lambda wildcards: gpu if _evaluates_network(wildcards) else 0
    elif gpu > 0:
        resources["gpu"] = gpu
    return resources
