"""Equivariant imaging and multi-operator imaging losses (EI, MOI, MO-EI).

They exploit that the set of images is invariant to a group of transforms (rotations, shifts,
diffeomorphisms) or that the operator varies between acquisitions (masks), so that the network can
learn the null space of one operator without ground truth.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.masks import MaskGenerator
from ssibench.physics import Physics
from ssibench.rng import on_device
from ssibench.transforms import Transform

__all__ = ["EILoss", "MOEILoss", "MOILoss", "new_operator"]


def new_operator(
    physics: Physics, mask_generator: MaskGenerator, batch_size: int, generator: torch.Generator
) -> Physics:
    """The batch operator with ``batch_size`` freshly drawn masks ``(B, 1, H, W)`` (A_g).

    Coil maps and noise level are kept; the masks are drawn from ``generator`` and moved to the
    physics' device and dtype.
    """
    height, width = physics.mask.shape[-2:]
    masks = mask_generator.sample(batch_size, height, width, generator)
    return physics.with_mask(on_device(masks.to(physics.mask.dtype), physics.mask.device))


def _remeasure(
    physics: Physics, image: Tensor, generator: torch.Generator, apply_noise: bool
) -> Tensor:
    """A image, plus the physics noise when ``apply_noise`` (drawn from ``generator``)."""
    return physics.measure(image, generator) if apply_noise else physics.A(image)


def _equivariance_error(
    transform: Transform,
    generator: torch.Generator,
    apply_noise: bool,
    no_grad: bool,
    x_net: Tensor,
    physics: Physics,
    model: nn.Module,
) -> Tensor:
    """mean((f(A T x̂ [+ n], A) − T x̂)²) with T drawn from ``generator``, then the noise."""
    if no_grad:
        with torch.no_grad():
            x_transformed = transform(x_net, generator).detach()
    else:
        x_transformed = transform(x_net, generator)
    y_new = _remeasure(physics, x_transformed, generator, apply_noise)
    return mse(model(y_new, physics), x_transformed)


class EILoss(Loss):
    """Equivariant imaging: L = w · mean((f(A T_g x̂ [+ n], A) − T_g x̂)²), g drawn per sample.

    x̂ = x_net ``(B, 2, H, W)``; returns a 0-dim mean over all elements. T_g x̂ is re-measured with
    the batch operator A; with ``apply_noise`` the physics noise σ ε is added (ε drawn from this
    loss's generator after the transform parameters), as the reference does. ``no_grad`` computes
    T_g x̂ without gradient (a constant target; gradients flow only through the second network
    call); by default gradients flow through both branches (the reference default). DDSSL uses this
    loss with T = :class:`~ssibench.transforms.RandomNoise` and ``apply_noise=False``.

    Chen, Tachella, Davies, "Equivariant imaging: learning beyond the range space", ICCV 2021,
    arXiv:2103.14756. Difference from the reference: transform parameters are drawn per sample
    instead of once per batch.

    Example:
        >>> from ssibench.transforms import Rotate
        >>> g = torch.Generator().manual_seed(0)
        >>> EILoss(Rotate(), g).transform
        Rotate(limits=360, multiples=1, positive=False, mode='nearest')
    """

    def __init__(
        self,
        transform: Transform,
        generator: torch.Generator,
        apply_noise: bool = True,
        weight: float = 1.0,
        no_grad: bool = False,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.generator = generator
        self.apply_noise = apply_noise
        self.weight = weight
        self.no_grad = no_grad

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
        """W · mean((f(A T x̂, A) − T x̂)²)."""
        error = _equivariance_error(
            self.transform,
            self.generator,
            self.apply_noise,
            self.no_grad,
            x_net,
            physics,
            model,
        )
        return self.weight * error


class MOILoss(Loss):
    """Multi-operator imaging: L = w · mean((f(A_g x̂ [+ n], A_g) − x̂)²) with a new mask per sample.

    A_g is the batch operator with a mask freshly drawn from the acquisition mask generator (coil
    maps and noise level kept); the masks are drawn before the noise. x̂ ``(B, 2, H, W)``; returns a
    0-dim mean. Gradients flow through both x̂ and the second network call (as the reference).
    Tachella, Chen, Davies, "Unsupervised learning from incomplete measurements for inverse
    problems", NeurIPS 2022, arXiv:2201.12151. Difference from the reference: one new mask per
    sample instead of one shared by the batch; the operator is rebuilt with ``with_mask`` instead of
    deep-copied.
    """

    def __init__(
        self,
        mask_generator: MaskGenerator,
        generator: torch.Generator,
        apply_noise: bool = True,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.mask_generator = mask_generator
        self.generator = generator
        self.apply_noise = apply_noise
        self.weight = weight

    def next_physics(self, physics: Physics, batch_size: int) -> Physics:
        """The batch operator with ``batch_size`` new masks (on the physics' device)."""
        return new_operator(physics, self.mask_generator, batch_size, self.generator)

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
        """W · mean((f(A_g x̂, A_g) − x̂)²)."""
        new_physics = self.next_physics(physics, x_net.shape[0])
        y_new = _remeasure(new_physics, x_net, self.generator, self.apply_noise)
        return self.weight * mse(model(y_new, new_physics), x_net)


class MOEILoss(Loss):
    """Multi-operator equivariant imaging: EI re-measured through a new operator per sample.

    L = w · mean((f(A_g T x̂ [+ n], A_g) − T x̂)²): A_g is the batch operator with a new mask per
    sample (as :class:`MOILoss`), T a random transform (CPAB diffeomorphisms in SSIBench's MO-EI).
    Draw order from the one generator: masks, transform parameters, noise. ``no_grad`` as in
    :class:`EILoss`. x̂ ``(B, 2, H, W)``; returns a 0-dim mean.

    Multi-operator + equivariance: Tachella, Chen, Davies, "Sensing theorems for unsupervised
    learning in linear inverse problems", JMLR 2023, arXiv:2203.12513; MO-EI with CPAB
    diffeomorphisms is the method proposed in Wang, McDonagh, Davies, "Benchmarking self-supervised
    methods for accelerated MRI reconstruction" (SSIBench), arXiv:2502.14009, 2025. Difference from
    the reference (DeepInverse ``MOEILoss``): one new mask and one transform per sample instead of
    one per batch; the operator is rebuilt with ``with_mask`` instead of deep-copied.

    Example:
        >>> from ssibench.masks import GaussianMaskGenerator
        >>> from ssibench.transforms import CPABDiffeomorphism
        >>> g = torch.Generator().manual_seed(0)
        >>> loss = MOEILoss(CPABDiffeomorphism(), GaussianMaskGenerator(acceleration=6), g)
        >>> type(loss.transform).__name__
        'CPABDiffeomorphism'
    """

    def __init__(
        self,
        transform: Transform,
        mask_generator: MaskGenerator,
        generator: torch.Generator,
        apply_noise: bool = True,
        weight: float = 1.0,
        no_grad: bool = False,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.mask_generator = mask_generator
        self.generator = generator
        self.apply_noise = apply_noise
        self.weight = weight
        self.no_grad = no_grad

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
        """W · mean((f(A_g T x̂, A_g) − T x̂)²)."""
        new_physics = new_operator(physics, self.mask_generator, x_net.shape[0], self.generator)
        error = _equivariance_error(
            self.transform,
            self.generator,
            self.apply_noise,
            self.no_grad,
            x_net,
            new_physics,
            model,
        )
        return self.weight * error
