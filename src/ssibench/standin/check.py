"""Run a method's training steps, validation and evaluation batch on the stand-in device.

The stand-in is PyTorch's ``meta`` device: every operator runs its shape logic and no
arithmetic, so a step of any method costs milliseconds, and :class:`DeviceAudit` sees every
operator. (PyTorch's fake CUDA tensors would say ``cuda`` but cannot hold a module on a CPU-only
build: ``Module.to("cuda")`` asks for the CUDA runtime.) The rules that make code GPU-ready are
the same for ``meta`` as for ``cuda``: no value read on the host, no CPU tensor meeting device
data, no blocking upload. The random draws run for real on the CPU streams, so after a stand-in
epoch every stream is where a CPU epoch leaves it.

:func:`check_method` is what ``ssibench preflight`` and the unit suite run: the very functions
the trainer and the evaluation call (:func:`~ssibench.training.loop.run_epoch`,
:func:`~ssibench.training.loop.validation_sums`,
:func:`~ssibench.evaluation.batch.evaluate_batch`), each under a strict audit, then the planned
host reads after them (the epoch's log line and divergence check, the validation means) counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ssibench.config.records import parse_evaluate_config, parse_model_config, parse_train_config
from ssibench.data.identity import store_scenario
from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.evaluation.batch import evaluate_batch
from ssibench.evaluation.consistency import resolve_final_dc
from ssibench.evaluation.evaluate import evaluation_model
from ssibench.evaluation.metrics import DEFAULT_METRICS, check_metric_names
from ssibench.methods import get_method
from ssibench.standin.audit import DeviceAudit
from ssibench.training import build_network, resolved_config
from ssibench.training.loop import divergence_guarded, run_epoch, validation_sums
from ssibench.training.run import build_trainable

__all__ = ["STANDIN", "StandinReport", "check_method"]

#: The stand-in device.
STANDIN = torch.device("meta")

#: Training steps run per check: the second sees the optimiser's and the losses' state after one.
STEPS = 2


@dataclass(frozen=True)
class StandinReport:
    """What a stand-in check ran and the host syncs it counted outside the steps.

    Attributes:
        method: the method.
        steps: training steps run (0 for a method that trains nothing).
        planned_syncs: host reads after the audited parts (epoch log and divergence check,
            validation means): 2 per epoch and 1 per validation, as the trainer plans.
    """

    method: str
    steps: int
    planned_syncs: int


def _rows(data: MeasurementSet, n: int) -> MeasurementSet:
    """The first ``n`` rows of ``data`` (shared masks and maps kept whole)."""
    rows = slice(0, min(n, len(data)))
    per_sample = not data.shared_mask
    maps = data.coil_maps
    return replace(
        data,
        x=data.x[rows],
        y=data.y[rows],
        masks=data.masks[rows] if per_sample else data.masks,
        coil_maps=maps[rows] if maps is not None and maps.ndim == 4 else maps,
        index=None if data.index is None else data.index[rows],
        slice_index=None if data.slice_index is None else data.slice_index[rows],
    )


def _planned_reads(audit: DeviceAudit) -> int:
    return sum(f.kind == "host sync" for f in audit.findings)


def check_method(
    data_path: Path | str, method: str, spec: Mapping[str, Any] | None = None, seed: int = 0
) -> StandinReport:
    """Train ``STEPS`` steps, validate and evaluate one batch of ``method`` on the stand-in.

    Args:
        data_path: a measurement store (its train split, and its test split when it has ground
            truth; validation runs on the validation split, else on the train rows).
        method: a registered method (a plugin's once its module is loaded).
        spec: ``model``, ``train``, ``method_options`` (and ``scenario``, ``evaluate``,
            ``metrics``) slices as ``ssibench train --spec``; the scenario defaults to the
            store's own.
        seed: the training seed.

    Returns:
        What ran, and the planned host reads after the audited parts.

    Raises:
        DeviceAuditError: a host sync, blocking upload or CPU tensor inside a step, the
            validation pass or the evaluation batch; names the file and line.
    """
    spec = dict(spec or {})
    spec.setdefault("scenario", store_scenario(data_path))
    resolved = resolved_config(spec, method)
    config = parse_train_config(resolved["train"])
    planned = steps = 0
    train_rows = _rows(read_measurements(data_path, "train"), STEPS * config.batch_size)
    if get_method(method).trains:
        data = train_rows.to(STANDIN)
        run = build_trainable(method, seed, resolved, data, config, STANDIN)
        guarded = divergence_guarded(run, config)
        with DeviceAudit(f"{method}: training step"):
            term_sums, diverged = run_epoch(run, data, config.batch_size, 0, guarded)
        steps = -(-len(data) // config.batch_size)
        with DeviceAudit("planned", strict=False) as audit:
            (term_sums / len(data)).tolist()
            bool(diverged.any())
        planned += _planned_reads(audit)
        validation = read_measurements(data_path, "val")
        if validation.has_ground_truth:
            rows = _rows(validation if len(validation) else train_rows, config.batch_size)
            rows = rows.to(STANDIN)
            run.model.eval()
            with DeviceAudit(f"{method}: validation"):
                sums = validation_sums(run.model, rows, config.batch_size)
            with DeviceAudit("planned", strict=False) as audit:
                sums.tolist()
            planned += _planned_reads(audit)
    test = read_measurements(data_path, "test")
    if test.has_ground_truth and len(test):
        _check_evaluation(method, seed, resolved, spec, _rows(test, config.batch_size))
    return StandinReport(method, steps, planned)


def _check_evaluation(
    method: str,
    seed: int,
    resolved: Mapping[str, Any],
    spec: Mapping[str, Any],
    test: MeasurementSet,
) -> None:
    """One evaluation batch of ``method`` on the stand-in, as the evaluate job builds it."""
    model = None
    if get_method(method).trains:
        network = build_network(parse_model_config(resolved["model"]), seed)
        model = evaluation_model(network, method, seed, resolved, STANDIN, test.sigma)
    evaluation = parse_evaluate_config(spec.get("evaluate", {}))
    names = check_metric_names(list(spec.get("metrics", DEFAULT_METRICS)))
    data = test.to(STANDIN)
    with torch.no_grad(), DeviceAudit(f"{method}: evaluation batch"):
        evaluate_batch(
            model,
            data.x,
            data.y,
            data.physics(),
            names,
            resolve_final_dc(evaluation.final_dc, data.sigma),
        )
