"""Evaluation of one run on the test split: per-slice metrics and saved sample reconstructions.

Every test slice is scored in both metric modes (``ssibench`` and ``fastmri``, see
:mod:`ssibench.evaluation.metrics`) for the method's reconstruction and for the zero-filled
baseline Aᴴy, so each ``metrics.csv`` carries its own baseline. The first ``n_samples`` test slices
are saved as magnitude images for the figures.

Provenance is checked: a trained model is evaluated only on the store it was trained on (its
record's ``training_hash``) and with the configuration it was trained with; a non-finite
reconstruction is an error. Every row of ``metrics.csv`` records the ``content_hash`` of the store
(``store_hash``) and the run's code hash (``code_hash``), which the tables check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ssibench.config.records import (
    parse_evaluate_config,
    parse_model_config,
    parse_train_config,
)
from ssibench.data.identity import StoreIdentity, store_identity
from ssibench.data.measurements import read_measurements
from ssibench.device import autocast_forward
from ssibench.errors import DataFileError, rebuild_hint
from ssibench.evaluation.metrics import METRIC_MODES, complex_abs, image_metrics
from ssibench.io import atomic_path
from ssibench.methods import get_method
from ssibench.methods.builders import build_losses
from ssibench.provenance import code_hash, config_differences
from ssibench.rng import stream
from ssibench.training import MODEL, adapt, build_network, resolved_config

__all__ = ["evaluate", "load_trained_model"]

METRIC_COLUMNS = ("psnr", "ssim", "nmse")
#: Provenance columns of every metrics.csv row.
PROVENANCE_COLUMNS = ("store_hash", "code_hash")


def load_trained_model(
    run_dir: Path,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    identity: StoreIdentity | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of a finished run, wrapped as its method evaluates it, in eval mode.

    Stochastic evaluation (e.g. Noise2Inverse's average over random splits) draws from the ``eval``
    stream, so a run's metrics are reproducible. The denoiser runs with the run's mixed precision
    setting (``train.amp``), as in training and validation.

    Returns:
        The model and the run's record (``run.json``).

    Raises:
        DataFileError: for a missing or unreadable ``model.pt``, one without a run record, one
            trained on another store than ``identity`` or with another configuration than
            ``spec``; the message names the difference and the command that retrains it.
    """
    path = run_dir / MODEL
    if not path.exists():
        raise DataFileError(f"{path}: no trained model; train it first with `snakemake {path}`")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # truncated or foreign file
        raise DataFileError(
            f"{path}: cannot read the model ({error}); {rebuild_hint(path)}"
        ) from error
    record = state.get("record") if isinstance(state, dict) else None
    if not isinstance(record, dict):
        raise DataFileError(
            f"{path}: no run record (not written by `ssibench train`); {rebuild_hint(path)}"
        )
    _check_record(path, record, method, seed, spec, identity)
    network = build_network(parse_model_config(spec.get("model", {})), seed)
    network.load_state_dict(state["model"])
    autocast_forward(network.denoiser, parse_train_config(spec.get("train", {})).amp, device.type)
    losses = build_losses(
        method, spec.get("scenario", {}), spec.get("method_options"), stream(seed, "eval", device)
    )
    return adapt(network.to(device), losses).eval(), record


def _check_record(
    path: Path,
    record: dict[str, Any],
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    identity: StoreIdentity | None,
) -> None:
    """Refuse a model trained for another run, on other data or with another configuration."""
    if record.get("method") != method or record.get("seed") != seed:
        raise DataFileError(
            f"{path}: trained for method {record.get('method')!r} seed {record.get('seed')}, not "
            f"{method!r} seed {seed}; {rebuild_hint(path)}"
        )
    trained_on = record.get("data", {}).get("training_hash")
    if identity is not None and trained_on != identity.training_hash:
        raise DataFileError(
            f"{path}: trained on other data (store training hash {str(trained_on)[:12]}), not on "
            f"{identity.path} ({identity.training_hash[:12]}); {rebuild_hint(path)}"
        )
    wanted = resolved_config(spec, method)
    changed = config_differences(record.get("config"), wanted)
    if changed:
        raise DataFileError(
            f"{path}: trained with another configuration ({'; '.join(changed)}); "
            f"{rebuild_hint(path)}"
        )


@torch.no_grad()
def evaluate(
    data_path: Path,
    method: str,
    run_dir: Path,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    out_metrics: Path,
    out_samples: Path,
) -> pd.DataFrame:
    """Score ``method`` on the test split, write ``metrics.csv`` and ``samples.npz``.

    The zero-filled method reconstructs with Aᴴy and needs no run directory content.

    Returns:
        The per-slice metrics (the rows of ``metrics.csv``).
    """
    identity = store_identity(data_path)
    test_set = read_measurements(data_path, "test").to(device)
    if len(test_set) == 0:
        raise DataFileError(f"{data_path}: the test split is empty; check data.split in the config")
    model, run_code = None, code_hash(method)
    if get_method(method).trains:
        model, record = load_trained_model(run_dir, method, seed, spec, device, identity)
        run_code = str(record.get("code", {}).get("hash", ""))
    batch_size = parse_train_config(spec.get("train", {})).batch_size
    n_samples = parse_evaluate_config(spec.get("evaluate", {})).n_samples
    rows: list[dict[str, Any]] = []
    saved: dict[str, list[np.ndarray]] = {"target": [], "recon": [], "zero_filled": []}
    for index in torch.arange(len(test_set)).split(batch_size):
        x, y, physics = test_set.x[index], test_set.y[index], test_set.physics(index)
        zero_filled = physics.A_adjoint(y)
        recon = model(y, physics) if model is not None else zero_filled
        finite = torch.isfinite(recon).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = index[~finite.cpu()].tolist()
            raise DataFileError(
                f"{run_dir / MODEL}: the reconstruction of test slice(s) {bad} is not finite "
                f"(the network diverged); no metrics were written; {rebuild_hint(run_dir / MODEL)}"
            )
        per_mode = {
            mode: (image_metrics(recon, x, mode), image_metrics(zero_filled, x, mode))
            for mode in METRIC_MODES
        }
        for mode, (scores, baseline) in per_mode.items():
            values = {k: scores[k].cpu().numpy() for k in METRIC_COLUMNS}
            base = {k: baseline[k].cpu().numpy() for k in METRIC_COLUMNS}
            for position, sample in enumerate(index.tolist()):
                rows.append(
                    {
                        "scenario": test_set.scenario,
                        "method": method,
                        "seed": seed,
                        "sample": sample,
                        "mode": mode,
                        **{k: float(values[k][position]) for k in METRIC_COLUMNS},
                        **{f"zf_{k}": float(base[k][position]) for k in METRIC_COLUMNS},
                        "store_hash": identity.content_hash,
                        "code_hash": run_code,
                    }
                )
        keep = index < n_samples
        if keep.any():
            for name, image in (("target", x), ("recon", recon), ("zero_filled", zero_filled)):
                saved[name].append(complex_abs(image[keep.to(image.device)])[:, 0].cpu().numpy())
    metrics = (
        pd.DataFrame(rows).sort_values(["mode", "sample"], kind="stable").reset_index(drop=True)
    )
    with atomic_path(out_metrics) as tmp:
        metrics.to_csv(tmp, index=False)
    arrays = {
        name: np.concatenate(parts).astype(np.float32) for name, parts in saved.items() if parts
    }
    arrays["indices"] = np.arange(min(n_samples, len(test_set)), dtype=np.int64)
    with atomic_path(out_samples) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return metrics
