"""DeepInverse MoDL checkpoints: read into ssibench's MoDL, and written from a run's model.pt.

SSIBench (Wang, McDonagh, Davies, 2025) trains ``deepinv.models.MoDL(denoiser=deepinv.models.UNet(
2, 2, scales=4, batch_norm=False), num_iter=3)`` with DeepInverse's ``Trainer``, which saves
``torch.save({"state_dict": model.state_dict(), "epoch": e, "optimizer": ..., "scheduler": ...,
"loss": ..., ...})`` (``ckp_<e>.pth.tar``, e counted from 0). Layout of that ``state_dict``
(DeepInverse 0.5.0; K iterations, S scales, P = ``prior.0.denoiser.``), DeepInverse → ssibench
:class:`~ssibench.models.MoDL`:

* ``params_algo.stepsize.k`` (shape ()) → ``step_sizes[k]`` of ``(K,)``; its twin
  ``init_params_algo.stepsize.k`` is the same tensor (checked equal);
* ``[init_]params_algo.lambda.k``, ``.g_param.k`` → dropped: the PnP prior never reads them;
* ``P Conv{k+1}.{0,2}`` → ``denoiser.encoders.k.{0,2}`` (level k = 0 … S−1);
* ``P Up{S−j}.1`` and ``P Up_conv{S−j}.{0,2}`` → ``denoiser.decoders.j.up.1`` and
  ``denoiser.decoders.j.block.{0,2}`` (j = 0 … S−2, deepest first);
* ``P Conv_1x1`` → ``denoiser.head``

(each ``.weight`` and ``.bias``). The two compute the same function: DeepInverse's HQS iteration is
x ← D(prox_{γ_k f}(x)) from x₀ = Aᴴy with f = ½‖Ax − y‖² (``L2`` with σ = 1), i.e. ssibench's
``step_order: dc-first`` with step sizes γ_k equal to the stored ``stepsize`` values; both U-Nets
replicate-pad H and W at the bottom/right to a multiple of 2^(S−1), add the padded input (residual)
and crop back. What the weights cannot show is assumed as SSIBench builds it: ``residual=True``,
``circular_padding=False``, ``cat=True`` (DeepInverse's defaults). A checkpoint of a ``Trainer``
whose loss wrapped the model (SSDU's ``SplittingModel``, R2R) nests it under ``model.``; the
wrapper's own state (a mask generator's RNG state, a noise level) is not read: ``--method`` says how
ssibench evaluates the network.

Refused, each with one line naming the layer: batch norm (``batch_norm=True``), another channel
count than 2 → 2, per-level widths other than width·2^k, bias-free convolutions, a lone U-Net (a
denoiser, not a reconstruction model) and any other architecture. Writing a run's model.pt in this
layout is :mod:`ssibench.interop.export`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ssibench.errors import DataFileError
from ssibench.models.modl import build_modl
from ssibench.safe_load import load_torch_file

__all__ = [
    "DEEPINV_INITIAL_VALUES",
    "DeepInvModel",
    "deepinv_layout",
    "from_deepinv",
    "peek_checkpoint",
    "to_deepinv",
]

#: Prefix of the denoiser's layers in DeepInverse's MoDL (its PnP prior's first entry).
DENOISER = "prior.0.denoiser."
#: Where an algorithm parameter's per-iteration values live, and their read-only twin.
PARAMS, INIT_PARAMS = "params_algo.", "init_params_algo."
#: Prefix under which a loss's ``adapt_model`` wrapper (SplittingModel, R2RModel) nests the model.
WRAPPED = "model."
#: The step size, and the per-iteration values DeepInverse's MoDL stores but never reads, with
#: the values its constructor gives them (written on export so ``strict=True`` loading works).
STEP = "stepsize"
DEEPINV_INITIAL_VALUES: dict[str, float] = {"g_param": 0.01, "lambda": 1.0}
#: Buffers that only a batch-norm layer has.
BATCH_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
#: ssibench's MoDL reconstructs real/imaginary images: 2 → 2 channels.
CHANNELS = 2
#: The fix that ends a refusal of a DeepInverse file.
SSIBENCH_MODEL = (
    "ssibench reads deepinv.models.MoDL(denoiser=deepinv.models.UNet(2, 2, scales=S, "
    "batch_norm=False), num_iter=K) as SSIBench trains it"
)

_ENCODER = re.compile(r"Conv(\d+)\.0\.weight")


@dataclass(frozen=True)
class DeepInvModel:
    """The shape of a DeepInverse MoDL: K iterations, an S-level U-Net of width·2^k channels.

    Example:
        >>> model = DeepInvModel(num_iter=3, scales=4, width=64)  # SSIBench's
        >>> model.model_spec
        {'num_iter': 3, 'scales': 4, 'width': 64}
        >>> model.deepinv_call.endswith("UNet(2, 2, scales=4, batch_norm=False), num_iter=3)")
        True
    """

    num_iter: int
    scales: int
    width: int

    @property
    def model_spec(self) -> dict[str, int]:
        """The ssibench ``model`` config slice of the same network."""
        return {"num_iter": self.num_iter, "scales": self.scales, "width": self.width}

    @property
    def deepinv_call(self) -> str:
        """The DeepInverse constructor of this network (``channels_per_scale`` if width ≠ 64)."""
        channels = [self.width * 2**k for k in range(self.scales)]
        per_scale = "" if self.width == 64 else f", channels_per_scale={channels}"
        return (
            f"deepinv.models.MoDL(denoiser=deepinv.models.UNet({CHANNELS}, {CHANNELS}, "
            f"scales={self.scales}, batch_norm=False{per_scale}), num_iter={self.num_iter})"
        )


def _layer_pairs(scales: int) -> list[tuple[str, str]]:
    """(ssibench name under ``denoiser.``, DeepInverse name under ``prior.0.denoiser.``)."""
    pairs = [(f"encoders.{k}.{i}", f"Conv{k + 1}.{i}") for k in range(scales) for i in (0, 2)]
    for j in range(scales - 1):  # our decoders run deepest first; DeepInverse names them by level
        level = scales - j
        pairs.append((f"decoders.{j}.up.1", f"Up{level}.1"))
        pairs += [(f"decoders.{j}.block.{i}", f"Up_conv{level}.{i}") for i in (0, 2)]
    pairs.append(("head", "Conv_1x1"))
    return [
        (f"denoiser.{ours}.{kind}", f"{DENOISER}{theirs}.{kind}")
        for ours, theirs in pairs
        for kind in ("weight", "bias")
    ]


def _shapes(model: DeepInvModel) -> dict[str, tuple[int, ...]]:
    """Shapes of ssibench's MoDL state_dict for ``model``, built on ``meta`` (no memory, no RNG)."""
    with torch.device("meta"):
        network = build_modl(model.num_iter, scales=model.scales, width=model.width)
    return {name: tuple(tensor.shape) for name, tensor in network.state_dict().items()}


def _step_key(k: int, prefix: str = PARAMS, name: str = STEP) -> str:
    return f"{prefix}{name}.{k}"


def _listed(names: list[str], limit: int = 3) -> str:
    more = f", … ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _is_tensor_map(state: object) -> bool:
    return isinstance(state, Mapping) and all(isinstance(v, Tensor) for v in state.values())


def _unwrapped(state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """The MoDL's entries, under as many ``model.`` wrapper prefixes as the file has."""
    prefix = ""
    while not any(k.startswith(prefix + DENOISER) or k.startswith(prefix + PARAMS) for k in state):
        if not any(k.startswith(prefix + WRAPPED) for k in state):
            return state
        prefix += WRAPPED
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def deepinv_layout(state: object, path: Path) -> Mapping[str, Tensor] | None:
    """The DeepInverse MoDL ``state_dict`` in a loaded file; None for a file of another layout.

    Recognised: a ``Trainer`` checkpoint (a mapping whose ``"state_dict"`` holds tensors; its other
    entries, optimiser and scheduler included, are not used) and a bare MoDL ``state_dict`` (keys
    under ``prior.0.denoiser.`` or ``params_algo.``); either with the model nested under
    ``model.`` by a loss wrapper.

    Raises:
        DataFileError: a lone DeepInverse U-Net (keys ``Conv1.0.weight`` … ``Conv_1x1.weight``).
    """
    if isinstance(state, Mapping) and _is_tensor_map(state.get("state_dict")):
        return _unwrapped(state["state_dict"])
    if not isinstance(state, Mapping) or not _is_tensor_map(state):
        return None
    inner = _unwrapped(state)
    if any(k.startswith((DENOISER, PARAMS)) for k in inner):
        return inner
    if "Conv1.0.weight" in state and "Conv_1x1.weight" in state:
        raise DataFileError(
            f"{path}: the state_dict of a DeepInverse UNet alone: a denoiser, not a "
            "reconstruction model (its unrolling and step sizes are missing); save the MoDL "
            "around it instead, torch.save(deepinv.models.MoDL(denoiser=unet, num_iter=K)"
            ".state_dict(), path), trained as one network"
        )
    return None


def _infer(state: Mapping[str, Tensor], path: Path) -> DeepInvModel:
    """K, S and width from the layer names and the first convolution's shape."""
    levels = sorted(int(m[1]) for k in state if (m := _ENCODER.fullmatch(k.removeprefix(DENOISER))))
    scales = 0
    while scales + 1 in levels:
        scales += 1
    num_iter = 0
    while _step_key(num_iter) in state:
        num_iter += 1
    first = f"{DENOISER}Conv1.0.weight"
    for missing, name in ((scales == 0, first), (num_iter == 0, _step_key(0))):
        if missing:
            raise DataFileError(
                f"{path}: no layer {name}, so not a DeepInverse MoDL with a UNet denoiser "
                f"(found {_listed(sorted(state))}); {SSIBENCH_MODEL}"
            )
    weight = state[first]
    if weight.ndim != 4 or weight.shape[0] < 1:
        raise DataFileError(
            f"{path}: layer {first} has shape {tuple(weight.shape)}, expected (width, "
            f"{CHANNELS}, 3, 3); {SSIBENCH_MODEL}"
        )
    return DeepInvModel(num_iter, scales, int(weight.shape[0]))


def _refuse_batch_norm(names: list[str], path: Path) -> None:
    for name in names:
        if name.rsplit(".", 1)[-1] in BATCH_NORM_BUFFERS:
            raise DataFileError(
                f"{path}: layer {name} is batch norm, which ssibench's U-Net does not have "
                f"(SSIBench trains UNet(..., batch_norm=False)); {SSIBENCH_MODEL}"
            )


def _step_sizes(state: Mapping[str, Tensor], model: DeepInvModel, path: Path) -> Tensor:
    """γ₀ … γ_{K−1} ``(K,)`` from the scalars ``params_algo.stepsize.k``."""
    values = []
    for k in range(model.num_iter):
        key, twin = _step_key(k), _step_key(k, INIT_PARAMS)
        value = state[key]
        if value.numel() != 1:
            raise DataFileError(
                f"{path}: layer {key} has shape {tuple(value.shape)}, expected () (one step size "
                f"per iteration); {SSIBENCH_MODEL}"
            )
        if twin in state and not torch.equal(state[twin].reshape(()), value.reshape(())):
            raise DataFileError(
                f"{path}: {key} = {value.item():.6g} but {twin} = {state[twin].item():.6g}; "
                "DeepInverse's MoDL shares one tensor between them, so the file was altered; "
                "make them equal (DeepInverse computes with the init_params_algo value)"
            )
        values.append(value.reshape(()))
    return torch.stack(values)


def from_deepinv(state: Mapping[str, Tensor], path: Path) -> tuple[dict[str, Tensor], DeepInvModel]:
    """The weights and shape of ssibench's MoDL from a DeepInverse MoDL ``state_dict``.

    Returns:
        (a ``state_dict`` that :func:`ssibench.models.build_modl` with ``model.model_spec`` loads
        strictly, the inferred :class:`DeepInvModel`); ``step_sizes`` is ``(K,)``.

    Raises:
        DataFileError: naming the file and the first layer that does not fit: batch norm, a shape
            other than the MoDL inferred from ``Conv1`` needs (both shapes given), a missing layer
            or one no MoDL has.
    """
    _refuse_batch_norm(list(state), path)
    model = _infer(state, path)
    shapes = _shapes(model)
    pairs = _layer_pairs(model.scales)
    for ours, theirs in pairs:
        if theirs in state and tuple(state[theirs].shape) != shapes[ours]:
            raise DataFileError(
                f"{path}: layer {theirs} has shape {tuple(state[theirs].shape)}, expected "
                f"{shapes[ours]} for a residual {CHANNELS} → {CHANNELS}-channel UNet of "
                f"{model.scales} scales with {model.width}·2^k channels (read from Conv1); "
                f"{SSIBENCH_MODEL}"
            )
    needed = [theirs for _, theirs in pairs] + [_step_key(k) for k in range(model.num_iter)]
    unused = {
        _step_key(k, prefix, name)
        for k in range(model.num_iter)
        for prefix in (PARAMS, INIT_PARAMS)
        for name in (STEP, *DEEPINV_INITIAL_VALUES)
    }
    missing = [name for name in needed if name not in state]
    unexpected = [name for name in state if name not in set(needed) | unused]
    if missing or unexpected:
        parts = (("missing", missing), ("unexpected", unexpected))
        found = "; ".join(f"{what} {_listed(names)}" for what, names in parts if names)
        raise DataFileError(
            f"{path}: its layers do not match {model.deepinv_call} ({found}); {SSIBENCH_MODEL}"
        )
    weights = {ours: state[theirs] for ours, theirs in pairs}
    weights["step_sizes"] = _step_sizes(state, model, path)
    return weights, model


def to_deepinv(weights: Mapping[str, Tensor], path: Path) -> tuple[dict[str, Tensor], DeepInvModel]:
    """A DeepInverse MoDL ``state_dict`` from the weights of ssibench's MoDL (the inverse map).

    ``params_algo.stepsize.k`` and ``init_params_algo.stepsize.k`` are one tensor, γ_k, as in
    DeepInverse; ``lambda`` and ``g_param`` get DeepInverse's initial values (never read).

    Raises:
        DataFileError: weights that are not those of :func:`ssibench.models.build_modl` without
            batch norm (naming the first layer that differs, or the missing/extra layers).
    """
    _refuse_batch_norm(list(weights), path)
    step_sizes = weights.get("step_sizes")
    if step_sizes is None or step_sizes.ndim != 1 or step_sizes.numel() == 0:
        raise DataFileError(
            f"{path}: no (K,) step_sizes among the weights, so not ssibench's MoDL; export a run "
            "trained with model.name modl"
        )
    scales = 0
    while f"denoiser.encoders.{scales}.0.weight" in weights:
        scales += 1
    first = weights.get("denoiser.encoders.0.0.weight")
    width = int(first.shape[0]) if first is not None and first.ndim == 4 else 0
    model = DeepInvModel(int(step_sizes.shape[0]), scales, width)
    expected = _shapes(model) if scales and width else {}
    found = {name: tuple(tensor.shape) for name, tensor in weights.items()}
    if found != expected:
        differ = sorted(set(found) ^ set(expected)) or [n for n in found if found[n] != expected[n]]
        raise DataFileError(
            f"{path}: the weights are not those of ssibench's MoDL with {model.model_spec} "
            f"(layers {_listed(differ)} differ); export a run trained with model.name modl"
        )
    gammas = step_sizes.unbind()  # views of γ, each then stored under both names
    state: dict[str, Tensor] = {}
    for prefix in (PARAMS, INIT_PARAMS):  # DeepInverse's order: g_param, lambda, stepsize
        for name, value in DEEPINV_INITIAL_VALUES.items():
            for k in range(model.num_iter):
                state[_step_key(k, prefix, name)] = torch.tensor(value)
        for k in range(model.num_iter):
            state[_step_key(k, prefix)] = gammas[k]
    state.update({theirs: weights[ours] for ours, theirs in _layer_pairs(model.scales)})
    return state, model


def peek_checkpoint(path: Path) -> object | None:
    """The structure of a ``torch.save`` file without reading its tensors' bytes, or None.

    :func:`ssibench.safe_load.load_torch_file` with ``mmap=True``, so a config check can tell a
    DeepInverse checkpoint from a plain state_dict cheaply. None where that is impossible (legacy
    format, unreadable or refused file): the evaluation job then reports what is wrong.
    """
    try:
        return load_torch_file(path, "", mmap=True)
    except DataFileError:  # the evaluation's full load names the problem
        return None
