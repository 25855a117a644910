"""Align random draws: record what ssibench drew, replay it through DeepInverse's own code.

ssibench draws every random quantity from a ``torch.Generator`` it is given; DeepInverse from
generators held by its objects (mask generators, transforms, noise models) or from torch's global
generator. To compare one draw, the ssibench side runs first with recorders around its random
components, then the DeepInverse side runs with:

* :class:`ReplayMasks` in place of a DeepInverse mask/physics generator (``step`` returns the
  recorded masks, ``average`` the given probabilities);
* :func:`per_sample_transform` in place of a DeepInverse transform: DeepInverse's own transform
  classes (``Rotate``, ``Shift``, ``RandomPhaseError``, ``RandomNoise``, ``CPABDiffeomorphism``)
  applied sample by sample with ssibench's per-sample parameters (DeepInverse shares one draw per
  batch);
* generators positioned at the recorded state of ssibench's generator, where both draw the same
  tensor with the same call (``randn``/``normal_`` of the same shape): measurement noise, SURE
  probes, Robust-SSDU noise; torch's global generator for R2R (``torch.distributions``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.transforms import (
    Compose,
    CPABDiffeomorphism,
    Identity,
    RandomChoice,
    RandomNoise,
    RandomPhaseError,
    Rotate,
    Shift,
    Transform,
)
from ssibench.transforms.base import _member

__all__ = [
    "GlobalStateReplay",
    "RecordingMasks",
    "RecordingTransform",
    "ReplayMasks",
    "StateRecorder",
    "channels2",
    "deepinv_steps",
    "per_sample_transform",
]


def channels2(mask: Tensor) -> Tensor:
    """An ssibench mask ``(B, 1, ...)`` as DeepInverse's ``(B, 2, ...)``."""
    return mask.expand(mask.shape[0], 2, *mask.shape[2:]).clone()


class RecordingMasks:
    """Wrap an ssibench mask or split generator: record each draw and the generator state after.

    Duck-types the wrapped object (``sample`` plus attribute access), so it can replace the
    ``mask_generator`` attribute of an ssibench loss.
    """

    def __init__(self, inner: Any, generator: torch.Generator) -> None:
        self.inner = inner
        self.generator = generator
        self.draws: list[Tensor] = []
        self.states_after: list[Tensor] = []

    def sample(self, *args: Any, **kwargs: Any) -> Tensor:
        out = self.inner.sample(*args, **kwargs)
        self.draws.append(out.detach().clone())
        self.states_after.append(self.generator.get_state())
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RecordingTransform(Transform):
    """Wrap an ssibench transform: record each parameter draw and the generator state after."""

    def __init__(self, inner: Transform, generator: torch.Generator) -> None:
        self.inner = inner
        self.generator = generator
        self.unitary = inner.unitary
        self.draws: list[dict[str, Tensor]] = []
        self.states_after: list[Tensor] = []

    def sample_params(self, x: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        params = self.inner.sample_params(x, generator)
        self.draws.append({k: v.detach().clone() for k, v in params.items()})
        self.states_after.append(self.generator.get_state())
        return params

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        return self.inner.apply(x, params)

    def inverse(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        return self.inner.inverse(x, params)


class StateRecorder:
    """Forward pre-hook: record a generator's state before every call of a module."""

    def __init__(self, module: nn.Module, generator: torch.Generator) -> None:
        self.states: list[Tensor] = []
        module.register_forward_pre_hook(lambda *_: self.states.append(generator.get_state()))


class GlobalStateReplay:
    """Forward pre-hook: set torch's global generator to the next recorded state on every call."""

    def __init__(self, module: nn.Module, states: list[Tensor]) -> None:
        self.states = deque(states)
        module.register_forward_pre_hook(lambda *_: torch.set_rng_state(self.states.popleft()))


class ReplayMasks(nn.Module):
    """Stands in for a DeepInverse mask generator: ``step`` returns the recorded masks in order.

    A module, as DeepInverse's generators are (losses register them as submodules).

    Args:
        masks: ssibench masks ``(B, 1, ...)``, one per expected ``step`` call, in call order.
        average: ``average()["mask"]`` (the sampling probabilities), for the weighted losses.
    """

    def __init__(self, masks: list[Tensor], average: Tensor | None = None) -> None:
        super().__init__()
        self.masks = deque(channels2(m) for m in masks)
        self._average = average

    def step(self, batch_size: int = 1, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        # MOILoss asks for one mask (batch_size=1) shared by the batch; the replay hands over
        # ssibench's per-sample masks, which DeepInverse's operators accept as a batch of masks.
        return {"mask": self.masks.popleft()}

    def average(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        if self._average is None:
            raise ValueError("no probabilities were given to this replay")
        return {"mask": self._average.clone()}


def _fixed_noise_model(dinv: Any, sigma: float, noise: Tensor) -> Any:
    """A DeepInverse noise model returning y + σ ε with a given ε (RandomNoise's draw)."""

    class FixedNoise(dinv.physics.NoiseModel):
        def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            return x + sigma * noise.to(x)

    return FixedNoise()


def _member_steps(
    dinv: Any, transform: Transform, params: dict[str, Tensor], b: int, lib_theta: Callable | None
) -> list[tuple[Any, dict[str, Any]]]:
    """The DeepInverse transform(s) and parameters equal to ssibench's ``transform`` on sample b."""
    dt = dinv.transform
    if isinstance(transform, RecordingTransform):
        return _member_steps(dinv, transform.inner, params, b, lib_theta)
    if isinstance(transform, Identity):
        return []
    if isinstance(transform, Rotate):
        rotate = dt.Rotate(limits=transform.limits, interpolation_mode="nearest")
        return [(rotate, {"theta": params["angles"][b : b + 1].float()})]
    if isinstance(transform, Shift):
        rows, cols = params["shifts"][b]
        return [(dt.Shift(), {"x_shift": cols.view(1), "y_shift": rows.view(1)})]
    if isinstance(transform, RandomPhaseError):
        phase = params["phase"][b]
        return [(dt.RandomPhaseError(), {"se": phase[0:1], "so": phase[1:2]})]
    if isinstance(transform, RandomNoise):
        model = _fixed_noise_model(dinv, float(params["sigma"][b]), params["noise"][b : b + 1])
        return [(dt.RandomNoise(), {"noise_model": [model]})]
    if isinstance(transform, CPABDiffeomorphism):
        if lib_theta is None:
            raise ValueError("CPAB parity needs the map to libcpab's coefficients")
        cpab = lib_theta.transform  # the DeepInverse CPABDiffeomorphism (libcpab)
        return [(cpab, {"diffeo": lib_theta(params["theta"][b : b + 1])})]
    if isinstance(transform, Compose):
        steps = []
        for index, member in enumerate(transform.transforms):
            steps += _member_steps(dinv, member, _member(index, params), b, lib_theta)
        return steps
    if isinstance(transform, RandomChoice):
        choice = int(params["choice"][b])
        member = transform.transforms[choice]
        return _member_steps(dinv, member, _member(choice, params), b, lib_theta)
    raise TypeError(f"no DeepInverse counterpart for {type(transform).__name__}")


def deepinv_steps(
    dinv: Any,
    transform: Transform,
    params: dict[str, Tensor],
    batch: int,
    lib_theta: Callable | None = None,
) -> list[list[tuple[Any, dict[str, Any]]]]:
    """Per sample, the DeepInverse transforms (in order) and parameters of one ssibench draw."""
    return [_member_steps(dinv, transform, params, b, lib_theta) for b in range(batch)]


def per_sample_transform(dinv: Any, draws: list[list[list[tuple[Any, dict[str, Any]]]]]) -> Any:
    """A DeepInverse transform replaying ``draws`` (one per ``get_params`` call), sample by sample.

    Each draw lists, per sample, DeepInverse transforms applied in order with their parameters
    (``t1 * t2`` applies t1 then t2, as here); the inverse applies the inverses in reverse order
    with DeepInverse's own parameter negation.
    """

    class PerSampleTransform(dinv.transform.Transform):
        def __init__(self) -> None:
            super().__init__(flatten_video_input=False)
            self.queue = deque(draws)

        def _get_params(self, x: Tensor) -> dict[str, Any]:
            return {"per_sample": self.queue.popleft()}

        def transform(self, x: Tensor, **params: Any) -> Tensor:
            return self._transform(x, **params)

        def _transform(self, x: Tensor, per_sample: Any = (), **kwargs: Any) -> Tensor:
            out = []
            for b, steps in enumerate(per_sample):
                xb = x[b : b + 1]
                for member, member_params in steps:
                    xb = member._transform(xb, **member_params)
                out.append(xb)
            return torch.cat(out)

        def inverse(self, x: Tensor, batchwise: bool = True, **params: Any) -> Tensor:
            out = []
            for b, steps in enumerate(params["per_sample"]):
                xb = x[b : b + 1]
                for member, member_params in reversed(steps):
                    xb = member.transform(xb, **member.invert_params(member_params))
                out.append(xb)
            return torch.cat(out)

    return PerSampleTransform()
