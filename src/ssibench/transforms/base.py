"""The transform contract and the transforms that combine others.

A transform separates its randomness from its action, so that one draw can be replayed::

    params = t.sample_params(x, generator)  # named tensors, first dim = batch
    out = t.apply(x, params)                # deterministic given params
    back = t.inverse(out, params)           # T⁻¹ with the same draw
    out = t(x, generator)                   # = t.apply(x, t.sample_params(x, generator))

Parameters are drawn on the generator's device (``device=generator.device``, so a CUDA generator
works) and returned on ``x``'s device. Every transform accepts images ``(B, 2, H, W)``, k-space
``(B, 2, N, H, W)`` and video ``(B, 2, T, H, W)``; geometric transforms apply the same geometry to
every frame (or coil) of a sample.

Differences from DeepInverse's ``deepinv.transform``: parameters are drawn per sample instead of
once per batch (``n_trans`` copies are not supported: the output has the input's batch size); the
composition :class:`Compose` keeps each member's parameters under its own key prefix instead of
merging them (no key clash); :class:`RandomChoice` draws its choice once, in :meth:`sample_params`,
and carries it in the parameters, instead of re-flipping a coin at every application (SSIBench bug
B2, which made ``Shift | Rotate`` pick independently for the input, the target and every adjoint
call inside the model).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ssibench.rng import on_device

__all__ = [
    "Compose",
    "Identity",
    "RandomChoice",
    "Transform",
    "TransformParams",
    "as_images",
]

#: A transform's random draw: named tensors whose first dimension indexes the batch.
TransformParams = dict[str, Tensor]

#: Key of the per-sample choice in :class:`RandomChoice` parameters.
CHOICE_KEY = "choice"


class Transform(abc.ABC):
    """Base of all transforms: ``sample_params`` (random), ``apply``/``inverse`` (deterministic)."""

    #: True when T is exactly unitary for every parameter draw: T⁻¹ = Tᴴ, so ``inverse`` undoes
    #: ``apply`` exactly and is its adjoint (circular shifts, phase errors). An operator conjugated
    #: by a unitary transform can then reuse the operator's own closed-form solves.
    unitary: bool = False

    @abc.abstractmethod
    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """Draw one parameter set per sample of ``x`` ``(B, 2, ...)`` from ``generator``."""

    @abc.abstractmethod
    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Apply the transform with the given parameters; the output has the shape of ``x``."""

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """Apply the inverse transform T⁻¹ with the given parameters.

        Raises:
            NotImplementedError: for transforms without an inverse (random noise).
        """
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """T(x) with a fresh draw: ``apply(x, sample_params(x, generator))``."""
        return self.apply(x, self.sample_params(x, generator))


@dataclass(frozen=True)
class Identity(Transform):
    """T(x) = x, with no parameters (SSIBench's ``T_e`` of Noise2Recon).

    Example:
        >>> x = torch.randn(2, 2, 4, 4)
        >>> torch.equal(Identity()(x, torch.Generator().manual_seed(0)), x)
        True
    """

    unitary = True

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """No parameters."""
        return {}

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Return ``x``."""
        return x

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """Return ``x``."""
        return x


def _prefixed(index: int, params: TransformParams) -> TransformParams:
    return {f"{index}.{key}": value for key, value in params.items()}


def _member(index: int, params: TransformParams) -> TransformParams:
    prefix = f"{index}."
    return {key[len(prefix) :]: value for key, value in params.items() if key.startswith(prefix)}


def as_images(x: Tensor) -> Tensor:
    """View ``(B, C, ..., H, W)`` as images ``(B, C·…, H, W)`` (frames or coils become channels).

    Geometric transforms act on this view, so every frame of a video or every coil of a sample gets
    the same geometry; reshape the result back with ``out.view(x.shape)``.
    """
    return x.reshape(x.shape[0], -1, *x.shape[-2:])


class Compose(Transform):
    """Chain T = Tₖ ∘ … ∘ T₁: ``transforms[0]`` acts first; T⁻¹ = T₁⁻¹ ∘ … ∘ Tₖ⁻¹.

    Each member draws its own parameters (members in order), kept under the key prefix ``"i."``.
    DeepInverse writes this ``t1 * t2``. Parameters are drawn on the shape of ``x``: every member
    must keep the shape (all transforms here do).

    Example:
        >>> from ssibench.transforms import RandomNoise, RandomPhaseError
        >>> t = Compose([RandomPhaseError(scale=0.1), RandomNoise(sigma=0.1)])
        >>> t(torch.randn(2, 2, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 2, 8, 8])
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        if len(transforms) == 0:
            raise ValueError("Compose needs at least one transform; use Identity() for none")
        self.transforms = tuple(transforms)
        self.unitary = all(t.unitary for t in self.transforms)

    def __repr__(self) -> str:
        return f"Compose({list(self.transforms)!r})"

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """The union of the members' draws, member i under the prefix ``"i."``."""
        params: TransformParams = {}
        for index, transform in enumerate(self.transforms):
            params.update(_prefixed(index, transform.sample_params(x, generator)))
        return params

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """Tₖ(… T₁(x))."""
        for index, transform in enumerate(self.transforms):
            x = transform.apply(x, _member(index, params))
        return x

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """T₁⁻¹(… Tₖ⁻¹(x))."""
        for index in reversed(range(len(self.transforms))):
            x = self.transforms[index].inverse(x, _member(index, params))
        return x


class RandomChoice(Transform):
    """Per sample, one of the member transforms chosen uniformly at random.

    The choice c_b ∈ {0, …, k−1} is drawn once per sample in :meth:`sample_params` (key
    ``"choice"``, drawn before the members' parameters) and reused by every :meth:`apply` and
    :meth:`inverse` with those parameters: T(x)_b = T_{c_b}(x)_b. DeepInverse writes this
    ``t1 | t2`` and re-flips its coin at every application (SSIBench bug B2); we do not. Every
    member is applied to the whole batch and the outputs are selected per sample (vectorised; costs
    k applications).

    Example:
        >>> from ssibench.transforms import Rotate, Shift
        >>> t = RandomChoice([Shift(shift_max=0.1), Rotate(limits=15)])
        >>> p = t.sample_params(torch.zeros(4, 2, 8, 8), torch.Generator().manual_seed(0))
        >>> p["choice"].shape
        torch.Size([4])
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        if len(transforms) < 2:
            raise ValueError(f"RandomChoice needs at least two transforms; got {len(transforms)}")
        self.transforms = tuple(transforms)
        self.unitary = all(t.unitary for t in self.transforms)

    def __repr__(self) -> str:
        return f"RandomChoice({list(self.transforms)!r})"

    def sample_params(self, x: Tensor, generator: torch.Generator) -> TransformParams:
        """``choice`` ``(B,)`` int64, then every member's parameters under the prefix ``"i."``."""
        choice = torch.randint(
            len(self.transforms), (x.shape[0],), generator=generator, device=generator.device
        )
        params: TransformParams = {CHOICE_KEY: on_device(choice, x.device)}
        for index, transform in enumerate(self.transforms):
            params.update(_prefixed(index, transform.sample_params(x, generator)))
        return params

    def _select(self, x: Tensor, params: TransformParams, inverse: bool) -> Tensor:
        choice = params[CHOICE_KEY].view(-1, *([1] * (x.ndim - 1)))
        out = x
        for index, transform in enumerate(self.transforms):
            member = _member(index, params)
            candidate = transform.inverse(x, member) if inverse else transform.apply(x, member)
            out = torch.where(choice == index, candidate, out)
        return out

    def apply(self, x: Tensor, params: TransformParams) -> Tensor:
        """T_{c_b}(x_b) for every sample b."""
        return self._select(x, params, inverse=False)

    def inverse(self, x: Tensor, params: TransformParams) -> Tensor:
        """T_{c_b}⁻¹(x_b) for every sample b."""
        return self._select(x, params, inverse=True)
