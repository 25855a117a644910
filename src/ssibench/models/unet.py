"""The SSIBench U-Net denoiser, called ``denoiser(x)`` on images ``(B, C, H, W)``.

Initialisation: PyTorch's default (uniform in ±1/√fan_in for conv weights and biases). Pass a
``torch.Generator`` (the ``init`` stream of :mod:`ssibench.rng`) to draw it from that stream
instead of the global RNG, which is then left untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet"]


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
