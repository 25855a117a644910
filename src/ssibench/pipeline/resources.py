"""Memory and run time of each job, sized from the config (``resources`` in the config).

Train and evaluate jobs ask for a fixed part (``resources.<rule>.mem_mb`` / ``runtime_min``:
start-up, CUDA context, I/O) plus a part sized from the config; every request is multiplied by
the attempt number on a retry. Formulas: ``config/README.md``, "resources".

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
from ssibench.methods import METHODS
from ssibench.models.cost import FLOPS_FORWARD, FLOPS_TRAIN, model_cost
from ssibench.pipeline.checks import n_volumes, scenario_spec

__all__ = [
    "SIZED_RULES",
    "job_resources",
    "rule_resource",
    "sized_mem_mb",
    "sized_runtime_min",
]

Config = Mapping[str, Any]

BYTES_PER_FLOAT = 4
MB = 1e6
#: Network passes per image of the costliest losses (EI, MOI, MO-EI, the adversarial methods,
#: Noise2Inverse's evaluation; measured 2.5× plain MC); every method is sized with it.
LOSS_PASSES = 3
#: The measurement store is read into memory (the HDF5 read and the tensors).
DATA_COPIES = 2
#: Rules whose memory and run time are sized from the config.
SIZED_RULES = ("train", "evaluate")


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


def activation_mb(config: Config, scenario: str | None = None) -> float:
    """Memory (MB) of one training batch's activations (on the GPU, or in RAM on the CPU)."""
    floats = model_cost(config["model"], image_size(config, scenario))[1]
    return LOSS_PASSES * config["train"]["batch_size"] * BYTES_PER_FLOAT * floats / MB


def gflops(config: Config, rule: str) -> float:
    """Effective throughput (GFLOP/s) of one job of ``rule``: its GPU, else its CPU threads."""
    throughput = config["resources"]["throughput"]
    if config["resources"][rule]["gpu"] > 0:
        return throughput["gpu_gflops"]
    return throughput["cpu_gflops"] * rule_resource(config, rule, "threads")


def sized_mem_mb(config: Config, rule: str, scenario: str) -> float:
    """The config-sized part of a train or evaluate job's memory request (MB)."""
    if rule == "train":
        on_cpu = config["resources"]["train"]["gpu"] == 0
        return data_mb(config, scenario, ("train", "val")) + (
            activation_mb(config, scenario) if on_cpu else 0
        )
    return data_mb(config, scenario, ("test",))


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

    train and evaluate add the config-sized part to their fixed part (whole MB and minutes).
    Values are Snakemake resource callables ``(wildcards, attempt) -> int``.
    """
    mem_mb = rule_resource(config, rule, "mem_mb")
    runtime_min = rule_resource(config, rule, "runtime_min")
    resources: dict[str, Callable[..., int] | int]
    if rule in SIZED_RULES:

        def sized_mem(wildcards: Any, attempt: int) -> int:
            return math.ceil(mem_mb + sized_mem_mb(config, rule, wildcards.scenario)) * attempt

        def sized_runtime(wildcards: Any, attempt: int) -> int:
            scenario = getattr(wildcards, "scenario", None)
            sized = sized_runtime_min(config, rule, _method(wildcards), scenario)
            return math.ceil(runtime_min + sized) * attempt

        resources = {"mem_mb": sized_mem, "runtime": sized_runtime}
    else:
        resources = {
            "mem_mb": lambda wildcards, attempt: mem_mb * attempt,
            "runtime": lambda wildcards, attempt: runtime_min * attempt,
        }
    gpu = config["resources"].get(rule, {}).get("gpu", 0)
    if gpu > 0 and rule == "evaluate":  # zero-filled evaluates no network: it needs no GPU
        resources["gpu"] = lambda wildcards: gpu if _evaluates_network(wildcards) else 0
    elif gpu > 0:
        resources["gpu"] = gpu
    return resources
