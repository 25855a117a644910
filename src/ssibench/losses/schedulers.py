"""Loss schedulers: a loss that sums, at each call, a scheduled subset of the losses it wraps.

A scheduler is itself a :class:`~ssibench.losses.base.Loss`, so the trainer needs no change:

    L = Σ_{i ∈ S(call, epoch)} Lᵢ(x̂, y, A, f, x, epoch),

where S picks entries of ``losses``. An entry is a loss or a list of losses (a group, summed when
picked). When nothing is picked the scheduler returns a 0-dim zero that requires grad (so
``backward`` works) on x̂'s device. ``adapt_model`` applies every wrapped loss's ``adapt_model`` in
order, whatever the schedule (a splitting wrapper must be in place before the first step).
Source: DeepInverse ``deepinv/loss/scheduler.py``. Differences: the random scheduler
draws from an injected generator (the reference uses a private default-seeded CPU generator); the
empty sum lives on x̂'s device (the reference returns a CPU tensor).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, call_loss
from ssibench.physics import Physics

__all__ = [
    "InterleavedEpochLossScheduler",
    "InterleavedLossScheduler",
    "RandomLossScheduler",
    "StepLossScheduler",
]

LossEntry = Loss | Sequence[Loss]


def _groups(losses: Sequence[LossEntry]) -> nn.ModuleList:
    """Each entry as an ``nn.ModuleList`` group (a single loss becomes a group of one)."""
    if len(losses) == 0:
        raise ValueError("a loss scheduler needs at least one loss")
    groups = nn.ModuleList()
    for entry in losses:
        group = [entry] if isinstance(entry, Loss) else entry
        if (
            not isinstance(group, Sequence)
            or not group
            or not all(isinstance(loss, Loss) for loss in group)
        ):
            raise TypeError(
                "each scheduler entry must be a Loss or a non-empty list of Loss objects; got "
                f"{entry!r}"
            )
        groups.append(nn.ModuleList(list(group)))
    return groups


def _need_epoch(scheduler: str, epoch: int | None) -> int:
    if epoch is None:
        raise ValueError(f"{scheduler} schedules by epoch, but it was called with epoch=None")
    return epoch


class _LossScheduler(Loss):
    """Shared machinery: the wrapped groups, the scheduled sum and ``adapt_model``."""

    def __init__(self, losses: Sequence[LossEntry]) -> None:
        super().__init__()
        self.groups = _groups(losses)

    def schedule(self, epoch: int | None) -> list[int]:
        """Indices of the groups to sum at this call."""
        raise NotImplementedError

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
        """Σ of the scheduled losses (a grad-enabled 0-dim zero when none is scheduled)."""
        terms = [
            call_loss(loss, x_net, y, physics, model, x, epoch)  # a user's loss: (B,) or scalar
            for index in self.schedule(epoch)
            for loss in self.groups[index]
        ]
        if not terms:
            return torch.zeros((), device=x_net.device, dtype=x_net.dtype, requires_grad=True)
        return torch.stack(terms).sum()

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Apply ``adapt_model`` of every wrapped loss, in order."""
        for group in self.groups:
            for loss in group:
                model = loss.adapt_model(model)
        return model


class RandomLossScheduler(_LossScheduler):
    """Sum one randomly chosen entry per call: P(i) = wᵢ / Σⱼ wⱼ (uniform without weightings).

    An integer k ~ U{0, …, Σw − 1} is drawn from ``generator`` (on its device) and entry i is taken
    when k falls in [Σ_{j<i} wⱼ, Σ_{j≤i} wⱼ) — the reference's "index into a list where entry i
    appears wᵢ times". Picking the entry needs the integer on the host: one sync per call when the
    generator lives on a GPU (use a CPU generator to avoid it).

    Example:
        >>> from ssibench.losses import MCLoss, SupLoss
        >>> g = torch.Generator().manual_seed(0)
        >>> len(RandomLossScheduler([MCLoss(), SupLoss()], g, weightings=[3, 1]).groups)
        2
    """

    def __init__(
        self,
        losses: Sequence[LossEntry],
        generator: torch.Generator,
        weightings: Sequence[int] | None = None,
    ) -> None:
        super().__init__(losses)
        weights = [1] * len(self.groups) if weightings is None else list(weightings)
        if len(weights) != len(self.groups) or any(
            not isinstance(w, int) or w < 0 for w in weights
        ):
            raise ValueError(
                f"weightings must be {len(self.groups)} non-negative integers (one per entry); "
                f"got {weightings!r}"
            )
        if sum(weights) == 0:
            raise ValueError("weightings must not all be 0")
        self.generator = generator
        self.weightings = weights
        self._upper = list(itertools.accumulate(weights))  # entry i: [upper[i−1], upper[i])

    def schedule(self, epoch: int | None) -> list[int]:
        """One entry index drawn from the weighted distribution."""
        draw = torch.randint(
            self._upper[-1], (1,), generator=self.generator, device=self.generator.device
        )
        return [bisect.bisect_right(self._upper, int(draw))]


class InterleavedLossScheduler(_LossScheduler):
    """Round robin over the entries, one per call: call c sums entry c mod n.

    The call counter is part of ``state_dict()`` (extra state), so a checkpoint can resume it.
    """

    def __init__(self, losses: Sequence[LossEntry]) -> None:
        super().__init__(losses)
        self.calls = 0

    def schedule(self, epoch: int | None) -> list[int]:
        """Entry ``calls mod n``; advances the counter."""
        index = self.calls % len(self.groups)
        self.calls += 1
        return [index]

    def get_extra_state(self) -> dict[str, Any]:
        """The call counter, saved in ``state_dict()``."""
        return {"calls": self.calls}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the call counter from ``state_dict()``."""
        self.calls = int(state["calls"])


class InterleavedEpochLossScheduler(_LossScheduler):
    """One entry per epoch, in turn: epoch e sums entry e mod n (needs ``epoch``)."""

    def schedule(self, epoch: int | None) -> list[int]:
        """Entry ``epoch mod n``."""
        return [_need_epoch(type(self).__name__, epoch) % len(self.groups)]


class StepLossScheduler(_LossScheduler):
    """All entries from epoch ``start_epoch`` on (0-based, the trainer's numbering), none before.

    The reference's ``epoch_thresh`` t (active when epoch > t) is ``start_epoch = t + 1``; its
    default t = 0 is ``start_epoch = 1`` (the first epoch contributes 0).

    Example:
        >>> from ssibench.losses import SupLoss
        >>> x = torch.zeros(1, 2, 4, 4)
        >>> step = StepLossScheduler([SupLoss()], start_epoch=2)
        >>> batch = dict(x_net=x + 1, y=x, physics=None, model=None, x=x)
        >>> float(step(**batch, epoch=1).detach()), float(step(**batch, epoch=2))
        (0.0, 1.0)
    """

    def __init__(self, losses: Sequence[LossEntry], start_epoch: int = 1) -> None:
        super().__init__(losses)
        if start_epoch < 0:
            raise ValueError(f"start_epoch must be ≥ 0; got {start_epoch}")
        self.start_epoch = start_epoch

    def schedule(self, epoch: int | None) -> list[int]:
        """Every entry if epoch ≥ ``start_epoch``, else none."""
        active = _need_epoch(type(self).__name__, epoch) >= self.start_epoch
        return list(range(len(self.groups))) if active else []
