"""One training objective computed as each library's trainer computes it.

ssibench: ``adapt_model`` of every loss in order, the trainer's forward
(``ssibench.training.step.forward_train``: ``update_parameters=True`` for wrappers), then the sum
of ``call_loss`` over the losses. DeepInverse (``deepinv.Trainer``): the same adaptation, the
forward with ``update_parameters=True`` when the model's ``forward`` takes it, then the sum of
``loss(x=…, x_net=…, y=…, physics=…, model=…, epoch=…).mean()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ssibench.losses.base import call_loss
from ssibench.training.step import forward_train

from .common import OperatorPair

__all__ = ["dv_objective", "ss_objective"]


def ss_objective(
    losses: Sequence[nn.Module], model: nn.Module, pair: OperatorPair
) -> tuple[Tensor, Tensor, nn.Module]:
    """(Σ losses, x̂, adapted model) of one ssibench training step on ``pair``."""
    for loss in losses:
        model = loss.adapt_model(model)
    model.train()
    x_net = forward_train(model, pair.y, pair.ss)
    total = sum(call_loss(loss, x_net, pair.y, pair.ss, model, pair.x, 0) for loss in losses)
    return total, x_net, model


def dv_forward(model: nn.Module, y: Tensor, physics: Any) -> Tensor:
    """DeepInverse's trainer forward."""
    if "update_parameters" in inspect.signature(model.forward).parameters:
        return model(y, physics, update_parameters=True)
    return model(y, physics)


def dv_objective(
    losses: Sequence[nn.Module], model: nn.Module, pair: OperatorPair, y: Tensor | None = None
) -> tuple[Tensor, Tensor, nn.Module]:
    """(Σ losses, x̂, adapted model) of one DeepInverse training step on ``pair``."""
    for loss in losses:
        model = loss.adapt_model(model)
    model.train()
    y = pair.y if y is None else y
    x_net = dv_forward(model, y, pair.dv)
    total = 0
    for loss in losses:
        value = loss(x=pair.x, x_net=x_net, y=y, physics=pair.dv, model=model, epoch=0)
        total = total + value.mean()
    return total, x_net, model
