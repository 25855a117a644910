"""Splitting along time: Phase2Phase and Artifact2Artifact for time-resolved MRI.

The T acquired frames are split into input frames 𝒯₁ and target frames 𝒯₂ (|𝒯₁| = |𝒯₂| = T'). The
network sees only the input frames, with the operator restricted to them, and is scored on the
target frames' measurements:

    x̂ = f(y_𝒯₁, A_𝒯₁),   L = Σ (M_𝒯₂ ⊙ (A_𝒯₂ x̂ − y_𝒯₂))² / Σ M_𝒯₂      (sums over entries)

i.e. the mean squared error per held-out k-space entry (real and imaginary parts are entries).

* ``dynamic_model=True`` (a video network, :class:`~ssibench.physics.time.DynamicMRI`): x̂ has
  T' frames and its frame j is compared with target frame 𝒯₂[j] — the neighbouring respiratory
  phase (Phase2Phase) or the same position in another chunk (Artifact2Artifact).
* ``dynamic_model=False`` (an image network, e.g. with
  :class:`~ssibench.physics.time.SequentialMRI`): the model is wrapped in
  :class:`~ssibench.models.time.TimeAveraging` (it reads the time-averaged input frames through
  the union-mask operator) and the loss compares F x̂ with the time-averaged target k-space on the
  union Ω₂ of the target masks: L = Σ_Ω₂ (F x̂ − ȳ_𝒯₂)² / |Ω₂| (entries).

Evaluation always reconstructs from all T frames (the reference's ``eval_split_input=False``).

Deliberate differences from the reference (DeepInverse ``loss/mri/measplit.py``):

* The reference divides an MSE over the compared frames by the held-out fraction of all T frames,
  which scales the loss by a constant factor: T/T' for a video model (2 for Phase2Phase, T/s for
  Artifact2Artifact, changing from step to step when s is random) and T for a static-image model
  such as the ``sequential`` scenario's (measured: ``benchmarks/parity_deepinv.py``,
  docs/parity.md); here the normaliser is the held-out entries actually compared.
* Artifact2Artifact keeps its chunk choice per sample, so a sample's target chunk never equals its
  input chunk (the reference overwrote one shared "previous index" inside the per-sample loop,
  bug B6), and draws the chunk size once per batch (the reference drew it per sample, which crashes
  for B > 1 when two samples get different sizes). Randomness comes from the injected ``loss``
  generator, not a fresh default-seeded one.
* Time averages count the mask, not the non-zero entries of y.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss
from ssibench.models.time import TimeAveraging
from ssibench.physics import DynamicMRI, Physics, SequentialMRI, select_frames, time_average
from ssibench.rng import on_device

__all__ = [
    "Artifact2ArtifactLoss",
    "Artifact2ArtifactSplitter",
    "FrameSplit",
    "FrameSplitter",
    "FrameSplittingModel",
    "Phase2PhaseLoss",
    "Phase2PhaseSplitter",
]

TimePhysics = DynamicMRI | SequentialMRI


class FrameSplit(NamedTuple):
    """Input and target frames of one training batch, one row per sample.

    Attributes:
        input_frames: 𝒯₁, ``(B, T')`` int64, what the network sees.
        target_frames: 𝒯₂, ``(B, T')`` int64, what the loss scores; disjoint from 𝒯₁ per row.
    """

    input_frames: Tensor
    target_frames: Tensor


class FrameSplitter(Protocol):
    """Draws a :class:`FrameSplit` for a batch."""

    def sample(
        self,
        batch_size: int,
        n_frames: int,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> FrameSplit:
        """Input/target frames ``(B, T')`` on ``device``."""


class Phase2PhaseSplitter:
    """Even frames in, odd frames out: 𝒯₁ = (0, 2, 4, …), 𝒯₂ = (1, 3, 5, …); deterministic.

    Frame 2k is paired with its neighbour 2k + 1, so T must be even (all frames are used).

    Example:
        >>> split = Phase2PhaseSplitter().sample(2, 4, None, torch.device("cpu"))
        >>> split.input_frames.tolist(), split.target_frames.tolist()
        ([[0, 2], [0, 2]], [[1, 3], [1, 3]])
    """

    def sample(
        self,
        batch_size: int,
        n_frames: int,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> FrameSplit:
        """The even/odd split for every sample (``generator`` is not used)."""
        if n_frames < 2 or n_frames % 2:
            raise ValueError(
                f"Phase2Phase pairs even frame 2k with odd frame 2k+1, so it needs an even number "
                f"of frames T ≥ 2; got T = {n_frames}"
            )
        frames = torch.arange(n_frames, device=device).view(n_frames // 2, 2)
        return FrameSplit(frames[:, 0].expand(batch_size, -1), frames[:, 1].expand(batch_size, -1))


class Artifact2ArtifactSplitter:
    """One random chunk of s consecutive frames in, another chunk of the same sample out.

    The T frames form n = T/s aligned chunks [k s, (k+1) s). Per batch, s is ``split_size`` or, for
    a tuple, one of its entries drawn uniformly. Per sample b, the input chunk k₁ is uniform on
    {0 … n−1} and the target chunk uniform on the other n − 1 chunks (k₂ = r + [r ≥ k₁],
    r uniform on {0 … n−2}), so k₂ ≠ k₁ always (Liu et al., "RARE: Image Reconstruction using Deep
    Priors Learned without Ground Truth", IEEE JSTSP 2020, arXiv:1912.05854).

    A tuple ``split_size`` costs one host synchronisation per batch (the chunk size is a shape).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> split = Artifact2ArtifactSplitter(2).sample(3, 6, g, torch.device("cpu"))
        >>> split.input_frames.shape, bool((split.input_frames != split.target_frames).all())
        (torch.Size([3, 2]), True)
    """

    def __init__(self, split_size: int | tuple[int, ...] = 2) -> None:
        sizes = tuple(split_size) if isinstance(split_size, (tuple, list)) else (split_size,)
        if not sizes or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(
                f"split_size must be a positive integer or a non-empty tuple of them; got "
                f"{split_size!r}"
            )
        self.split_sizes = sizes

    def sample(
        self,
        batch_size: int,
        n_frames: int,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> FrameSplit:
        """Draw s, then the input and target chunk of every sample.

        Raises:
            ValueError: without a generator, or if a chunk size does not fit T.
        """
        if generator is None:
            raise ValueError("Artifact2Artifact draws random chunks: pass the loss generator")
        bad = [s for s in self.split_sizes if n_frames % s or n_frames // s < 2]
        if bad:
            raise ValueError(
                f"Artifact2Artifact cuts the T = {n_frames} frames into at least 2 chunks of "
                f"split_size frames, so every split_size must divide T and be at most T/2; "
                f"got split_size {bad} (allowed: divisors of {n_frames} up to {n_frames // 2})"
            )
        draw_device = generator.device
        size = self.split_sizes[0]
        if len(self.split_sizes) > 1:
            choice = torch.randint(
                len(self.split_sizes), (1,), generator=generator, device=draw_device
            )
            size = self.split_sizes[int(choice)]
        n_chunks = n_frames // size
        first = torch.randint(n_chunks, (batch_size,), generator=generator, device=draw_device)
        other = torch.randint(n_chunks - 1, (batch_size,), generator=generator, device=draw_device)
        second = other + (other >= first).long()
        offsets = torch.arange(size, device=device)
        return FrameSplit(
            on_device(first, device)[:, None] * size + offsets,
            on_device(second, device)[:, None] * size + offsets,
        )


class FrameSplittingModel(nn.Module):
    """Wrap a model so that, in training, it reconstructs from the input frames only.

    Training: draw a :class:`FrameSplit`, return f(y_𝒯₁, A_𝒯₁) with A_𝒯₁ = A restricted to the
    input frames' masks; with ``update_parameters=True`` (the trainer's own forward) the split is
    recorded in ``last_split`` for the loss, and other forwards do not overwrite it. Evaluation:
    f(y, A) on all frames.

    Shapes: y ``(B, 2, T, H, W)``; physics a :class:`DynamicMRI` or :class:`SequentialMRI`.
    """

    def __init__(
        self,
        model: nn.Module,
        splitter: FrameSplitter,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.splitter = splitter
        self.generator = generator
        self.last_split: FrameSplit | None = None

    def forward(self, y: Tensor, physics: TimePhysics, update_parameters: bool = False) -> Tensor:
        """Reconstruct from the input frames (training) or all frames (evaluation)."""
        if not self.training:
            return self.model(y, physics)
        split = self.splitter.sample(y.shape[0], y.shape[2], self.generator, y.device)
        if update_parameters:
            self.last_split = split
        input_physics = physics.with_mask(select_frames(physics.mask, split.input_frames))
        return self.model(select_frames(y, split.input_frames), input_physics)


def _adapt(
    model: nn.Module,
    splitter: FrameSplitter,
    generator: torch.Generator | None,
    dynamic_model: bool,
) -> FrameSplittingModel:
    """Wrap ``model`` (idempotent); a static model first reads time averages (TimeAveraging)."""
    if isinstance(model, FrameSplittingModel):
        return model
    inner = model if dynamic_model else TimeAveraging(model)
    return FrameSplittingModel(inner, splitter, generator)


def _target_frame_loss(
    x_net: Tensor, y: Tensor, physics: Physics, model: nn.Module, dynamic_model: bool, name: str
) -> Tensor:
    """Mean squared error per held-out entry on the target frames recorded by the wrapper."""
    if not isinstance(model, FrameSplittingModel) or model.last_split is None:
        raise RuntimeError(
            f"{name} needs the model returned by its adapt_model(), called in training mode with "
            "update_parameters=True before the loss"
        )
    if not isinstance(physics, (DynamicMRI, SequentialMRI)):
        raise TypeError(
            f"{name} splits measurements along time; it needs DynamicMRI or SequentialMRI "
            f"physics, got {type(physics).__name__}"
        )
    frames = model.last_split.target_frames
    target_mask = select_frames(physics.mask, frames)
    target_y = select_frames(y, frames)
    if dynamic_model:
        if not isinstance(physics, DynamicMRI):
            raise TypeError(
                f"{name} with dynamic_model=True scores a video through DynamicMRI; got "
                f"{type(physics).__name__} (for SequentialMRI use dynamic_model=False)"
            )
        if x_net.ndim != 5 or x_net.shape[2] != frames.shape[1]:
            raise ValueError(
                f"{name} with dynamic_model=True compares a video of {frames.shape[1]} frames "
                f"(B, 2, T', H, W) with the target frames; got x_net {tuple(x_net.shape)}. "
                "For a static image model use dynamic_model=False"
            )
        residual = physics.with_mask(target_mask).A(x_net) - target_mask * target_y
        entries = target_mask.sum() * residual.shape[1]
    else:
        if x_net.ndim != 4:
            raise ValueError(
                f"{name} with dynamic_model=False expects static images (B, 2, H, W); got x_net "
                f"{tuple(x_net.shape)}. For a video model use dynamic_model=True"
            )
        static = physics.with_mask(target_mask).to_static()
        residual = static.A(x_net) - time_average(target_y, target_mask)
        entries = static.mask.sum() * residual.shape[1]
    return residual.pow(2).sum() / entries.clamp_min(1.0)


class Phase2PhaseLoss(Loss):
    """Phase2Phase: reconstruct from the even frames, score on the odd frames.

    Eldeniz et al., "Phase2Phase: Respiratory Motion-Resolved Reconstruction of Free-Breathing
    Magnetic Resonance Imaging Using Deep Learning Without a Ground Truth for Improved Liver
    Imaging", Investigative Radiology 2021 (with :class:`Phase2PhaseSplitter`).

    L = Σ (M_odd ⊙ (A_odd x̂ − y_odd))² / Σ M_odd with x̂ = f(y_even, A_even)
    (``dynamic_model=True``), or the time-averaged form (``dynamic_model=False``); see the module
    docstring for both forms and for the differences from the reference. x_net:
    ``(B, 2, T/2, H, W)`` (video) or ``(B, 2, H, W)`` (static); y ``(B, 2, T, H, W)``; returns a
    0-dim tensor.

    Args:
        dynamic_model: the network outputs videos (True) or static images (False; it is then wrapped
            in :class:`~ssibench.models.time.TimeAveraging`).

    Example:
        >>> loss = Phase2PhaseLoss(dynamic_model=False)
        >>> type(loss.adapt_model(nn.Identity())).__name__
        'FrameSplittingModel'
    """

    def __init__(self, dynamic_model: bool = True) -> None:
        super().__init__()
        self.dynamic_model = dynamic_model
        self.splitter = Phase2PhaseSplitter()

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`FrameSplittingModel` (idempotent)."""
        return _adapt(model, self.splitter, None, self.dynamic_model)

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
        """Mean squared error per held-out entry on the odd frames (module docstring)."""
        return _target_frame_loss(x_net, y, physics, model, self.dynamic_model, "Phase2PhaseLoss")


class Artifact2ArtifactLoss(Loss):
    """Artifact2Artifact: reconstruct from one random chunk of frames, score on another.

    Liu, Sun, Eldeniz, Gan, An, Kamilov, "RARE: Image Reconstruction using Deep Priors Learned
    without Ground Truth", IEEE JSTSP 2020, arXiv:1912.05854 (with
    :class:`Artifact2ArtifactSplitter`). L = Σ (M₂ ⊙ (A₂ x̂ − y₂))² / Σ M₂ with x̂ = f(y₁, A₁), chunks
    1 ≠ 2 of ``split_size`` frames drawn per sample (or the time-averaged form for
    ``dynamic_model=False``); one target chunk per step, a Monte-Carlo version of comparing with
    every other chunk (as the reference). Shapes as :class:`Phase2PhaseLoss` with T' = s.

    Args:
        generator: the ``loss`` stream, for the chunk choices.
        split_size: chunk length s, or a tuple of lengths to draw from per batch; each must divide T
            and leave at least two chunks.
        dynamic_model: the network outputs videos (True) or static images (False).

    Example:
        >>> loss = Artifact2ArtifactLoss(torch.Generator().manual_seed(0), split_size=(1, 2))
        >>> loss.splitter.split_sizes
        (1, 2)
    """

    def __init__(
        self,
        generator: torch.Generator,
        split_size: int | tuple[int, ...] = 2,
        dynamic_model: bool = True,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.dynamic_model = dynamic_model
        self.splitter = Artifact2ArtifactSplitter(split_size)

    def adapt_model(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in a :class:`FrameSplittingModel` (idempotent)."""
        return _adapt(model, self.splitter, self.generator, self.dynamic_model)

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
        """Mean squared error per held-out entry on the target chunk (module docstring)."""
        return _target_frame_loss(
            x_net, y, physics, model, self.dynamic_model, "Artifact2ArtifactLoss"
        )
