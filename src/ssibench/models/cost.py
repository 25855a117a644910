"""Closed-form cost of the SSIBench network: multiply-accumulates and activation memory.

Pure arithmetic (no torch) on the ``model`` config (``scales``, ``width``, ``num_iter`` of a MoDL
around the :class:`~ssibench.models.unet.UNet`) and the image size; the job sizing
(:mod:`ssibench.pipeline.resources`) turns it into run time and memory requests. The test against
``torch.utils.flop_counter`` (``tests/test_pipeline.py``,
``test_cost_model_follows_the_network_flop_count``) pins :func:`network_macs` to the real network:
the estimate stays within 20 % below torch's FLOP count. :data:`ACTIVATION_FLOATS` was fitted to
``ssibench train`` on the CPU at 128 × 128 (U-Net width 8–32, 2–4 scales, 1–3 iterations, batch
4–8): plain MC's activation memory within about 20 %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "ACTIVATION_FLOATS",
    "CONVS_BOTTOM",
    "CONVS_PER_LEVEL",
    "FLOPS_FORWARD",
    "FLOPS_TRAIN",
    "KERNEL_TAPS",
    "MODEL_COSTS",
    "activation_floats",
    "model_cost",
    "network_macs",
]

#: 3×3 convolutions per U-Net level (2 encoder, 3 decoder incl. the up-convolution); the bottom
#: level has 2. Channels double as pixels quarter, so each level costs about 9 · 5 · width²
#: multiply-accumulates (MACs) per full-resolution pixel.
CONVS_PER_LEVEL, CONVS_BOTTOM, KERNEL_TAPS = 5, 2, 9
#: Floats kept for backpropagation per full-resolution pixel, per width channel and per unrolled
#: iteration, times the level sum 2 − 2^(1 − scales) (measured: 12).
ACTIVATION_FLOATS = 12
#: FLOPs per MAC: a forward pass (evaluation, validation) and forward + backward (training).
FLOPS_FORWARD, FLOPS_TRAIN = 2, 6
#: Costs of models registered by plugins with one: name → ``cost((H, W), **options)`` returning
#: (MACs of one forward pass, floats kept for backpropagation) on one image.
MODEL_COSTS: dict[str, Callable[..., tuple[float, float]]] = {}


def model_cost(model: Mapping[str, Any], image_size: Sequence[int]) -> tuple[float, float]:
    """(forward MACs, activation floats) of the configured network on one image of ``image_size``.

    MoDL's closed form (:func:`network_macs`, :func:`activation_floats`), or the cost a plugin
    registered with its model; a plugin model without one is sized as the MoDL of the other
    ``model`` keys.
    """
    cost = MODEL_COSTS.get(str(model.get("name", "modl")))
    if cost is not None:
        macs, floats = cost(tuple(image_size), **dict(model.get("options") or {}))
        return float(macs), float(floats)
    return float(network_macs(model, image_size)), float(activation_floats(model, image_size))


def network_macs(model: Mapping[str, Any], image_size: Sequence[int]) -> int:
    """Multiply-accumulates of one MoDL forward pass on one image of ``image_size`` (H, W)."""
    height, width = image_size
    convs = CONVS_PER_LEVEL * (model["scales"] - 1) + CONVS_BOTTOM
    per_pixel = KERNEL_TAPS * model["width"] ** 2 * convs
    return per_pixel * height * width * model["num_iter"]


def activation_floats(model: Mapping[str, Any], image_size: Sequence[int]) -> float:
    """Floats kept for backpropagation by one training pass of MoDL on one image (H, W)."""
    height, width = image_size
    levels = 2 - 2 ** (1 - model["scales"])
    return ACTIVATION_FLOATS * model["width"] * levels * height * width * model["num_iter"]
