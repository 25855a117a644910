"""The loss contract shared by every training objective, and the one way the trainer calls a loss.

A loss is an ``nn.Module`` (or any callable) called by keyword::

    loss(x_net=x̂, y=y, physics=A, model=f, x=x, epoch=e) -> 0-dim tensor, or (B,) per sample

where x̂ = f(y, A) is the network output of the current batch, ``x`` the ground truth (only
supervised losses may read it) and ``epoch`` the current epoch. Two signatures are accepted: ours,
keyword-only ``forward(self, *, x_net, y, physics, model, x=None, epoch=None)``, and DeepInverse's
positional-or-keyword ``forward(self, x_net, y, physics, model, x=None, epoch=None, **kwargs)``,
so a user's loss ports unchanged. :func:`call_loss` makes the call and averages a per-sample
result; the trainer and every loss wrapper that calls an inner loss go through it. A loss that must
change the model (measurement splitting) overrides :meth:`Loss.adapt_model`; the trainer calls it
once before training.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ssibench.physics import Physics

__all__ = ["Loss", "call_loss", "mse", "reduce_loss"]

#: The keywords a loss may leave out of its signature; the four others are required.
_OPTIONAL_KEYWORDS = ("x", "epoch")


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


def _accepted(function: Callable[..., Any]) -> tuple[str, ...]:
    """Which of ``x`` and ``epoch`` ``function`` accepts by keyword (all of them under ``**kw``)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return _OPTIONAL_KEYWORDS
    by_keyword = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return tuple(name for name in _OPTIONAL_KEYWORDS if name in by_keyword)


# Inspected once per loss class: the trainer calls every loss on every step.
_accepted_by_forward = functools.cache(_accepted)


def _accepted_keywords(loss: Callable[..., Tensor]) -> tuple[str, ...]:
    """The optional keywords to pass to ``loss``: from its class's ``forward`` for a module."""
    if isinstance(loss, nn.Module):
        return _accepted_by_forward(type(loss).forward)
    return _accepted(loss)


def signature_problem(loss: Callable[..., Tensor]) -> str | None:
    """Why ``loss`` cannot be called as a loss, or None if it can.

    A loss must accept ``x_net, y, physics, model`` by keyword (both our keyword-only signature
    and DeepInverse's positional-or-keyword one do) and require nothing else.
    """
    forward = type(loss).forward if isinstance(loss, nn.Module) else loss
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):  # a builtin without a signature: it will tell at call time
        return None
    parameters = list(signature.parameters.values())
    if isinstance(loss, nn.Module) and parameters:
        parameters = parameters[1:]  # self
    names = {p.name for p in parameters}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    missing = [n for n in ("x_net", "y", "physics", "model") if n not in names and not takes_kwargs]
    required = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in ("x_net", "y", "physics", "model")
    ]
    if missing:
        return f"its forward takes no {', '.join(missing)}"
    if required:
        return f"its forward requires {', '.join(required)}, which the trainer does not pass"
    return None


def reduce_loss(value: Any, loss: object, batch_size: int) -> Tensor:
    """The 0-dim loss of a batch from what ``loss`` returned.

    A 0-dim tensor is returned as is (no operation, so built-in losses are bit-identical); a
    per-sample ``(B,)`` tensor ℓ becomes its mean (1/B) Σ_b ℓ_b, as DeepInverse's trainer does.

    Raises:
        TypeError: ``value`` is not a tensor.
        ValueError: any other shape; the message names the loss class and the shapes allowed.
    """
    name = type(loss).__name__
    if not isinstance(value, Tensor):
        raise TypeError(f"loss {name} returned a {type(value).__name__}; it must return a tensor")
    if value.ndim == 0:
        return value
    if value.shape == (batch_size,):
        return value.mean()
    raise ValueError(
        f"loss {name} returned a tensor of shape {tuple(value.shape)}; a loss must return a "
        f"scalar (0-dim) or one value per sample, shape (B,) = ({batch_size},), which is averaged"
    )


def call_loss(
    loss: Callable[..., Tensor],
    x_net: Tensor,
    y: Tensor,
    physics: Any,
    model: nn.Module,
    x: Tensor | None = None,
    epoch: int | None = None,
) -> Tensor:
    """L = loss(x̂, y, A, f, x, epoch) as a 0-dim tensor, for either accepted loss signature.

    The call is by keyword, which both keyword-only (ours) and positional-or-keyword (DeepInverse)
    signatures accept whatever their order (``deepinv.loss.Loss`` puts ``x`` second); ``x`` and
    ``epoch`` are passed only to a loss that names them or takes
    ``**kwargs``. The result is reduced by :func:`reduce_loss` with B = ``x_net.shape[0]``.

    Args:
        loss: the loss module (or callable).
        x_net: network output x̂ ``(B, 2, ...)``.
        y: measurements of the batch.
        physics: the batch operator A.
        model: the (wrapped) network f.
        x: ground truth, for supervised losses.
        epoch: current epoch (0-based).

    Returns:
        A 0-dim tensor.
    """
    optional = {"x": x, "epoch": epoch}
    keywords = {name: optional[name] for name in _accepted_keywords(loss)}
    value = loss(x_net=x_net, y=y, physics=physics, model=model, **keywords)
    return reduce_loss(value, loss, x_net.shape[0])
