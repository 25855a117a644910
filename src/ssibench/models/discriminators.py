"""Discriminator networks for adversarial training (the ``adversarial`` and ``uair`` methods)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SkipConvDiscriminator"]

#: Negative slope of the LeakyReLU activations (PyTorch's default, as in the reference).
LEAKY_SLOPE = 0.01


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv3×3 (padding 1, no bias) → LeakyReLU(0.01); keeps the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class SkipConvDiscriminator(nn.Module):
    """Convolutional discriminator of the SSIBench adversarial methods: (B, C, H, W) → (B,) scores.

    Architecture (DeepInverse PR #409 ``SkipConvDiscriminator``, after Cole et al., "Fast
    unsupervised MRI reconstruction without fully-sampled ground truth data using generative
    adversarial networks", ICCV Workshops 2021):

        h₀ = φ(conv(x))                          conv: 3×3, padding 1, no bias; φ = LeakyReLU(0.01)
        hₖ = φ(convₖᵃ(hₖ₋₁)) + φ(convₖᵇ(hₖ₋₁)),  k = 1 … d_blocks   (C_d → C_d channels)
        s  = w · vec(h_K) + b                    (Linear over all C_d·H·W features)
        out = sigmoid(s) if use_sigmoid else s

    Both branches of a block read the *same* input and are summed: a parallel sum, not a residual
    chain (no identity skip, no down-sampling; the reference's layout, kept for parity). The final
    Linear has C_d·H·W weights, so the network is tied to one image size (13.1 M weights at 320²,
    C_d = 128).
    Parameter count: 9·C_in·C_d + 2·d_blocks·9·C_d² + C_d·H·W + 1.

    Shapes: input ``(B, in_channels, H, W)`` (an image, e.g. Aᴴy, or single-coil k-space); output
    ``(B,)``. Deliberate difference: the reference squeezes to a 0-dim tensor when B = 1; we
    always return ``(B,)``. Weights are drawn from ``generator`` (PyTorch's default scheme
    U(−1/√fan_in, 1/√fan_in) for conv and linear layers), never from the global RNG.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> d = SkipConvDiscriminator((8, 8), d_dim=4, d_blocks=1, generator=g)
        >>> d(torch.zeros(3, 2, 8, 8)).shape
        torch.Size([3])
    """

    def __init__(
        self,
        img_size: tuple[int, int],
        generator: torch.Generator,
        d_dim: int = 128,
        d_blocks: int = 4,
        in_channels: int = 2,
        use_sigmoid: bool = False,
    ) -> None:
        """Build the discriminator.

        Args:
            img_size: (H, W) of the inputs (fixes the size of the final Linear layer).
            generator: source of the initial weights; parameters are created on its device.
            d_dim: hidden channels C_d (reference 128).
            d_blocks: number of two-branch blocks (reference 4).
            in_channels: input channels (2: real/imaginary).
            use_sigmoid: squash the score into (0, 1). SSIBench passes False (LSGAN on raw scores);
                the reference class defaults to True.
        """
        super().__init__()
        height, width = img_size
        for name, value in (
            ("img_size[0]", height),
            ("img_size[1]", width),
            ("d_dim", d_dim),
            ("d_blocks", d_blocks),
            ("in_channels", in_channels),
        ):
            if value < 1:
                raise ValueError(f"SkipConvDiscriminator: {name} must be ≥ 1; got {value}")
        self.img_size = (height, width)
        self.in_channels = in_channels
        self.use_sigmoid = use_sigmoid
        with torch.device("meta"):  # build without touching the global RNG, then draw the weights
            self.stem = _conv_block(in_channels, d_dim)
            self.branches_a = nn.ModuleList(_conv_block(d_dim, d_dim) for _ in range(d_blocks))
            self.branches_b = nn.ModuleList(_conv_block(d_dim, d_dim) for _ in range(d_blocks))
            self.head = nn.Linear(d_dim * height * width, 1)
        self.to_empty(device=generator.device)
        self._initialise(generator)

    def _initialise(self, generator: torch.Generator) -> None:
        """Weights and biases ~ U(−1/√fan_in, 1/√fan_in), layer by layer from ``generator``."""
        layers = [self.stem[0]]
        for branch_a, branch_b in zip(self.branches_a, self.branches_b, strict=True):
            layers += [branch_a[0], branch_b[0]]
        layers.append(self.head)
        with torch.no_grad():
            for layer in layers:
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        """Scores ``(B,)`` of inputs ``(B, in_channels, H, W)``."""
        expected = (self.in_channels, *self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SkipConvDiscriminator expects input (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}); got {tuple(x.shape)} (multicoil k-space must be mapped to an "
                "image first, e.g. space='A_adjoint')"
            )
        h = self.stem(x)
        for branch_a, branch_b in zip(self.branches_a, self.branches_b, strict=True):
            h = branch_a(h) + branch_b(h)
        score = self.head(h.flatten(1)).squeeze(1)
        return torch.sigmoid(score) if self.use_sigmoid else score
