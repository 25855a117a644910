"""Evaluation of one run on the test split: per-slice metrics and saved sample reconstructions.

Every test slice is scored in both metric modes (``ssibench`` and ``fastmri``, see
:mod:`ssibench.metrics`) for the method's reconstruction and for the zero-filled baseline Aᴴy, so
each ``metrics.csv`` carries its own baseline. The first ``n_samples`` test slices are saved as
magnitude images for the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ssibench.data.measurements import read_measurements
from ssibench.device import autocast_forward
from ssibench.errors import DataFileError
from ssibench.io import atomic_path
from ssibench.methods import build_losses, get_method
from ssibench.metrics import METRIC_MODES, complex_abs, image_metrics
from ssibench.rng import stream
from ssibench.train import MODEL, adapt, build_network, parse_model_config

__all__ = ["evaluate", "load_trained_model"]

METRIC_COLUMNS = ("psnr", "ssim", "nmse")


def load_trained_model(
    run_dir: Path,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
) -> nn.Module:
    """Rebuild the network of a finished run, wrapped as its method evaluates it, in eval mode.

    Stochastic evaluation (e.g. Noise2Inverse's average over random splits) draws from the ``eval``
    stream, so a run's metrics are reproducible. The denoiser runs with the run's mixed precision
    setting (``train.amp``), as in training and validation.
    """
    path = run_dir / MODEL
    if not path.exists():
        raise DataFileError(f"{path}: no trained model; train it first with snakemake {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # truncated or foreign file
        raise DataFileError(f"{path}: cannot read the model ({error}); retrain it") from error
    network = build_network(parse_model_config(spec.get("model", {})), seed)
    network.load_state_dict(state["model"])
    amp = str(spec.get("train", {}).get("amp", "none"))
    autocast_forward(network.denoiser, amp, device.type)
    losses = build_losses(
        method, spec.get("scenario", {}), spec.get("method_options"), stream(seed, "eval", device)
    )
    return adapt(network.to(device), losses).eval()


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
    test_set = read_measurements(data_path, "test").to(device)
    model = (
        load_trained_model(run_dir, method, seed, spec, device)
        if get_method(method).trains
        else None
    )
    batch_size = int(spec.get("train", {}).get("batch_size", 4))
    n_samples = int(spec.get("evaluate", {}).get("n_samples", 5))
    rows: list[dict[str, Any]] = []
    saved: dict[str, list[np.ndarray]] = {"target": [], "recon": [], "zero_filled": []}
    for index in torch.arange(len(test_set)).split(batch_size):
        x, y, physics = test_set.x[index], test_set.y[index], test_set.physics(index)
        zero_filled = physics.A_adjoint(y)
        recon = model(y, physics) if model is not None else zero_filled
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
