"""Reconstruction networks: the SSIBench U-Net denoiser and the unrolled MoDL network around it.

A reconstruction model is an ``nn.Module`` called ``model(y, physics)`` (the DeepInverse
convention): ``y`` is the measured k-space (``(B, 2, H, W)`` single-coil, ``(B, 2, N, H, W)``
multicoil) and the output an image ``(B, 2, H, W)``, real/imaginary in dim 1. The denoiser inside it
is called ``denoiser(x)``.

- :mod:`~ssibench.models.unet`: :class:`UNet`, the denoiser.
- :mod:`~ssibench.models.modl`: :class:`MoDL`, :func:`build_modl` (the SSIBench model),
  :data:`STEP_ORDERS`, :data:`INITIAL_STEP_SIZE`.
- :mod:`~ssibench.models.build`: the registry :data:`MODELS` and :func:`build_model`.
- :mod:`~ssibench.models.time`: :class:`TimeAgnostic`, :class:`TimeAgnosticReconstructor`,
  :class:`TimeAveraging`, :func:`build_dynamic_modl` for time-resolved MRI.
- :mod:`~ssibench.models.discriminators`: :class:`SkipConvDiscriminator` (adversarial methods).
- :mod:`~ssibench.models.cost`: FLOPs and activation memory of the network, without torch (job
  sizing); not imported here.

Initialisation: PyTorch's default, or drawn from a ``torch.Generator`` (see
:mod:`~ssibench.models.unet`).
"""

from ssibench.models.build import MODELS, build_model
from ssibench.models.discriminators import SkipConvDiscriminator
from ssibench.models.modl import INITIAL_STEP_SIZE, STEP_ORDERS, MoDL, build_modl
from ssibench.models.time import (
    TimeAgnostic,
    TimeAgnosticReconstructor,
    TimeAveraging,
    build_dynamic_modl,
)
from ssibench.models.unet import UNet

__all__ = [
    "INITIAL_STEP_SIZE",
    "MODELS",
    "STEP_ORDERS",
    "MoDL",
    "SkipConvDiscriminator",
    "TimeAgnostic",
    "TimeAgnosticReconstructor",
    "TimeAveraging",
    "UNet",
    "build_dynamic_modl",
    "build_model",
    "build_modl",
]
