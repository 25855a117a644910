"""An example ssibench plugin: a loss (as a method), a model and a metric, outside the package.

Use it from a config overlay, with this folder on ``PYTHONPATH``::

    plugins: [ssibench_tv_plugin]
    extra_methods: [mc-tv]               # MC + total variation, beside the built-in methods
    metrics: [psnr, ssim, nmse, mae]     # one more column in metrics.csv
    # model: {name: residual-cnn, options: {width: 16}}   # train every method with this network

The loss is written in DeepInverse's signature (positional arguments, ``**kwargs``) and returns one
value per sample, ``(B,)``, which ssibench averages, as DeepInverse's trainer does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import ssibench
from ssibench.losses import MCLoss

#: Weight of the total-variation term (the method's option default).
TV_WEIGHT = 0.01


class TVLoss(nn.Module):
    """Anisotropic total variation of the reconstruction, per sample: TV(x̂) = mean |∇x̂|.

    ``x_net`` is ``(B, 2, H, W)``; returns ``(B,)`` (weight ``weight``).
    """

    def __init__(self, weight: float = TV_WEIGHT) -> None:
        super().__init__()
        self.weight = weight

    def forward(
        self, x_net: Tensor, y: Tensor, physics: object, model: nn.Module, **kwargs: object
    ) -> Tensor:
        """TV of each sample of the batch, ``(B,)``."""
        rows = (x_net[..., 1:, :] - x_net[..., :-1, :]).abs().flatten(1).mean(dim=1)
        cols = (x_net[..., :, 1:] - x_net[..., :, :-1]).abs().flatten(1).mean(dim=1)
        return self.weight * (rows + cols)


class ResidualCNN(nn.Module):
    """x̂ = Aᴴy + CNN(Aᴴy): a small residual network, called ``model(y, physics)``."""

    def __init__(self, width: int = 16, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2, 3, padding=1),
        )
        if generator is not None:  # reproducible initialisation from the run's `init` stream
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))

    def forward(self, y: Tensor, physics: object) -> Tensor:
        """The reconstruction ``(B, 2, H, W)`` of ``y`` (any shape ``physics.A_adjoint`` takes)."""
        x0 = physics.A_adjoint(y)
        return x0 + self.net(x0)


def residual_cnn_cost(image_size: tuple[int, int], width: int = 16) -> tuple[float, float]:
    """(MACs of one forward pass, floats kept for backprop) on one H × W image: two 3×3 convs."""
    pixels = image_size[0] * image_size[1]
    return 9 * (2 * width + width * 2) * pixels, (2 + 2 * width + 2) * pixels


def mean_absolute_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """MAE of the magnitude images, per image: mean |‖x̂‖ − ‖x‖| over pixels → ``(B,)``."""
    return (x_hat.norm(dim=1) - x.norm(dim=1)).abs().flatten(1).mean(dim=1)


ssibench.register_method(
    "mc-tv",
    lambda context: [MCLoss(), TVLoss(context.options.tv_weight)],
    label="MC+TV",
    defaults={"tv_weight": TV_WEIGHT},
    citation="Example plugin: measurement consistency + total variation.",
    time_series="never",
)
ssibench.register_model("residual-cnn", ResidualCNN, cost=residual_cnn_cost)
ssibench.register_metric("mae", mean_absolute_error, higher_is_better=False)
