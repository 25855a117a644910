"""Numerical precision of training and evaluation: autocast, loss scaling, TF32, determinism.

Mixed precision. ``train.amp`` = ``none`` | ``bf16`` | ``fp16`` runs the network forwards (the
denoiser inside MoDL, the discriminator) under ``torch.autocast`` and casts their outputs back to
float32; the FFTs, the data-consistency step (CG included), the losses and the metrics stay
float32. fp16 needs a gradient scaler (:func:`grad_scaler`); bf16 does not.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.config.records import TrainConfig
from ssibench.errors import ConfigError

__all__ = [
    "AMP_MODES",
    "autocast_dtype",
    "autocast_forward",
    "configure_math",
    "grad_scaler",
    "math_environment",
]

#: ``train.amp`` values → autocast dtype (None: full float32).
AMP_MODES: dict[str, torch.dtype | None] = {
    "none": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def autocast_dtype(amp: str, key: str = "train.amp") -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting (None for ``none``).

    Raises:
        ConfigError: for a value not in :data:`AMP_MODES`, naming ``key``.
    """
    if amp not in AMP_MODES:
        raise ConfigError(f"{key}: unknown value {amp!r}; allowed: {', '.join(AMP_MODES)}")
    return AMP_MODES[amp]


class _AutocastForward:
    """A module's bound ``forward`` run under autocast, its tensor output cast to float32."""

    def __init__(self, forward: Callable[..., Tensor], device_type: str, dtype: torch.dtype):
        self.forward = forward
        self.device_type = device_type
        self.dtype = dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.forward(*args, **kwargs)
        return out.float()


def autocast_forward(module: nn.Module, amp: str, device_type: str) -> nn.Module:
    """Make ``module``'s forward run under autocast with ``amp``'s dtype; return ``module``.

    y = float32(f(x)) with f evaluated under ``torch.autocast(device_type, dtype)``: layers on
    autocast's lists (convolutions, linear layers) compute in bf16/fp16, the output is float32
    again, so whatever follows (data consistency, FFT, losses, metrics) runs in float32. Nothing
    happens for ``amp = "none"``.

    The module's ``forward`` attribute is replaced on this instance (as Hugging Face Accelerate
    does) rather than wrapping the module in another one, so the parameter names, and hence
    ``model.pt``, are the same with and without mixed precision. Apply it to the denoiser inside
    MoDL (``network.denoiser``), not to MoDL, whose data-consistency steps must stay float32.

    Example:
        >>> net = autocast_forward(nn.Linear(3, 3), "bf16", "cpu")
        >>> net(torch.zeros(2, 3)).dtype
        torch.float32
    """
    dtype = autocast_dtype(amp)
    if dtype is not None:
        module.forward = _AutocastForward(module.forward, device_type, dtype)
    return module


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """Gradient scaler for ``amp``: enabled for fp16 only (its 5-bit exponent underflows).

    A disabled scaler is a pass-through (``scale(L)`` is L, ``step(opt)`` is ``opt.step()``), so
    the training step has one code path and ``amp = "none"`` computes exactly what a plain step
    does. Note that an enabled scaler reads its inf/NaN flag on the host once per optimiser step.
    """
    return torch.amp.GradScaler(device.type, enabled=autocast_dtype(amp) is torch.float16)


#: cuBLAS workspace that makes its GEMMs deterministic (NVIDIA cuBLAS docs, "Results
#: reproducibility"); read when CUDA initialises, so it is set before any CUDA work.
CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"


def configure_math(config: TrainConfig) -> None:
    """Set TF32 and determinism for this process from ``train.tf32`` / ``train.deterministic``.

    TF32 (10 mantissa bits in the products of float32 convolutions and matmuls on Ampere and
    newer) is on for ``tf32`` unless ``deterministic``; ``deterministic`` also selects PyTorch's
    deterministic kernels (``warn_only``: grid_sample's backward has none and keeps its atomics),
    disables cuDNN's autotuner and sets ``CUBLAS_WORKSPACE_CONFIG``. Nothing changes on the CPU,
    whose float32 kernels neither use TF32 nor atomics.
    """
    tf32 = config.tf32 and not config.deterministic
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = config.deterministic
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)


def _onednn_version() -> str | None:
    """The oneDNN version in PyTorch's build summary (``MKL-DNN v3.x``); None if not built in."""
    match = re.search(r"(?:oneDNN|MKL-DNN) v([0-9][0-9.]*)", torch.__config__.show())
    return match.group(1) if match else None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:  # Linux: the CPU model, which with the ISA below decides the float32 kernels
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def math_environment(config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """What decides a run's floating-point results, for ``run.json``.

    Two runs of the same configuration can differ in the last bits when any of these differ: the
    library versions, the device, the CPU's instruction set (oneDNN picks kernels by it,
    ``ONEDNN_MAX_CPU_ISA`` caps it), the thread count (reduction order), TF32, amp and
    determinism.
    """
    cuda = device.type == "cuda"
    return {
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "onednn": _onednn_version(),
        "device": str(device),
        "device_name": _device_name(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
        "tf32": bool(cuda and config.tf32 and not config.deterministic),
        "amp": config.amp,
        "deterministic": config.deterministic,
    }
