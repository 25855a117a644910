"""Reconstruction networks: the SSIBench U-Net denoiser and the unrolled MoDL network around it.

A reconstruction model is an ``nn.Module`` called ``model(y, physics)`` (DESIGN.md): ``y`` is the
measured k-space (``(B, 2, H, W)`` single-coil, ``(B, 2, N, H, W)`` multicoil) and the output an
image ``(B, 2, H, W)``, real/imaginary in dim 1. The denoiser inside it is called ``denoiser(x)``.

Initialisation: PyTorch's default (uniform in ±1/√fan_in for conv weights and biases). Pass a
``torch.Generator`` (the ``init`` stream of :mod:`ssibench.rng`) to draw it from that stream
instead of the global RNG, which is then left untouched.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssibench.errors import ConfigError
from ssibench.physics import Physics

__all__ = ["MODELS", "STEP_ORDERS", "MoDL", "UNet", "build_model", "build_modl"]

#: Orders of the two half-steps of one MoDL iteration (see :class:`MoDL`).
STEP_ORDERS = ("dc-first", "denoiser-first")

StepOrder = Literal["dc-first", "denoiser-first"]

#: Initial value of every MoDL step size γ_k (as the reference).
INITIAL_STEP_SIZE = 1.0


def _conv_block(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """Conv3×3 → [BN] → ReLU → Conv3×3 → [BN] → ReLU, padding 1, with bias."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _up_conv(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """Nearest-neighbour upsampling ×2 → Conv3×3 (padding 1, bias) → [BN] → ReLU."""
    layers: list[nn.Module] = [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _DecoderStage(nn.Module):
    """One decoder level: d ↦ block(concat(skip, up(d))), halving the channels and doubling H, W."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.up = _up_conv(in_channels, out_channels, batch_norm)
        self.block = _conv_block(2 * out_channels, out_channels, batch_norm)

    def forward(self, d: Tensor, skip: Tensor) -> Tensor:
        """d: ``(B, 2c, h, w)``, skip: ``(B, c, 2h, 2w)`` → ``(B, c, 2h, 2w)``."""
        return self.block(torch.cat((skip, self.up(d)), dim=1))


def _initialise(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv/BN layer, drawn from ``generator``.

    Conv weight and bias ~ U(−b, b), b = 1/√fan_in (what ``kaiming_uniform_(a=√5)`` gives);
    BatchNorm weight 1, bias 0, running statistics reset.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()


class UNet(nn.Module):
    """2-D U-Net denoiser as in SSIBench/DeepInverse.

    Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
    MICCAI 2015, arXiv:1505.04597. Level k = 0 … S−1 (S = scales) has c_k = width·2^k channels.
    Encoder: e₀ = B(x), e_k = B(maxpool₂(e_{k−1})); decoder from the bottom: d = e_{S−1}, then for
    k = S−1 … 1: d = B(concat(e_{k−1}, U(d))), where B = conv3×3-ReLU-conv3×3-ReLU and
    U = nearest upsampling ×2 → conv3×3 → ReLU (c_k → c_{k−1}); out = conv1×1(d) + x (residual).
    All convs have a bias; ``batch_norm`` inserts BatchNorm2d after every 3×3 conv. At the SSIBench
    setting (2 → 2 channels, scales 4, width 64, no BN) it has 8,556,994 parameters (scales 2:
    444,226; 3: 2,067,138; 5: 34,512,834).

    Sizes that are not a multiple of 2^(scales−1) are replicate-padded at the bottom/right,
    processed and cropped back, so any H × W works.

    Args:
        in_channels: input channels (2 for a real/imaginary image).
        out_channels: output channels.
        scales: number of resolution levels S ≥ 1 (S − 1 poolings).
        width: channels c₀ of the first level.
        batch_norm: BatchNorm2d after every 3×3 conv (not used by SSIBench).
        residual: add the input to the output; requires ``in_channels == out_channels``.
        generator: draw the initial weights from this generator (global RNG untouched) instead of
            PyTorch's global RNG; the parameters are then created on the generator's device.

    Raises:
        ValueError: on a non-positive size or ``residual`` with different in/out channels.

    Example:
        >>> unet = UNet(scales=3, width=8)
        >>> unet(torch.randn(2, 2, 19, 23)).shape
        torch.Size([2, 2, 19, 23])
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        scales: int = 4,
        width: int = 64,
        batch_norm: bool = False,
        residual: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("scales", scales),
            ("width", width),
        ):
            if value < 1:
                raise ValueError(f"UNet: {name} must be a positive integer; got {value}")
        if residual and in_channels != out_channels:
            raise ValueError(
                f"UNet: residual=True adds the input to the output, so in_channels ({in_channels}) "
                f"must equal out_channels ({out_channels}); pass residual=False"
            )
        self.scales = scales
        self.residual = residual
        if generator is None:
            self._build(in_channels, out_channels, width, batch_norm)
        else:
            # Build without touching the global RNG, then draw every weight from ``generator``.
            with torch.device("meta"):
                self._build(in_channels, out_channels, width, batch_norm)
            self.to_empty(device=generator.device)
            _initialise(self, generator)

    def _build(self, in_channels: int, out_channels: int, width: int, batch_norm: bool) -> None:
        """Create the layers in the reference's order: encoders, then decoders deepest first."""
        channels = [width * 2**k for k in range(self.scales)]
        self.encoders = nn.ModuleList(
            _conv_block(c_in, c_out, batch_norm)
            for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True)
        )
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.decoders = nn.ModuleList(
            _DecoderStage(channels[k], channels[k - 1], batch_norm)
            for k in range(self.scales - 1, 0, -1)
        )
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Denoise ``x``: ``(B, in_channels, H, W)`` → ``(B, out_channels, H, W)``."""
        height, width = x.shape[-2:]
        multiple = 2 ** (self.scales - 1)
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        inp = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

        skips = []
        d = inp
        for k, encoder in enumerate(self.encoders):
            d = encoder(d if k == 0 else self.pool(d))
            skips.append(d)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
            d = decoder(d, skip)
        out = self.head(d)
        if self.residual:
            out = out + inp
        return out[..., :height, :width]


class MoDL(nn.Module):
    """Unrolled half-quadratic splitting with one shared denoiser D (MoDL).

    Aggarwal, Mani, Jacob, "MoDL: Model-Based Deep Learning Architecture for Inverse Problems",
    IEEE TMI 2019, arXiv:1712.02862. With x₀ = Aᴴy and P_γ(z) = argmin_u (γ/2)‖A u − y‖² + ½‖u − z‖²
    (``physics.prox_l2``), iteration k = 0 … K−1 is

    * ``"dc-first"`` (default): xₖ₊₁ = D(P_γₖ(xₖ)); the output x_K is a denoiser output;
    * ``"denoiser-first"`` (the MoDL paper): xₖ₊₁ = P_γₖ(D(xₖ)); the output is data-consistent.

    The default is ``"dc-first"`` because that is what DeepInverse's ``MoDL`` computes (HQS
    iterator: data step, then prior step, no final data step), and SSIBench's published leaderboard
    was trained with it (see deepinv issue #1231). The step sizes γₖ (init 1.0) are trainable, one
    per iteration. The reference also carries per-iteration λₖ and σₖ scalars, but its plug-and-play
    prior ignores them, so they never receive a gradient; they are omitted here. This model thus has
    the denoiser's parameters plus ``num_iter`` (8,556,997 with the SSIBench U-Net and K = 3, versus
    the reference's 8,557,003).

    Shapes: y ``(B, 2, H, W)`` single-coil or ``(B, 2, N, H, W)`` multicoil; output
    ``(B, 2, H, W)``.

    Args:
        denoiser: image-to-image network ``(B, 2, H, W) → (B, 2, H, W)``, shared by all iterations.
        num_iter: number of unrolled iterations K ≥ 1.
        step_order: ``"dc-first"`` or ``"denoiser-first"``.

    Raises:
        ValueError: on K < 1 or an unknown ``step_order``.

    Example:
        >>> from ssibench.physics import SingleCoilMRI
        >>> model = MoDL(UNet(scales=2, width=4), num_iter=2)
        >>> physics = SingleCoilMRI(torch.ones(1, 1, 8, 8))
        >>> model(torch.randn(3, 2, 8, 8), physics).shape
        torch.Size([3, 2, 8, 8])
    """

    def __init__(
        self, denoiser: nn.Module, num_iter: int = 3, step_order: StepOrder = "dc-first"
    ) -> None:
        super().__init__()
        if num_iter < 1:
            raise ValueError(f"MoDL: num_iter must be a positive integer; got {num_iter}")
        if step_order not in STEP_ORDERS:
            raise ValueError(
                f"MoDL: unknown step_order {step_order!r}; valid orders: {', '.join(STEP_ORDERS)}"
            )
        self.denoiser = denoiser
        self.num_iter = num_iter
        self.step_order = step_order
        #: γ₀ … γ_{K−1}, shape (K,).
        self.step_sizes = nn.Parameter(torch.full((num_iter,), INITIAL_STEP_SIZE))

    def forward(self, y: Tensor, physics: Physics) -> Tensor:
        """Reconstruct an image ``(B, 2, H, W)`` from k-space ``y`` measured through ``physics``."""
        x = physics.A_adjoint(y)
        for gamma in self.step_sizes:
            if self.step_order == "dc-first":
                x = self.denoiser(physics.prox_l2(x, y, gamma))
            else:
                x = physics.prox_l2(self.denoiser(x), y, gamma)
        return x


def build_modl(
    num_iter: int = 3,
    step_order: StepOrder = "dc-first",
    scales: int = 4,
    width: int = 64,
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
    identity_init: bool = False,
) -> MoDL:
    """MoDL around a residual 2 → 2-channel :class:`UNet`; defaults are the SSIBench model.

    With ``identity_init`` the U-Net's output convolution starts at zero, so the residual denoiser
    starts as the identity and the untrained MoDL returns the zero-filled image (every
    data-consistency step leaves Aᴴy unchanged): training starts from the baseline instead of from a
    random residual several dB below it, which matters on a small CPU budget. The reference uses
    PyTorch's default initialisation (``identity_init=False``).

    Args:
        num_iter: unrolled iterations K.
        step_order: ``"dc-first"`` (SSIBench/DeepInverse) or ``"denoiser-first"`` (MoDL paper).
        scales: U-Net resolution levels.
        width: U-Net channels at the first level.
        batch_norm: BatchNorm2d in the U-Net.
        generator: initialise the U-Net from this generator (``rng.stream(seed, "init")``).
        identity_init: zero-initialise the U-Net's output convolution (see above).

    Returns:
        The model, called ``model(y, physics)``.
    """
    unet = UNet(2, 2, scales=scales, width=width, batch_norm=batch_norm, generator=generator)
    if identity_init:
        with torch.no_grad():
            unet.head.weight.zero_()
            unet.head.bias.zero_()
    return MoDL(unet, num_iter=num_iter, step_order=step_order)


#: Model name → builder; options of ``build_model`` are the builder's keyword arguments.
MODELS: dict[str, Callable[..., nn.Module]] = {"modl": build_modl}


def build_model(name: str, **options: object) -> nn.Module:
    """Build the registered model ``name`` with keyword ``options`` (e.g. ``num_iter=3, width=32``).

    Raises:
        ConfigError: for an unknown name (lists the valid names and the closest match) or an option
            the builder does not take (lists the valid options).
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint}; valid models: {', '.join(MODELS)}")
    builder = MODELS[name]
    allowed = list(inspect.signature(builder).parameters)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(allowed)}"
        )
    return builder(**options)
