"""One optimisation step, and the model wrappers the losses put around the network.

L = Σᵢ Lᵢ(x̂), x̂ = f(y, A): the trainer's forward lets loss wrappers (measurement splitting,
recorruption, ...) record their randomness for the losses of this step only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.losses import Loss
from ssibench.losses.base import call_loss

__all__ = [
    "StepFunction",
    "adapt",
    "all_finite",
    "forward_train",
    "plain_step",
    "records_randomness",
    "train_step",
    "unwrap",
]


def adapt(model: nn.Module, losses: list[Loss]) -> nn.Module:
    """Let each loss wrap the model, in order (measurement splitting does).

    A user's loss need not derive from :class:`~ssibench.losses.Loss`: one without ``adapt_model``
    (a plain ``nn.Module``) leaves the model unchanged.
    """
    for loss in losses:
        adapt_model = getattr(loss, "adapt_model", None)
        if adapt_model is not None:
            model = adapt_model(model)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside any loss wrappers (what ``model.pt`` stores).

    Loss wrappers (measurement splitting, recorruption, ...) keep the wrapped network as ``.model``.
    """
    while isinstance(getattr(model, "model", None), nn.Module):
        model = model.model
    return model


def records_randomness(model: nn.Module) -> bool:
    """Whether ``model`` is a loss wrapper whose forward takes ``update_parameters``."""
    return _forward_takes_update_parameters(type(model))


@functools.cache
def _forward_takes_update_parameters(model_class: type) -> bool:
    # Inspected once per class: the trainer asks on every step.
    return "update_parameters" in inspect.signature(model_class.forward).parameters


def forward_train(model: nn.Module, y: Tensor, physics: Any) -> Tensor:
    """The trainer's forward: wrappers record their randomness for the losses on this call only.

    Extra forwards made inside losses do not pass ``update_parameters``, so they do not overwrite
    what the trainer's forward recorded (the DeepInverse/SSIBench convention).
    """
    if records_randomness(model):
        return model(y, physics, update_parameters=True)
    return model(y, physics)


#: (x, y, physics, epoch) → the detached loss terms of one optimisation step.
StepFunction = Callable[[Tensor, Tensor, Any, int], Tensor]


def train_step(
    model: nn.Module,
    losses: list[Loss],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    x: Tensor,
    y: Tensor,
    physics: Any,
    epoch: int,
) -> Tensor:
    """One step on L = Σᵢ Lᵢ(x̂), x̂ = f(y, A); returns the detached terms ``(len(losses),)``.

    Each Lᵢ is called through :func:`~ssibench.losses.base.call_loss`: our keyword-only or
    DeepInverse's positional signature, a scalar or a per-sample ``(B,)`` value (averaged).

    The backward pass runs on s·L and the optimiser steps on the gradients divided by s, skipping
    the step if they are not finite (fp16 loss scaling); a disabled ``scaler`` (s = 1, no check)
    makes this a plain step.
    """
    optimizer.zero_grad(set_to_none=True)
    x_net = forward_train(model, y, physics)
    terms = torch.stack([call_loss(loss, x_net, y, physics, model, x, epoch) for loss in losses])
    scaler.scale(terms.sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    return terms.detach()


def all_finite(terms: Tensor, parameters: list[nn.Parameter]) -> Tensor:
    """0-dim bool on the device: every loss term and every gradient is finite."""
    finite = torch.isfinite(terms).all()
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads:
        finite = finite & torch.isfinite(torch.nn.utils.get_total_norm(grads))
    return finite


def plain_step(
    model: nn.Module,
    losses: list[Loss],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> StepFunction:
    """The step function of a non-adversarial run: :func:`train_step` with its parts bound."""

    def step(x: Tensor, y: Tensor, physics: Any, epoch: int) -> Tensor:
        return train_step(model, losses, optimizer, scaler, x, y, physics, epoch)

    return step
