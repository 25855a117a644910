"""The loss contract shared by every training objective.

A loss is an ``nn.Module`` called with keywords only::

    loss(x_net=x̂, y=y, physics=A, model=f, x=x, epoch=e) -> 0-dim tensor

where x̂ = f(y, A) is the network output of the current batch, ``x`` the ground truth (only
supervised losses may read it) and ``epoch`` the current epoch. A loss that must change the model
(measurement splitting) overrides :meth:`Loss.adapt_model`; the trainer calls it once before
training. This matches the DeepInverse / SSIBench "add your own loss" signature, so a user's loss
ports unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssibench.physics import Physics

__all__ = ["Loss", "mse"]


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error over all elements (batch included): mean((a − b)²), a 0-dim tensor."""
    return (a - b).pow(2).mean()


class Loss(nn.Module):
    """Base of all losses: keyword-only ``forward`` returning a scalar; optional ``adapt_model``."""

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: Physics,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        """Return the loss of the batch as a 0-dim tensor."""
        raise NotImplementedError

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Return the model to train with this loss (unchanged unless the loss wraps it)."""
        return model
