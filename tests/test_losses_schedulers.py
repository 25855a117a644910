"""Loss schedulers: which wrapped losses are summed at each call."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.losses.schedulers import (
    InterleavedEpochLossScheduler,
    InterleavedLossScheduler,
    RandomLossScheduler,
    StepLossScheduler,
)
from ssibench.physics import SingleCoilMRI


class ValueLoss(Loss):
    """L = v · mean(x̂) (x̂ = ones gives v, and a gradient path to x̂)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(
        self,
        *,
        x_net: Tensor,
        y: Tensor,
        physics: SingleCoilMRI,
        model: nn.Module,
        x: Tensor | None = None,
        epoch: int | None = None,
    ) -> Tensor:
        return self.value * x_net.mean()


class Wrapped(nn.Module):
    def __init__(self, inner: nn.Module, tag: str) -> None:
        super().__init__()
        self.inner = inner
        self.tag = tag


class WrappingLoss(ValueLoss):
    """A loss whose ``adapt_model`` wraps the model, tagged so the wrapping order is visible."""

    def __init__(self, tag: str) -> None:
        super().__init__(0.0)
        self.tag = tag

    def adapt_model(self, model: nn.Module) -> nn.Module:
        return Wrapped(model, self.tag)


def _call(loss: Loss, epoch: int | None = 0) -> Tensor:
    x_net = torch.ones(2, 2, 4, 4, requires_grad=True)
    physics = SingleCoilMRI(torch.ones(1, 1, 4, 4))
    return loss(x_net=x_net, y=x_net.detach(), physics=physics, model=nn.Identity(), epoch=epoch)


def _values(loss: Loss, calls: int, epochs: list[int] | None = None) -> list[float]:
    return [round(float(_call(loss, epochs[i] if epochs else 0).detach()), 6) for i in range(calls)]


def test_step_scheduler_zero_before_start_then_the_losses() -> None:
    step = StepLossScheduler([ValueLoss(1.0), ValueLoss(2.0)], start_epoch=3)
    assert _values(step, 6, [0, 1, 2, 3, 4, 5]) == [0, 0, 0, 3, 3, 3]
    before = _call(step, epoch=2)
    assert before.requires_grad
    assert before.ndim == 0
    before.backward()  # an inactive schedule still lets the trainer call backward


def test_step_scheduler_default_matches_reference_threshold() -> None:
    step = StepLossScheduler([ValueLoss(1.0)])  # reference epoch_thresh = 0: active when epoch > 0
    assert _values(step, 3, [0, 1, 2]) == [0, 1, 1]


def test_interleaved_alternates_deterministically_and_checkpoints() -> None:
    losses = [ValueLoss(1.0), [ValueLoss(2.0), ValueLoss(5.0)], ValueLoss(3.0)]
    interleaved = InterleavedLossScheduler(losses)
    assert _values(interleaved, 7) == [1, 7, 3, 1, 7, 3, 1]  # a group sums its losses
    restored = InterleavedLossScheduler(losses)
    restored.load_state_dict(interleaved.state_dict())
    assert _values(restored, 2) == [7, 3]  # resumes the round robin


def test_interleaved_epoch_uses_epoch_modulo() -> None:
    scheduler = InterleavedEpochLossScheduler([ValueLoss(1.0), ValueLoss(2.0)])
    assert _values(scheduler, 5, [0, 0, 1, 2, 7]) == [1, 1, 2, 1, 2]
    with pytest.raises(ValueError, match="epoch=None"):
        _call(scheduler, epoch=None)


def test_random_scheduler_reproducible_weighted_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    losses = [ValueLoss(1.0), ValueLoss(2.0), ValueLoss(3.0)]
    runs = [
        _values(RandomLossScheduler(losses, torch.Generator().manual_seed(5), [3, 0, 1]), 400)
        for _ in range(2)
    ]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert runs[0] == runs[1]
    assert 2 not in runs[0]  # weight 0: never picked
    share = runs[0].count(1) / len(runs[0])
    assert share == pytest.approx(0.75, abs=0.07)  # P = 3/4; ±0.07 is > 3 standard deviations
    other = _values(RandomLossScheduler(losses, torch.Generator().manual_seed(6), [3, 0, 1]), 400)
    assert other != runs[0]


def test_random_scheduler_uniform_covers_every_entry() -> None:
    scheduler = RandomLossScheduler(
        [ValueLoss(1.0), ValueLoss(2.0)], torch.Generator().manual_seed(0)
    )
    assert set(_values(scheduler, 50)) == {1, 2}


@pytest.mark.parametrize("weightings", [[1], [1, -1], [0, 0], [1.5, 1]])
def test_random_scheduler_refuses_bad_weightings(weightings: list) -> None:
    with pytest.raises(ValueError, match="weightings"):
        RandomLossScheduler([ValueLoss(1.0), ValueLoss(2.0)], torch.Generator(), weightings)


def test_adapt_model_applies_every_wrapped_loss_in_order() -> None:
    scheduler = StepLossScheduler([WrappingLoss("a"), [WrappingLoss("b"), WrappingLoss("c")]])
    model = scheduler.adapt_model(nn.Identity())
    tags = []
    while isinstance(model, Wrapped):
        tags.append(model.tag)
        model = model.inner
    assert tags == ["c", "b", "a"]  # outermost last applied


def test_entries_must_be_losses() -> None:
    with pytest.raises(TypeError, match="Loss"):
        InterleavedLossScheduler([ValueLoss(1.0), nn.Identity()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        InterleavedLossScheduler([])
