"""The one constructor of a run's optimisation state, shared by the workflow and the notebook.

:func:`training_state` builds what every run optimises with (Adam on the network at ``train.lr``,
the gradient scaler of ``train.amp``, the MultiStepLR schedule, the ``shuffle`` and ``loss``
streams of the seed), :func:`plain_trainable` turns a network and its losses into the loop's
:class:`~ssibench.training.loop.Trainable` with the plain step. A method by name
(:func:`ssibench.training.run.build_trainable`) and a network with losses of one's own
(:func:`ssibench.api.fit`) go through both, so the optimiser and the schedule are built once, in
one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssibench.config.records import TrainConfig
from ssibench.losses import Loss
from ssibench.precision import autocast_forward, grad_scaler
from ssibench.rng import stream
from ssibench.training.checkpoint import TrainingState
from ssibench.training.loop import Trainable
from ssibench.training.step import adapt, plain_step

__all__ = ["plain_trainable", "training_state"]


def training_state(
    network: nn.Module, config: TrainConfig, device: torch.device, seed: int
) -> TrainingState:
    """The optimisation state of ``network`` (already on ``device``) for a run of ``seed``.

    Modules ``model`` (the network; MoDL's denoiser, or a plugin's network as a whole, runs under
    the autocast of ``train.amp``); optimiser ``optimizer`` = Adam(lr = ``train.lr``); scaler
    ``scaler``; scheduler ``scheduler`` = MultiStepLR(``lr_milestones``, ``lr_gamma``);
    generators ``shuffle`` and ``loss`` (:func:`ssibench.rng.stream` of ``seed``).
    """
    autocast_forward(getattr(network, "denoiser", network), config.amp, device.type)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.lr_milestones), gamma=config.lr_gamma
    )
    return TrainingState(
        modules={"model": network},
        optimizers={"optimizer": optimizer},
        generators={"shuffle": stream(seed, "shuffle"), "loss": stream(seed, "loss")},
        scalers={"scaler": grad_scaler(config.amp, device)},
        schedulers={"scheduler": scheduler},
    )


def plain_trainable(network: nn.Module, losses: Sequence[Loss], state: TrainingState) -> Trainable:
    """``network`` trained on Σᵢ lossesᵢ by the plain step, with the optimiser of ``state``.

    The losses that wrap the model (:func:`~ssibench.training.step.adapt`) do so here, and join
    the checkpointed modules (``losses``), so a loss with state of its own resumes with it.
    """
    losses = list(losses)
    model = adapt(network, losses)
    optimizer, scaler = state.optimizers["optimizer"], state.scalers["scaler"]
    state.modules["losses"] = nn.ModuleList(losses)
    step = plain_step(model, losses, optimizer, scaler)
    return Trainable(network, model, losses, step, state, optimizer, state.schedulers["scheduler"])
