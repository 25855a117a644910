"""The check before any job that a config's sizes fit the machines it runs on.

Each job's memory estimate (:mod:`ssibench.pipeline.resources`) is compared with
``resources.max_mem_mb`` and, for a GPU job, ``resources.max_gpu_mem_mb``, so a config that
asks for a petabyte fails when the workflow starts, naming the job and the sizes it grows with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssibench.config import PHYSICS_KINDS
from ssibench.data.limits import check_config_sizes
from ssibench.errors import CONFIG_HINT, ConfigError
from ssibench.pipeline.checks import check_config_values, n_volumes, scenario_spec
from ssibench.pipeline.external_runs import check_external_runs
from ssibench.pipeline.resources import (
    SIZED_RULES,
    acquired_coils,
    batch_size,
    gpu_mem_mb,
    image_size,
    job_mem_mb,
)

__all__ = ["DEFAULT_MAX_GPU_MEM_MB", "DEFAULT_MAX_MEM_MB", "check_config", "check_job_memory"]

Config = Mapping[str, Any]

#: Defaults of ``resources.max_mem_mb`` (1 TB: beyond any one node) and ``max_gpu_mem_mb`` (an
#: 80 GB GPU); a config whose jobs would need more is refused before any job runs.
DEFAULT_MAX_MEM_MB = 1_000_000
DEFAULT_MAX_GPU_MEM_MB = 80_000


def _sizes(config: Config, rule: str, scenario: str | None) -> str:
    """The config values a job's memory grows with, as ``key value`` pairs for a message."""
    data = config["data"]
    sizes = [f"data.image_size {list(data['image_size'])}", f"{n_volumes(data)} volumes"]
    if rule == "demo_data":
        sizes += [f"data.demo.n_slices {data['demo']['n_slices']}"]
        sizes += [f"data.demo.n_coils {data['demo']['n_coils']}"]
    if scenario is not None:
        spec, key = scenario_spec(config, scenario), f"scenarios.{scenario}"
        kind = PHYSICS_KINDS[spec["physics"]]
        if kind.acquired:
            sizes = [f"{key}.crop {list(image_size(config, scenario))}", *sizes[1:]]
            sizes += [f"{key}.filter.n_coils {acquired_coils(spec)}"]
            sizes += [f"{key}.slices_per_volume {spec['slices_per_volume']}"]
        for name in ("n_coils", "n_frames"):
            if name in spec:
                sizes += [f"{key}.{name} {spec[name]}"]
    if rule in SIZED_RULES:
        sizes += [f"train.batch_size {batch_size(config)}"]
    return ", ".join(sizes)


def _memory_jobs(config: Config) -> list[tuple[str, str | None]]:
    """(rule, scenario) of every kind of job the config runs, data jobs first."""
    jobs: list[tuple[str, str | None]] = [("demo_data", None), ("extract", None)]
    for scenario, given in config["scenarios"].items():
        jobs += [("simulate", scenario), ("train", scenario)]
        if PHYSICS_KINDS[given["physics"]].ground_truth:
            jobs.append(("evaluate", scenario))
    return jobs


def check_job_memory(config: Config) -> None:
    """Refuse, before any job runs, a config whose jobs would need more memory than allowed.

    Sizes over their maxima are refused first (:func:`~ssibench.data.limits.check_config_sizes`).
    Each job's first-attempt request (:func:`job_mem_mb`) must fit ``resources.max_mem_mb``
    (default :data:`DEFAULT_MAX_MEM_MB`), and a train or evaluate job with a GPU must fit
    ``resources.max_gpu_mem_mb`` (:func:`gpu_mem_mb`; default :data:`DEFAULT_MAX_GPU_MEM_MB`).

    Raises:
        ConfigError: naming the job, the memory it needs, the config values it grows with, the
            maximum, and the keys that lower the need or raise the maximum.
    """
    check_config_sizes(config)  # first: the estimates below multiply them
    resources = config["resources"]
    limit = resources.get("max_mem_mb", DEFAULT_MAX_MEM_MB)
    gpu_limit = resources.get("max_gpu_mem_mb", DEFAULT_MAX_GPU_MEM_MB)
    for rule, scenario in _memory_jobs(config):
        of = f"a {rule} job" + (f" of scenario {scenario!r}" if scenario else "")
        need = job_mem_mb(config, rule, scenario)
        if need > limit:
            raise ConfigError(
                f"resources.max_mem_mb: {of} would need {need:,.0f} MB of memory "
                f"({_sizes(config, rule, scenario)}), over the maximum of {limit:,} MB; lower "
                "those sizes, or raise resources.max_mem_mb if your nodes have that memory; "
                f"{CONFIG_HINT}"
            )
        gpu = resources.get(rule, {}).get("gpu", 0) if rule in SIZED_RULES else 0
        need = gpu_mem_mb(config, rule, scenario) if gpu and scenario else 0
        if need > gpu_limit:
            raise ConfigError(
                f"resources.max_gpu_mem_mb: {of} would need {need:,.0f} MB of GPU memory "
                f"({_sizes(config, rule, scenario)}), over the maximum of {gpu_limit:,} MB; lower "
                "those sizes, or raise resources.max_gpu_mem_mb if your GPUs have that memory; "
                f"{CONFIG_HINT}"
            )


def check_config(config: Mapping[str, Any]) -> None:
    """Every check before any job: the config's values, then its jobs' memory.

    :func:`~ssibench.pipeline.checks.check_config_values`, the ``external_runs``
    (:func:`~ssibench.pipeline.external_runs.check_external_runs`), then what the sizes add up
    to in each job against ``resources`` (:func:`check_job_memory`).

    Raises:
        ConfigError: the first problem, naming the key, the value and what is allowed.
    """
    check_config_values(config)
    check_external_runs(config)
    check_job_memory(config)
