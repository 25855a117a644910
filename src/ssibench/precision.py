"""Numerical precision of training and evaluation: mixed precision (autocast, loss scaling).

Mixed precision. ``train.amp`` = ``none`` | ``bf16`` | ``fp16`` runs the network forwards (the
denoiser inside MoDL, the discriminator) under ``torch.autocast`` and casts their outputs back to
float32; the FFTs, the data-consistency step (CG included), the losses and the metrics stay
float32. fp16 needs a gradient scaler (:func:`grad_scaler`); bf16 does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.errors import ConfigError

__all__ = ["AMP_MODES", "autocast_dtype", "autocast_forward", "grad_scaler"]

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
