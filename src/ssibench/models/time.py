"""Wrappers that run image networks and reconstructors on time-resolved MRI data.

* :class:`TimeAgnostic` runs an image network ``net(x)`` on every frame of a video
  ``(B, C, T, H, W)`` by folding T into the batch; a static ``(B, C, H, W)`` input passes through.
  ``MoDL(TimeAgnostic(UNet))`` (:func:`build_dynamic_modl`) is therefore one model for every
  operator: with :class:`~ssibench.physics.time.DynamicMRI` its Aᴴ and data-consistency steps
  act on videos and it returns a video; with :class:`~ssibench.physics.time.SequentialMRI` they
  return static images and it returns a static image; with the 2-D operators it is plain MoDL.
* :class:`TimeAgnosticReconstructor` runs a reconstructor ``model(y, physics)`` frame by frame on
  dynamic data (each frame from its own k-space only), through ``DynamicMRI.fold_frames``.
* :class:`TimeAveraging` lets a static reconstructor read time-resolved k-space: it averages the
  frames (:func:`~ssibench.physics.time.time_average`) and uses the union-mask operator
  ``physics.to_static()`` — the reference's ``TimeAveragingNet``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ssibench.models.modl import MoDL, build_modl
from ssibench.physics import (
    DynamicMRI,
    Physics,
    SequentialMRI,
    fold_time,
    time_average,
    unfold_time,
)

__all__ = [
    "TimeAgnostic",
    "TimeAgnosticReconstructor",
    "TimeAveraging",
    "build_dynamic_modl",
]


class TimeAgnostic(nn.Module):
    """Apply an image network to each frame: out[:, :, t] = net(x[:, :, t]) for t = 0 … T−1.

    The frames are folded into the batch, ``(B, C, T, H, W)`` → ``(B·T, C, H, W)``, so the network
    runs once on all of them; a 4-D input ``(B, C, H, W)`` is passed to the network unchanged.

    Example:
        >>> from ssibench.models.unet import UNet
        >>> net = TimeAgnostic(UNet(scales=2, width=4))
        >>> net(torch.randn(2, 2, 3, 8, 8)).shape, net(torch.randn(2, 2, 8, 8)).shape
        (torch.Size([2, 2, 3, 8, 8]), torch.Size([2, 2, 8, 8]))
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T, H, W)`` → ``(B, C', T, H, W)`` frame by frame, or ``(B, C, H, W)`` as is."""
        if x.ndim == 4:
            return self.network(x)
        return unfold_time(self.network(fold_time(x)), x.shape[0])


class TimeAgnosticReconstructor(nn.Module):
    """Run a reconstructor ``model(y, physics)`` independently on every frame of dynamic data.

    With :class:`DynamicMRI`: x̂[:, :, t] = model(y[:, :, t], A_t), each frame with its own mask,
    all frames at once as a batch of B·T (``physics.fold_frames``). Any other operator is passed to
    the model unchanged. For a MoDL whose denoiser acts per frame this equals
    ``MoDL(TimeAgnostic(denoiser))`` called on the video directly.

    Shapes: y ``(B, 2, T, H, W)`` → ``(B, 2, T, H, W)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: Tensor, physics: Physics) -> Tensor:
        """Reconstruct a video frame by frame (see the class docstring)."""
        if not isinstance(physics, DynamicMRI):
            return self.model(y, physics)
        batch = y.shape[0]
        return unfold_time(self.model(fold_time(y), physics.fold_frames(batch)), batch)


class TimeAveraging(nn.Module):
    """Give a static reconstructor the time-averaged k-space: x̂ = model(ȳ, A_static).

    ȳ = Σₜ Mₜ yₜ / Σₜ Mₜ (``time_average``) and A_static = ``physics.to_static()`` (union mask). For
    :class:`SequentialMRI` with disjoint frames this is the same acquisition as (y, A), so e.g. MoDL
    gives the same result either way. As the reference's ``TimeAveragingNet`` (Phase2Phase /
    Artifact2Artifact with ``dynamic_model=False``), except that the average counts the mask, not
    the non-zero entries of y.

    Shapes: y ``(B, 2, T, H, W)`` → the model's output, ``(B, 2, H, W)`` for an image model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: Tensor, physics: DynamicMRI | SequentialMRI) -> Tensor:
        """Reconstruct a static image from time-resolved measurements."""
        return self.model(time_average(y, physics.mask), physics.to_static())


def build_dynamic_modl(
    num_iter: int = 3,
    step_order: Literal["dc-first", "denoiser-first"] = "dc-first",
    scales: int = 4,
    width: int = 64,
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
    identity_init: bool = False,
) -> MoDL:
    """MoDL with a frame-wise U-Net, ``MoDL(TimeAgnostic(UNet))``; arguments as ``build_modl``.

    The U-Net is built (and initialised from ``generator``) exactly as by
    :func:`~ssibench.models.modl.build_modl`, so its weights equal the static model's for the same
    generator state; only the state-dict keys gain ``denoiser.network.`` instead of ``denoiser.``.
    """
    static = build_modl(
        num_iter=num_iter,
        step_order=step_order,
        scales=scales,
        width=width,
        batch_norm=batch_norm,
        generator=generator,
        identity_init=identity_init,
    )
    return MoDL(TimeAgnostic(static.denoiser), num_iter=num_iter, step_order=step_order)
