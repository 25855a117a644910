"""The benchmark from Python, in four calls: load a store, fit, score, compare.

::

    import ssibench
    data = ssibench.load_store("data/measurements/demo-40x40/single-coil.h5")
    run = ssibench.fit(MyNet(), [MCLoss(), TVLoss()], data, epochs=5, out_dir="runs/mine")
    scores = ssibench.score(run, data)            # per-slice metrics, both metric modes
    ssibench.compare(scores, "results/demo-40x40", "single-coil")  # beside the leaderboard

:func:`fit` takes a network with losses of one's own, or a registered method by name
(``ssibench.fit("ei", data, ...)``, exactly ``ssibench train``). Either way it is the workflow's
trainer: the optimiser and schedule of :mod:`ssibench.training.assemble`, the ``shuffle`` and
``loss`` streams of the seed, a checkpoint after every epoch, the divergence guard, a locked run
folder. Run again in the same folder it resumes the checkpoint when the run's identity matches
(configuration, training data, code) and says why it starts over otherwise. :func:`score` is the
evaluate job, :func:`compare` the leaderboard with the run among the others and a paired test
against it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ssibench.config.records import parse_train_config, without_logging
from ssibench.data.identity import store_identity, store_scenario
from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.device import resolve_device
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.evaluate import evaluate, load_trained_model, score_network
from ssibench.io import atomic_path, atomic_write_text
from ssibench.locks import run_lock
from ssibench.losses import Loss
from ssibench.methods import METHODS, get_method
from ssibench.provenance import code_hash
from ssibench.training import CHECKPOINT, RUN_RECORD, TRAIN_LOG, RunCheckpoint
from ssibench.training import fit as fit_loop
from ssibench.training.assemble import plain_trainable, training_state
from ssibench.training.run import open_sinks, train
from ssibench.training.step import adapt, unwrap

__all__ = ["Run", "Store", "compare", "fit", "load_store", "score"]

#: ``train`` settings :func:`fit` uses unless given (``ssibench train``'s own defaults otherwise).
FIT_DEFAULTS: Mapping[str, Any] = {"epochs": 5, "batch_size": 8, "lr": 1e-3}
#: Weights of a network of one's own, in its run folder (a ``state_dict``).
WEIGHTS = "weights.pt"
#: The code a network of one's own trains with: the core and the plain MC step's.
_CORE_METHOD = "mc"


@dataclass(frozen=True)
class Store:
    """A measurement store: its path, scenario and splits (read on first use, kept in memory).

    Attributes:
        path: the ``.h5`` file.
        scenario: the scenario spec it was simulated with (``physics``, ``sigma``, ...).
    """

    path: Path
    scenario: Mapping[str, Any]

    @cached_property
    def train(self) -> MeasurementSet:
        """The training split."""
        return read_measurements(self.path, "train")

    @cached_property
    def val(self) -> MeasurementSet:
        """The validation split (may be empty)."""
        return read_measurements(self.path, "val")

    @cached_property
    def test(self) -> MeasurementSet:
        """The test split."""
        return read_measurements(self.path, "test")


def load_store(path: Path | str) -> Store:
    """The measurement store at ``path`` (its identity and hashes checked now, data on first use).

    Raises:
        DataFileError: a missing, unreadable or corrupt store, naming it and the fix.
    """
    path = Path(path)
    store_identity(path)
    return Store(path, store_scenario(path))


@dataclass
class Run:
    """A trained run.

    Attributes:
        out_dir: its folder (``checkpoint.pt``, ``train_log.csv``, ``run.json``, and ``model.pt``
            for a method, ``weights.pt`` for a network of one's own).
        name: the method's name, or the run's own name.
        seed: the training seed.
        store: the store it was trained on.
        spec: the job spec (``model``, ``train``, ``method_options``, ``scenario``).
        network: the trained network.
        losses: the losses of a network of one's own (None for a method).
        log: one row per epoch (``train_log.csv``).
    """

    out_dir: Path
    name: str
    seed: int
    store: Store
    spec: dict[str, Any]
    network: nn.Module
    losses: list[Loss] | None = None
    log: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def method(self) -> str | None:
        """The registered method trained, or None for a network with losses of one's own."""
        return None if self.losses is not None else self.name


def _device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


def _train_spec(epochs: int, train: Mapping[str, Any]) -> dict[str, Any]:
    spec = {**FIT_DEFAULTS, **train, "epochs": epochs}
    parse_train_config(spec)  # names a bad key or value now, before anything is read
    return spec


def fit(
    model: nn.Module | str,
    losses: Sequence[Loss] | Store | None = None,
    data: Store | None = None,
    *,
    out_dir: Path | str,
    epochs: int = 5,
    seed: int = 0,
    name: str = "mine",
    device: str | torch.device = "auto",
    model_spec: Mapping[str, Any] | None = None,
    method_options: Mapping[str, Any] | None = None,
    **train: Any,
) -> Run:
    """Train a network on ``losses``, or a registered method, on the store ``data``.

    ``fit(network, [MCLoss(), ...], data, ...)`` trains the network on Σᵢ lossesᵢ;
    ``fit("ei", data, ...)`` trains the method as ``ssibench train`` does (``model_spec`` is the
    ``model`` config slice, ``method_options`` its options), writing ``model.pt``.

    Args:
        model: the network (called ``network(y, physics)``), or a method's name.
        losses: the losses (with a network); with a method name, the store.
        data: the store (:func:`load_store`); with a method name, leave it out.
        out_dir: the run folder; a finished or interrupted run there is resumed if it matches.
        epochs: training epochs.
        seed: the seed of the ``shuffle`` and ``loss`` streams (and a method's network init).
        name: the run's name in its records and the tables (a network of one's own).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (or a ``torch.device``).
        model_spec: a method's ``model`` config slice (default: the SSIBench MoDL).
        method_options: a method's option overrides, e.g. ``{"split_ratio": 0.5}``.
        train: other ``train`` settings (``batch_size``, ``lr``, ``lr_milestones``, ``amp``, ...).

    Raises:
        ConfigError: a bad argument or setting, naming it.
        TrainingDivergedError: a non-finite loss or gradient.
    """
    if isinstance(model, str):
        if data is not None or not isinstance(losses, Store):
            raise ConfigError(
                f"fit({model!r}, data, ...): a method's losses are its own; pass the store second"
            )
        return _fit_method(
            model,
            losses,
            Path(out_dir),
            _train_spec(epochs, train),
            seed,
            _device(device),
            model_spec or {},
            method_options or {},
        )
    if not isinstance(data, Store) or losses is None or isinstance(losses, Store):
        raise ConfigError("fit(network, losses, data, ...): pass the losses and a load_store()")
    if model_spec is not None or method_options is not None:
        raise ConfigError("fit: model_spec and method_options are a method's; leave them out")
    return _fit_network(
        model,
        list(losses),
        data,
        Path(out_dir),
        _train_spec(epochs, train),
        seed,
        name,
        _device(device),
    )


def _fit_method(
    method: str,
    store: Store,
    out_dir: Path,
    train_spec: dict[str, Any],
    seed: int,
    device: torch.device,
    model_spec: Mapping[str, Any],
    options: Mapping[str, Any],
) -> Run:
    if not get_method(method).trains:
        raise ConfigError(f"fit: method {method!r} trains nothing; score it directly")
    spec = {
        "model": dict(model_spec),
        "train": train_spec,
        "method_options": dict(options),
        "scenario": dict(store.scenario),
    }
    train(store.path, out_dir, method, seed, spec, device)
    model, _ = load_trained_model(out_dir, method, seed, spec, device)
    log = pd.read_csv(out_dir / TRAIN_LOG)
    return Run(out_dir, method, seed, store, spec, unwrap(model), None, log)


def _source_digest(value: object) -> str:
    """A class's module, name and source (its name alone where no source can be read)."""
    kind = type(value)
    try:
        source = inspect.getsource(kind)
    except (OSError, TypeError):  # defined where no source is kept (an exec'd string)
        source = ""
    return f"{kind.__module__}.{kind.__qualname__}\n{source}"


def _network_identity(
    network: nn.Module, losses: Sequence[Loss], train_spec: Mapping[str, Any]
) -> dict[str, Any]:
    """What a checkpoint of a network of one's own must share: code, layers, losses, settings."""
    digest = hashlib.sha256(code_hash(_CORE_METHOD).encode())
    for part in (network, *losses):
        digest.update(_source_digest(part).encode())
    layers = {name: list(t.shape) for name, t in network.state_dict().items()}
    return {
        "model": {"class": type(network).__qualname__, "layers": layers},
        "losses": [repr(loss) for loss in losses],
        "train": {k: v for k, v in without_logging(train_spec).items() if k != "epochs"},
        "code_hash": digest.hexdigest(),
    }


def _fit_network(
    network: nn.Module,
    losses: list[Loss],
    store: Store,
    out_dir: Path,
    train_spec: dict[str, Any],
    seed: int,
    name: str,
    device: torch.device,
) -> Run:
    if name in METHODS:
        raise ConfigError(f"fit: name {name!r} is a method's; name the run otherwise")
    config = parse_train_config(train_spec)
    identity = store_identity(store.path)
    described = _network_identity(network, losses, train_spec)
    run_id = {
        "config": {k: v for k, v in described.items() if k != "code_hash"},
        "training_hash": identity.training_hash,
        "code_hash": described["code_hash"],
    }
    with run_lock(out_dir):
        train_set = store.train.to(device)
        val_set = store.val.to(device) if len(store.val) else None
        state = training_state(network.to(device), config, device, seed)
        run = plain_trainable(network, losses, state)
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = RunCheckpoint(out_dir / CHECKPOINT, name, seed, run_id)
        sinks = open_sinks(config.log_to, out_dir)  # train.log_to, as for a method's run
        try:
            log, _ = fit_loop(
                run, train_set, val_set, config, checkpoint, out_dir / TRAIN_LOG, name, sinks
            )
        finally:
            for sink in sinks:
                sink.close()
        record = {
            "name": name,
            "seed": seed,
            "config": run_id["config"],
            "data": {"store": str(store.path), "training_hash": identity.training_hash},
            "code": {"hash": run_id["code_hash"]},
        }
        with atomic_path(out_dir / WEIGHTS) as tmp:
            torch.save(network.state_dict(), tmp)
        atomic_write_text(out_dir / RUN_RECORD, json.dumps(record, indent=2, default=str) + "\n")
    spec = {"train": train_spec, "scenario": dict(store.scenario)}
    return Run(out_dir, name, seed, store, spec, network, losses, pd.DataFrame(log))


def score(
    run: Run,
    data: Store | None = None,
    *,
    device: str | torch.device = "auto",
    n_samples: int = 5,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-slice metrics of ``run`` on the test split of ``data`` (default: its own store).

    The evaluate job's scores: every test slice in both metric modes (``ssibench``, ``fastmri``)
    with the zero-filled baseline beside; ``metrics.csv`` and ``samples.npz`` are written to the
    run folder. A method's run is scored exactly as ``ssibench evaluate`` scores its ``model.pt``.

    Raises:
        DataFileError: a store the run was not trained on (a method's run), naming both.
    """
    data = run.store if data is None else data
    device = _device(device)
    extra = {"evaluate": {"n_samples": n_samples}}
    if metrics is not None:
        extra["metrics"] = list(metrics)
    outputs = (run.out_dir / "metrics.csv", run.out_dir / "samples.npz")
    if run.method is not None:
        spec = {**run.spec, **extra}
        return evaluate(data.path, run.method, run.out_dir, run.seed, spec, device, *outputs)
    model = adapt(run.network.to(device), run.losses or []).eval()
    spec = {**run.spec, **extra}
    code = json.loads((run.out_dir / RUN_RECORD).read_text())["code"]["hash"]
    return score_network(data.path, model, run.name, run.seed, spec, device, code, *outputs)


def compare(
    scores: pd.DataFrame,
    results: Path | str,
    scenario: str,
    *,
    store: Path | str | None = None,
    label: str | None = None,
) -> pd.DataFrame:
    """The leaderboard of ``scenario`` in the finished ``results`` folder, with ``scores`` in it.

    Every run's ``metrics.csv`` under ``results/runs/<scenario>/`` is read with the tables'
    checks (same store, exactly its test slices); ``scores`` (from :func:`score`) must be of the
    same store. The result is :func:`ssibench.report.leaderboard.leaderboard_table` with the run
    as an external row, plus ``psnr_p_vs_run`` and ``ssim_p_vs_run``: the paired Wilcoxon p-value
    of each method's per-slice metric against the run's.

    Args:
        scores: per-slice metrics of one run (:func:`score`).
        results: the workflow's results folder of the data set, e.g. ``results/demo-40x40``.
        scenario: the scenario whose leaderboard it joins.
        store: the scenario's measurement store (default: the workflow's,
            ``data/measurements/<data set>/<scenario>.h5`` beside ``results``).
        label: the run's label in the table (default: its name, marked as yours).

    Raises:
        DataFileError: no run of ``scenario`` in ``results``, or metrics of another store.
    """
    from ssibench.report.inputs import check_metrics_table, read_metrics
    from ssibench.report.leaderboard import EXTERNAL_LABEL, LEADERBOARD_MODE, leaderboard_table
    from ssibench.report.stats import paired_p_values, per_slice

    results = Path(results)
    runs = results / "runs" / scenario
    files = sorted(runs.glob("*/seed*/metrics.csv")) + sorted(runs.glob("external/*/metrics.csv"))
    if not files:
        raise DataFileError(
            f"{runs}: no metrics.csv of any run; finish the workflow first "
            f"(snakemake --cores all {results}/tables/leaderboard_{scenario}.csv)"
        )
    if store is None:
        store = results.parent.parent / "data" / "measurements" / results.name / f"{scenario}.h5"
    frames = read_metrics(files, scenario, Path(store))
    name = str(scores["method"].iloc[0])
    run_name = f"{name} (yours)"
    mine = scores.assign(method=run_name, **{EXTERNAL_LABEL: label or run_name})
    fix = "score the run on this store"
    check_metrics_table(mine, Path("scores"), scenario, store_identity(store), fix)
    everything = pd.concat([*frames, mine], ignore_index=True)
    table = leaderboard_table(everything)
    main = everything[everything["mode"] == LEADERBOARD_MODE]
    for metric in ("psnr", "ssim"):
        p_values = paired_p_values(per_slice(main, metric), run_name)
        table[f"{metric}_p_vs_run"] = table["method"].map(p_values).astype("float64")
    return table
