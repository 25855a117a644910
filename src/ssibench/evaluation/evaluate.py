"""Evaluation of one run on the test split: per-slice metrics and saved sample reconstructions.

Every test slice is scored in both metric modes (``ssibench`` and ``fastmri``, see
:mod:`ssibench.evaluation.metrics`) for the method's reconstruction and for the zero-filled
baseline Aᴴy, so each ``metrics.csv`` carries its own baseline. The metrics are the spec's
``metrics`` list (default ``psnr, ssim, nmse``; a registered metric adds its column ``<name>`` and
``zf_<name>``). The first ``n_samples`` test slices are saved as magnitude images for the figures.
Each tenth of the test slices scored prints one progress line (silenced by ``ssibench --quiet``).

Provenance is checked: a trained model is evaluated only on the store it was trained on (its
record's ``training_hash``) and with the configuration it was trained with; a non-finite
reconstruction is an error. Every row of ``metrics.csv`` records the ``content_hash`` of the store
(``store_hash``) and the run's code hash (``code_hash``), which the tables check.

:func:`evaluate_checkpoint` scores a checkpoint outside the workflow
(:mod:`ssibench.evaluation.checkpoint`): a ``model.pt`` of ``ssibench train`` exactly as its run,
with the same checks, or a plain ``state_dict`` (no record: no provenance check, ``code_hash`` is
``unrecorded``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ssibench.config.records import (
    parse_evaluate_config,
    parse_model_config,
    parse_train_config,
)
from ssibench.data.identity import StoreIdentity, store_identity, store_scenario
from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.errors import ConfigError, DataFileError, rebuild_hint
from ssibench.evaluation.batch import evaluate_batch
from ssibench.evaluation.checkpoint import Checkpoint, load_file, load_weights, run_parts
from ssibench.evaluation.consistency import resolve_final_dc
from ssibench.evaluation.functional import METRIC_MODES
from ssibench.evaluation.metrics import check_metric_names
from ssibench.io import atomic_path
from ssibench.methods import get_method
from ssibench.methods.builders import build_losses, with_noise_level
from ssibench.precision import autocast_forward, configure_math
from ssibench.progress import progress
from ssibench.provenance import code_hash, component_modules, config_differences
from ssibench.rng import stream
from ssibench.training import MODEL, adapt, build_network, resolved_config

__all__ = [
    "evaluate",
    "evaluate_checkpoint",
    "evaluation_model",
    "load_trained_model",
    "score_network",
]

#: Provenance columns of every metrics.csv row.
PROVENANCE_COLUMNS = ("store_hash", "code_hash")
#: ``code_hash`` of the rows of a plain state_dict (no run record says which code trained it).
UNRECORDED_CODE = "unrecorded"


def _build_model(
    path: Path,
    weights: Mapping[str, Tensor],
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    fix: str,
    noise_sigma: float,
) -> nn.Module:
    """The network of ``spec`` with ``weights``, wrapped as ``method`` evaluates it (eval mode).

    The losses see the test data's noise level ``noise_sigma`` (:func:`with_noise_level`).
    """
    network = build_network(parse_model_config(spec.get("model", {})), seed)
    load_weights(network, weights, path, spec, fix)
    return evaluation_model(network, method, seed, spec, device, noise_sigma)


def evaluation_model(
    network: nn.Module,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    noise_sigma: float,
) -> nn.Module:
    """``network`` on ``device``, wrapped as ``method`` evaluates it, in eval mode.

    The run's math (TF32, determinism) and mixed precision are set as in its training; the
    losses see the test data's noise level ``noise_sigma`` (:func:`with_noise_level`) and draw
    from the ``eval`` stream of ``seed``.
    """
    train_config = parse_train_config(spec.get("train", {}))
    configure_math(train_config)  # the run's TF32 and determinism, as in its training
    autocast_forward(getattr(network, "denoiser", network), train_config.amp, device.type)
    scenario = with_noise_level(spec.get("scenario", {}), noise_sigma)
    losses = build_losses(method, scenario, spec.get("method_options"), stream(seed, "eval"))
    return adapt(network.to(device), losses).eval()


def load_trained_model(
    run_dir: Path,
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    identity: StoreIdentity | None = None,
    noise_sigma: float | None = None,
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
        raise DataFileError(f"{path}: no trained model; {rebuild_hint(path)}")
    parts = run_parts(load_file(path, device))
    if parts is None:
        raise DataFileError(
            f"{path}: no run record (not written by `ssibench train`); {rebuild_hint(path)}"
        )
    weights, record = parts
    _check_record(path, record, method, seed, spec, identity)
    if noise_sigma is None:  # no data at hand: the spec's level
        noise_sigma = float(spec.get("scenario", {}).get("sigma", 0.0))
    model = _build_model(path, weights, method, seed, spec, device, rebuild_hint(path), noise_sigma)
    return model, record


def _check_record(
    path: Path,
    record: Mapping[str, Any],
    method: str,
    seed: int,
    spec: Mapping[str, Any],
    identity: StoreIdentity | None,
    hint: str | None = None,
) -> None:
    """Refuse a model trained for another run, on other data or with another configuration."""
    hint = rebuild_hint(path) if hint is None else hint
    if record.get("method") != method or record.get("seed") != seed:
        raise DataFileError(
            f"{path}: trained for method {record.get('method')!r} seed {record.get('seed')}, not "
            f"{method!r} seed {seed}; {hint}"
        )
    trained_on = record.get("data", {}).get("training_hash")
    if identity is not None and trained_on != identity.training_hash:
        raise DataFileError(
            f"{path}: trained on other data (store training hash {str(trained_on)[:12]}), not on "
            f"{identity.path} ({identity.training_hash[:12]}); {hint}"
        )
    wanted = resolved_config(spec, method)
    changed = config_differences(record.get("config"), wanted)
    if changed:
        raise DataFileError(
            f"{path}: trained with another configuration ({'; '.join(changed)}); {hint}"
        )


def _test_split(data_path: Path, device: torch.device) -> tuple[StoreIdentity, MeasurementSet]:
    identity = store_identity(data_path)
    test_set = read_measurements(data_path, "test").to(device)
    if not test_set.has_ground_truth:
        raise DataFileError(
            f"{data_path}: {test_set.physics_kind} data (scenario {test_set.scenario!r}) are "
            "k-space undersampled at acquisition, with no ground truth to score a reconstruction "
            "against: such a scenario is for training only; score its runs' model.pt on a "
            "scenario with a fully sampled reference (ssibench evaluate --ckpt MODEL --data STORE "
            "--transfer, or external_runs with transfer: true)"
        )
    if len(test_set) == 0:
        raise DataFileError(f"{data_path}: the test split is empty; check data.split in the config")
    return identity, test_set


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
    names = check_metric_names(spec.get("metrics"))
    identity, test_set = _test_split(data_path, device)
    model, run_code = None, code_hash(method, component_modules(spec, trains=False))
    if get_method(method).trains:
        model, record = load_trained_model(
            run_dir, method, seed, spec, device, identity, noise_sigma=test_set.sigma
        )
        run_code = str(record.get("code", {}).get("hash", ""))
    outputs = (out_metrics, out_samples)
    run = (method, seed, spec, names)
    return _score(test_set, identity, run, model, run_code, run_dir / MODEL, *outputs)


@torch.no_grad()
def evaluate_checkpoint(
    data_path: Path,
    checkpoint: Checkpoint,
    device: torch.device,
    out_metrics: Path,
    out_samples: Path,
    transfer: bool = False,
) -> pd.DataFrame:
    """Score a checkpoint (:func:`read_checkpoint`) on the test split, as :func:`evaluate`.

    ``transfer`` scores a ``model.pt`` trained on *another* store (another scenario's data, e.g.
    k-space undersampled at acquisition, which has no ground truth of its own): its method, seed,
    model, train and method options are still checked, not its training data, and it is evaluated
    with this store's scenario (its noise level and physics).

    A ``model.pt`` of ``ssibench train`` gives exactly its run's ``metrics.csv``, after the same
    provenance checks. A plain state_dict is evaluated without them, with the store's scenario
    spec unless ``checkpoint.spec`` has one; its ``code_hash`` is ``unrecorded``.
    """
    spec, path = dict(checkpoint.spec), checkpoint.path
    method, seed = checkpoint.method, checkpoint.seed
    if not get_method(method).trains:
        raise ConfigError(f"{path}: method {method!r} has no network; evaluate it without --ckpt")
    names = check_metric_names(spec.get("metrics"))
    identity, test_set = _test_split(data_path, device)
    if checkpoint.record is None:
        run_code, fix = UNRECORDED_CODE, "pass the model spec of the run that trained it"
        if "scenario" not in spec:
            spec["scenario"] = store_scenario(data_path)
    else:
        run_code = str(checkpoint.record.get("code", {}).get("hash", ""))
        fix = f"{path} is damaged: copy it again from its run folder"
        store = checkpoint.record.get("data", {}).get("store")
        hint = (
            f"evaluate it on the store it was trained on ({store}) with its own spec (leave out "
            "the --spec keys that differ), or score it on this store's scenario with --transfer"
        )
        record = checkpoint.record
        if transfer:  # this store's scenario, not the training one; its data are not checked
            spec["scenario"] = store_scenario(data_path)
            config = {**record.get("config", {}), "scenario": spec["scenario"]}
            record = {**record, "config": config}
        _check_record(path, record, method, seed, spec, None if transfer else identity, hint)
    model = _build_model(path, checkpoint.weights, method, seed, spec, device, fix, test_set.sigma)
    run = (method, seed, spec, names)
    return _score(test_set, identity, run, model, run_code, path, out_metrics, out_samples)


@torch.no_grad()
def score_network(
    data_path: Path,
    model: nn.Module,
    name: str,
    seed: int,
    spec: Mapping[str, Any],
    device: torch.device,
    code: str,
    out_metrics: Path,
    out_samples: Path,
) -> pd.DataFrame:
    """Score a model in memory on the test split, as :func:`evaluate`; its rows name it ``name``.

    ``model`` is a network with its losses' wrappers, in eval mode, on ``device``
    (:func:`ssibench.api.score`); ``code`` is the code hash its rows record.
    """
    names = check_metric_names(spec.get("metrics"))
    identity, test_set = _test_split(data_path, device)
    run = (name, seed, spec, names)
    return _score(test_set, identity, run, model, code, Path(name), out_metrics, out_samples)


def _score(
    test_set: MeasurementSet,
    identity: StoreIdentity,
    run: tuple[str, int, Mapping[str, Any], tuple[str, ...]],
    model: nn.Module | None,
    run_code: str,
    model_path: Path,
    out_metrics: Path,
    out_samples: Path,
) -> pd.DataFrame:
    """Reconstruct the test split with ``model`` (Aᴴy if None) and write both outputs.

    ``run`` is (method, seed, spec, metric names); ``model_path`` is named in messages.
    """
    method, seed, spec, names = run
    batch_size = parse_train_config(spec.get("train", {})).batch_size
    evaluation = parse_evaluate_config(spec.get("evaluate", {}))
    n_samples = evaluation.n_samples
    final_dc = resolve_final_dc(evaluation.final_dc, test_set.sigma)
    gathered: dict[str, list[Tensor]] = {}
    n_test, tenths_shown = len(test_set), 0
    for start in range(0, n_test, batch_size):
        index = slice(start, min(start + batch_size, n_test))
        x, y, physics = test_set.x[index], test_set.y[index], test_set.physics(index)
        result = evaluate_batch(model, x, y, physics, names, final_dc)
        parts = {**result.scores, "finite": result.finite}
        kept = max(0, min(index.stop, n_samples) - start)
        parts.update({name: image[:kept] for name, image in result.magnitudes.items() if kept})
        for key, value in parts.items():
            gathered.setdefault(key, []).append(value)
        # at most ten lines however many batches: one each time another tenth is done
        if index.stop * 10 // n_test > tenths_shown:
            tenths_shown = index.stop * 10 // n_test
            progress(f"evaluate {method}: {index.stop}/{n_test} test slices")
    # the one transfer to the host, after the last batch
    values = {key: torch.cat(parts).cpu().numpy() for key, parts in gathered.items()}
    if not values["finite"].all():
        bad = np.flatnonzero(~values["finite"]).tolist()
        if model is None:  # Aᴴy of data checked finite on read: the store, not a model.pt
            raise DataFileError(
                f"{identity.path}: the zero-filled reconstruction Aᴴy of test slice(s) {bad} is "
                "not finite (measurements too large for float32); no metrics were written; "
                f"{rebuild_hint(identity.path)}"
            )
        raise DataFileError(
            f"{model_path}: the reconstruction of test slice(s) {bad} is not finite "
            f"(the network diverged); no metrics were written; {rebuild_hint(model_path)}"
        )
    rows = [
        {
            "scenario": test_set.scenario,
            "method": method,
            "seed": seed,
            "sample": sample,
            "mode": mode,
            **{k: float(values[f"{mode}/{k}"][sample]) for k in names},
            **{f"zf_{k}": float(values[f"{mode}/zf_{k}"][sample]) for k in names},
            "store_hash": identity.content_hash,
            "code_hash": run_code,
        }
        for sample in range(n_test)
        for mode in METRIC_MODES
    ]
    saved = {name: values[name] for name in ("target", "recon", "zero_filled") if name in values}
    metrics = (
        pd.DataFrame(rows).sort_values(["mode", "sample"], kind="stable").reset_index(drop=True)
    )
    with atomic_path(out_metrics) as tmp:
        metrics.to_csv(tmp, index=False)
    arrays = {name: images.astype(np.float32) for name, images in saved.items()}
    arrays["indices"] = np.arange(min(n_samples, len(test_set)), dtype=np.int64)
    with atomic_path(out_samples) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return metrics
