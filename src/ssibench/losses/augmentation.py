"""Augmentation-consistency loss (VORTEX, Noise2Recon) and the transformed operator it trains with.

The network must give the same answer, up to the image transform, on an augmented acquisition:
T_i perturbs the measurements (phase error, noise; physics-driven augmentation) and T_e moves the
image (shift, rotation; equivariance augmentation), the operator being transformed accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ssibench.losses.base import Loss, mse
from ssibench.physics import Physics, conjugate_gradient
from ssibench.physics.base import prox_l2
from ssibench.transforms import Identity, RandomChoice, Rotate, Shift, Transform, TransformParams

__all__ = ["AugmentConsistencyLoss", "TransformedPhysics", "default_image_transform"]

#: Reference defaults of the image augmentation T_e: shift by up to 10 % or rotate by up to ±14°.
DEFAULT_SHIFT_MAX = 0.1
DEFAULT_ROTATE_LIMITS = 15


def default_image_transform() -> Transform:
    """The reference's T_e: per sample, a circular shift (≤ 10 %) or a rotation (|θ| ≤ 14°)."""
    return RandomChoice([Shift(shift_max=DEFAULT_SHIFT_MAX), Rotate(limits=DEFAULT_ROTATE_LIMITS)])


@dataclass(frozen=True, eq=False)
class TransformedPhysics:
    """An operator seen through a linear image transform T: A'(v) = A(T⁻¹ v), A'ᴴ(w) = T(Aᴴ w).

    If x = T⁻¹ v is the image seen by A, then v = T x is the transformed image, and a network
    f(y', A') reconstructs in the transformed frame. As in the reference, the back-projection
    ``A_adjoint`` treats T as orthogonal (T⁻¹ = Tᴴ): exact for circular shifts and rotations by
    multiples of 90° on square images, approximate for other rotations (interpolation, cropped
    corners), where the exact adjoint (T⁻¹)ᴴ Aᴴ would scatter pixels and leave holes.

    Data consistency is exact for the forward operator A': u = argmin_u (γ/2)‖A' u − y‖² + ½‖u − z‖²
    solves (γ (T⁻¹)ᴴ AᴴA T⁻¹ + I) u = γ (T⁻¹)ᴴ Aᴴ y + z:

    * unitary T (``transform.unitary``: shifts, phase errors, identity): u = T P_A(T⁻¹ z), with P_A
      the operator's own (closed-form or CG) prox;
    * otherwise (rotations, diffeomorphisms) by conjugate gradient on those normal equations, a
      Hermitian positive-definite system, started at u₀ = z (``cg_max_iter`` iterations, relative
      tolerance ``cg_tol``); (T⁻¹)ᴴ is the exact adjoint of the linear map T⁻¹, obtained by
      automatic differentiation and differentiable in turn.

    The reference instead overrode only ``A_adjoint`` on a copy of the MRI operator, so its
    closed-form prox inverted the untransformed F⁻¹(M + 1/γ)F (SSIBench bug B3): exact for circular
    shifts, wrong for rotations. Shapes as the wrapped operator; ``params`` are T's parameters, one
    set per sample of the batch.

    Example:
        >>> from ssibench.physics import SingleCoilMRI
        >>> from ssibench.transforms import Shift
        >>> shift = Shift(0.25)
        >>> v = torch.randn(2, 2, 8, 8)
        >>> params = shift.sample_params(v, torch.Generator().manual_seed(0))
        >>> TransformedPhysics(SingleCoilMRI(torch.ones(1, 1, 8, 8)), shift, params).A(v).shape
        torch.Size([2, 2, 8, 8])
    """

    physics: Physics
    transform: Transform
    params: TransformParams
    cg_max_iter: int = 50
    cg_tol: float = 1e-4

    @property
    def mask(self) -> Tensor:
        """The wrapped operator's mask ``(B|1, 1, H, W)``."""
        return self.physics.mask

    @property
    def sigma(self) -> float:
        """The wrapped operator's noise level."""
        return self.physics.sigma

    def A(self, x: Tensor) -> Tensor:
        """Forward operator A' x = A T⁻¹ x."""
        return self.physics.A(self.transform.inverse(x, self.params))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Back-projection A'ᴴ(y) = T(Aᴴ y) (T treated as orthogonal, as the reference)."""
        return self.transform.apply(self.physics.A_adjoint(y), self.params)

    def measure(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noisy A(T⁻¹ x) with the wrapped operator's noise model."""
        return self.physics.measure(self.transform.inverse(x, self.params), generator)

    def with_mask(self, mask: Tensor) -> TransformedPhysics:
        """The same transform around the operator with ``mask`` (used by measurement splitting)."""
        return replace(self, physics=self.physics.with_mask(mask))

    def _inverse_adjoint(self, image: Tensor) -> Tensor:
        """(T⁻¹)ᴴ image: the vector-Jacobian product of the linear map T⁻¹ (kept differentiable)."""
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            probe = torch.zeros_like(image, requires_grad=True)
            (adjoint,) = torch.autograd.grad(
                self.transform.inverse(probe, self.params),
                probe,
                grad_outputs=image,
                create_graph=keep_graph,
            )
        return adjoint

    def prox_l2(self, z: Tensor, y: Tensor, gamma: Tensor | float) -> Tensor:
        """U = argmin_u (γ/2)‖A' u − y‖² + ½‖u − z‖² (class docstring), z ``(B, 2, H, W)``."""
        if self.transform.unitary:
            inner = prox_l2(self.physics, self.transform.inverse(z, self.params), y, gamma)
            return self.transform.apply(inner, self.params)

        def normal(u: Tensor) -> Tensor:
            return gamma * self._inverse_adjoint(self.physics.A_adjoint(self.A(u))) + u

        rhs = gamma * self._inverse_adjoint(self.physics.A_adjoint(y)) + z
        return conjugate_gradient(normal, rhs, z, max_iter=self.cg_max_iter, tol=self.cg_tol)


class AugmentConsistencyLoss(Loss):
    """Augmentation consistency: L = w · mean((T_e x̂ − f(A' T_e Aᴴ T_i(y), A'))²), A' = A ∘ T_e⁻¹.

    Per sample, T_i perturbs the acquired k-space (e.g. phase error and noise, acting on the
    real/imaginary pair of y ``(B, 2, H, W)`` or ``(B, 2, N, H, W)``), T_e moves the image (default:
    shift ≤ 10 % or rotation ≤ 14°, chosen per sample) and A' is the operator in the moved frame
    (:class:`TransformedPhysics`), so the network input A' T_e Aᴴ T_i(y) ≈ A Aᴴ T_i(y) (= Ω ⊙ T_i(y)
    in single-coil MRI). With ``no_grad`` (the reference default) the target T_e x̂ is a constant;
    without it gradients flow through both branches (Noise2Recon). Draw order from the generator:
    T_e's parameters, then T_i's. x̂ ``(B, 2, H, W)``; returns a 0-dim mean over all elements.

    Desai et al., "VORTEX: physics-driven data augmentations using consistency training for robust
    accelerated MRI reconstruction", MIDL 2022, arXiv:2111.02549; Desai et al., "Noise2Recon:
    enabling SNR-robust MRI reconstruction with semi-supervised and self-supervised learning", MRM
    2023, arXiv:2110.00075. Differences from the reference (DeepInverse ``AugmentConsistencyLoss``):
    the shift-or-rotate choice of T_e is drawn once per sample and reused for the input, the
    operator and the target (bug B2: the reference re-drew it at every application); A' solves its
    own data consistency (bug B3); the default phase error is a true complex product (bug B1, see
    :class:`~ssibench.transforms.RandomPhaseError`); parameters are drawn per sample.

    Args:
        T_i: measurement augmentation (default: identity).
        T_e: image augmentation (default: :func:`default_image_transform`).
        generator: random stream of both transforms.
        no_grad: detach x̂ in the target.
        weight: w.

    Example:
        >>> from ssibench.transforms import RandomNoise
        >>> g = torch.Generator().manual_seed(0)
        >>> loss = AugmentConsistencyLoss(RandomNoise(sigma=(0.05, 0.2)), Identity(), g)
        >>> type(loss.T_i).__name__
        'RandomNoise'
    """

    def __init__(
        self,
        T_i: Transform | None,
        T_e: Transform | None,
        generator: torch.Generator,
        no_grad: bool = True,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.T_i = T_i if T_i is not None else Identity()
        self.T_e = T_e if T_e is not None else default_image_transform()
        self.generator = generator
        self.no_grad = no_grad
        self.weight = weight

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
        """W · mean((T_e x̂ − f(A' T_e Aᴴ T_i(y), A'))²)."""
        x_hat = x_net.detach() if self.no_grad else x_net
        params_e = self.T_e.sample_params(x_hat, self.generator)
        params_i = self.T_i.sample_params(y, self.generator)
        x_aug = self.T_e.apply(physics.A_adjoint(self.T_i.apply(y, params_i)), params_e)
        moved = TransformedPhysics(physics, self.T_e, params_e)
        x_aug_net = model(moved.A(x_aug), moved)
        return self.weight * mse(self.T_e.apply(x_hat, params_e), x_aug_net)
