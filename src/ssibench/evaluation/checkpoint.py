"""Model files to evaluate: a run's ``model.pt``, a plain ``state_dict``, a DeepInverse MoDL.

``ssibench train`` writes ``model.pt`` as ``{"model": state_dict, "method", "seed", "spec",
"epochs", "ssibench_version", "record": run record}``; such a file says how to rebuild and evaluate
its network, so a copy evaluates exactly as its run. A plain ``state_dict`` (a mapping of tensors,
e.g. ``torch.save(network.state_dict(), path)``) needs the ``model`` config slice of the run that
trained it. Weights are checked layer by layer against the network the spec builds, so a wrong
spec is one message naming the layer and both shapes, not a traceback. A DeepInverse checkpoint
of SSIBench's MoDL is mapped to ssibench's layer names (:mod:`ssibench.interop.checkpoints`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.config.records import DEFAULT_MODEL, parse_model_config
from ssibench.errors import ConfigError, DataFileError, rebuild_hint
from ssibench.interop.checkpoints import deepinv_layout, from_deepinv
from ssibench.safe_load import load_torch_file

__all__ = ["Checkpoint", "load_file", "load_weights", "read_checkpoint", "run_parts"]

#: Layer names a mismatch message lists before it stops.
LISTED_LAYERS = 3


@dataclass(frozen=True)
class Checkpoint:
    """Weights to evaluate and the run they belong to.

    Attributes:
        path: the file read (named in messages).
        method: the method the network was trained with.
        seed: the training seed (it also seeds the ``eval`` stream of stochastic evaluation).
        spec: ``model``, ``train``, ``method_options``, ``scenario`` (and ``evaluate``,
            ``metrics``) slices, as the evaluate job's ``--spec``.
        weights: the network's ``state_dict``.
        record: the run record of ``ssibench train``; None for a plain state_dict.
    """

    path: Path
    method: str
    seed: int
    spec: Mapping[str, Any]
    weights: Mapping[str, Tensor]
    record: Mapping[str, Any] | None


def load_file(path: Path, device: torch.device, hint: str | None = None) -> object:
    """Load ``path`` onto ``device`` without running code from it (:func:`load_torch_file`).

    ``hint`` ends the message (default: the command that rebuilds ``path`` in the workflow).

    Raises:
        DataFileError: an unreadable file, or one holding anything but plain data.
    """
    hint = rebuild_hint(path) if hint is None else hint
    return load_torch_file(path, hint, map_location=device, what="model")


def _is_state_dict(state: object) -> bool:
    return isinstance(state, Mapping) and all(isinstance(v, Tensor) for v in state.values())


def run_parts(state: object) -> tuple[Mapping[str, Tensor], dict[str, Any]] | None:
    """(weights, run record) of a ``model.pt`` written by ``ssibench train``; None otherwise."""
    if not isinstance(state, dict):
        return None
    weights, record = state.get("model"), state.get("record")
    if not _is_state_dict(weights) or not isinstance(record, dict):
        return None
    return weights, record


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_LAYERS])
    return shown + (f", … ({len(names)} in all)" if len(names) > LISTED_LAYERS else "")


def load_weights(
    network: nn.Module, weights: Mapping[str, Tensor], path: Path, spec: Mapping[str, Any], fix: str
) -> None:
    """Load ``weights`` into ``network``; a layer set or shape that differs is a DataFileError."""
    built = f"the model built from spec {json.dumps(spec.get('model', {}), sort_keys=True)}"
    expected = network.state_dict()
    for name, tensor in expected.items():
        if name in weights and weights[name].shape != tensor.shape:
            raise DataFileError(
                f"{path}: layer {name} has shape {tuple(weights[name].shape)} in the checkpoint, "
                f"{tuple(tensor.shape)} in {built}; {fix}"
            )
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    if missing or unexpected:
        parts = (("missing", missing), ("unexpected", unexpected))
        found = [f"{what} {_listed(names)}" for what, names in parts if names]
        raise DataFileError(
            f"{path}: the checkpoint's layers do not match {built} ({'; '.join(found)}); {fix}"
        )
    network.load_state_dict(weights)


def _deepinv_checkpoint(
    path: Path,
    state: Mapping[str, Tensor],
    method: str | None,
    seed: int | None,
    spec: Mapping[str, Any] | None,
    model_spec: Mapping[str, Any] | None,
) -> Checkpoint:
    """A DeepInverse MoDL checkpoint: model spec read from its weights, ``method`` required."""
    weights, model = from_deepinv(state, path)
    if method is None:
        raise ConfigError(
            f"{path}: a DeepInverse checkpoint does not name the method that trained it; pass "
            "--method (e.g. --method ei for SSIBench's EI runs)"
        )
    inferred = {**model.model_spec, "step_order": "dc-first"}
    if model_spec is not None:
        try:
            given = parse_model_config(model_spec)
        except ConfigError as error:
            raise ConfigError(f"{path}: --model-spec: {error}") from None
        differ = [k for k, v in inferred.items() if getattr(given, k) != v]
        if given.name != DEFAULT_MODEL or differ:
            found = ", ".join(f"{k} {getattr(given, k)!r}" for k in differ or ["name"])
            raise ConfigError(
                f"{path}: --model-spec says {found}, but the file holds "
                f"{model.deepinv_call} (model spec {json.dumps(inferred)}); leave out "
                "--model-spec (a DeepInverse checkpoint's model is read from its weights)"
            )
    full = {**(spec or {}), "model": inferred}
    return Checkpoint(path, method, 0 if seed is None else seed, full, weights, None)


def read_checkpoint(
    path: Path,
    *,
    method: str | None = None,
    seed: int | None = None,
    spec: Mapping[str, Any] | None = None,
    model_spec: Mapping[str, Any] | None = None,
    device: torch.device | None = None,
) -> Checkpoint:
    """Read a ``model.pt`` of ``ssibench train``, a plain ``state_dict`` or a DeepInverse MoDL.

    A ``model.pt`` supplies its method, seed and spec (each slice of ``spec`` updates the stored
    one, e.g. ``{"evaluate": {"n_samples": 3}}``; a differing ``method`` or ``seed`` is refused;
    a changed setting of the run is refused when it is evaluated). A plain
    state_dict (a mapping of tensors) needs ``model_spec`` (the ``model`` config slice of the run
    that trained it, e.g. ``{"num_iter": 2, "scales": 2, "width": 8}``) and ``method``; ``seed``
    defaults to 0. A DeepInverse ``Trainer`` checkpoint (or bare ``state_dict``) of SSIBench's
    MoDL (:mod:`ssibench.interop.checkpoints`) needs ``method``; its model spec is read from the
    weights (a ``model_spec`` given is checked against it).

    Raises:
        DataFileError: a missing or unreadable file, or one that is neither of the two.
        ConfigError: a plain state_dict without ``model_spec`` or ``method``, a DeepInverse
            checkpoint without ``method`` or with a ``model_spec`` it contradicts, a
            ``model_spec`` for a ``model.pt`` (which records its own), a ``method``/``seed``
            other than the ``model.pt``'s, or a bad ``model_spec``; each message names the file
            and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such checkpoint; pass a run's model.pt (or a state_dict)")
    hint = (
        "pass a model.pt of `ssibench train`, a file written by torch.save(state_dict) or a "
        "DeepInverse MoDL checkpoint"
    )
    state = load_file(path, device or torch.device("cpu"), hint)
    deepinv = deepinv_layout(state, path)
    if deepinv is not None:
        return _deepinv_checkpoint(path, deepinv, method, seed, spec, model_spec)
    if isinstance(state, Mapping) and _is_state_dict(state):
        if model_spec is None:
            raise ConfigError(
                f"{path}: a plain state_dict (no run record, no model spec): pass --model-spec "
                "with the `model` config slice of the run that trained it, e.g. --model-spec "
                '\'{"num_iter": 3, "scales": 4, "width": 64}\''
            )
        if method is None:
            raise ConfigError(f"{path}: a plain state_dict does not name its method; pass --method")
        try:
            parse_model_config(model_spec)
        except ConfigError as error:
            raise ConfigError(f"{path}: --model-spec: {error}") from None
        full = {**(spec or {}), "model": dict(model_spec)}
        return Checkpoint(path, method, 0 if seed is None else seed, full, state, None)
    parts = run_parts(state)
    if parts is None or not isinstance(state, dict):
        keys = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
        raise DataFileError(
            f"{path}: neither a model.pt written by `ssibench train` (keys model, method, seed, "
            f"spec, record) nor a plain state_dict of tensors (found {keys}); {hint}"
        )
    weights, record = parts
    if model_spec is not None:
        raise ConfigError(
            f"{path}: a model.pt of `ssibench train` records its own model spec; leave out "
            "--model-spec (it is only for a plain state_dict)"
        )
    stored_method, stored_seed = state.get("method"), record.get("seed")
    if (
        not isinstance(stored_method, str)
        or not isinstance(stored_seed, int)
        or (isinstance(stored_seed, bool))
    ):
        raise DataFileError(
            f"{path}: its run record names method {stored_method!r} and seed {stored_seed!r} "
            f"(a method name and an integer seed are needed); {hint}"
        )
    if (method is not None and method != stored_method) or (
        seed is not None and seed != stored_seed
    ):
        raise ConfigError(
            f"{path}: holds the model of method {stored_method!r} seed {stored_seed}, not "
            f"{method or stored_method!r} seed {stored_seed if seed is None else seed}; leave out "
            "--method and --seed (they are read from the file)"
        )
    stored_spec = state.get("spec")
    if not isinstance(stored_spec, Mapping):
        raise DataFileError(
            f"{path}: its spec is a {type(stored_spec).__name__}, not a mapping; {hint}"
        )
    full = dict(stored_spec)
    for key, value in (spec or {}).items():  # a slice is updated, not replaced
        stored = full.get(key)
        both = isinstance(stored, Mapping) and isinstance(value, Mapping)
        full[key] = {**stored, **value} if both else value
    return Checkpoint(path, str(stored_method), int(stored_seed), full, weights, record)
