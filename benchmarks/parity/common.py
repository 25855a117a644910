"""Shared fixtures of the parity benchmark: data, operator pairs, the model pair, comparisons.

Every comparison runs the same computation twice, once with ssibench and once with DeepInverse,
on the same measurements and the same network weights:

* data: B = 2 smooth random complex images x ``(B, 2, 32, 32)``, Gaussian 4× column masks
  (``ssibench.masks.GaussianMaskGenerator``), y measured once by ssibench (noise σ = 0.1 per
  real/imaginary component in the noisy scenario) and given to both sides;
* operators: ssibench's ``SingleCoilMRI``/``MultiCoilMRI`` (4 birdcage coils)/``SequentialMRI``
  (4 frames sampling disjoint columns) against ``deepinv.physics.MRI``/``MultiCoilMRI``/
  ``SequentialMRI`` with the same mask (duplicated over the real/imaginary channel) and coil maps;
* model: ssibench's MoDL (2 iterations, U-Net with 2 scales and width 8) against
  ``deepinv.models.MoDL`` whose denoiser is a copy of the same U-Net (weights copied) and whose
  step sizes are set to ssibench's; DeepInverse's λ and σ scalars get no gradient and are left out.
  Gradients are compared on the U-Net weights and the step sizes (and on the discriminator of
  the adversarial methods).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssibench.masks import GaussianMaskGenerator
from ssibench.models.modl import build_modl
from ssibench.physics import MultiCoilMRI, SequentialMRI, SingleCoilMRI, birdcage_maps

__all__ = [
    "ACCELERATION",
    "BATCH",
    "COILS",
    "FRAMES",
    "SIGMA",
    "SIZE",
    "Exact",
    "Expectation",
    "ModelPair",
    "OperatorPair",
    "Setup",
    "compare",
    "compare_outputs",
    "difference_of_means",
    "max_relative",
]

SIZE = 32
BATCH = 2
COILS = 4
FRAMES = 4
ACCELERATION = 4.0
SIGMA = 0.1
NUM_ITER = 2
UNET_SCALES = 2
UNET_WIDTH = 8
#: float32 tolerances: relative loss difference and ∞-norm relative gradient difference.
TOL_LOSS = 1e-5
TOL_GRAD = 1e-4
#: Two-sided 95 % normal quantile for the confidence intervals.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Exact:
    """A comparison with aligned draws: loss values (or outputs) and gradients of both sides.

    Attributes:
        abs_diff: |L_ss − L_dv| (for an output comparison: max |x̂_ss − x̂_dv|).
        rel_diff: abs_diff / |L_dv| (output: / max |x̂_dv|).
        grad_rel: ‖g_ss − g_dv‖_∞ / ‖g_dv‖_∞ over all compared parameters (NaN: none compared).
        tol_loss: relative loss tolerance of this comparison.
        tol_grad: relative gradient tolerance.
        known: the documented reason when the two differ by design (None: they must agree).
        adjusted: (what was removed, relative loss difference after removing it) for a known
            constant offset or scale, or None.
    """

    abs_diff: float
    rel_diff: float
    grad_rel: float
    tol_loss: float = TOL_LOSS
    tol_grad: float = TOL_GRAD
    known: str | None = None
    adjusted: tuple[str, float] | None = None

    @property
    def equal(self) -> bool:
        grads_ok = math.isnan(self.grad_rel) or self.grad_rel <= self.tol_grad
        return self.rel_diff <= self.tol_loss and grads_ok

    @property
    def explained(self) -> bool:
        """Differs only by the documented offset or scale (gradients within tolerance)."""
        if self.adjusted is None:
            return False
        grads_ok = math.isnan(self.grad_rel) or self.grad_rel <= self.tol_grad
        return self.adjusted[1] <= self.tol_loss and grads_ok


def compare_outputs(
    out_ss: Tensor, out_dv: Tensor, known: str | None = None, tol: float = TOL_LOSS
) -> Exact:
    """Compare two reconstructions (evaluation paths): max |Δ| and max |Δ| / max |x̂_dv|."""
    diff = float((out_ss.detach().double() - out_dv.detach().double()).abs().max())
    rel = diff / max(float(out_dv.detach().abs().max()), 1e-30)
    return Exact(diff, rel, float("nan"), tol_loss=tol, known=known)


@dataclass(frozen=True)
class Expectation:
    """A comparison of means over independent draws (the draws of the two sides differ).

    Attributes:
        mean_ss: ssibench's mean.
        mean_dv: DeepInverse's mean.
        low: lower end of the 95 % CI of mean_ss − mean_dv.
        high: upper end.
        n: draws per side.
        what: what was averaged (e.g. "loss", "E[M] per column").
        known: the documented reason when the means differ by design (None: must agree).
        max_z: for a per-coordinate test, the largest |z| and its Bonferroni threshold.
    """

    mean_ss: float
    mean_dv: float
    low: float
    high: float
    n: int
    what: str
    known: str | None = None
    max_z: tuple[float, float] | None = None

    @property
    def abs_diff(self) -> float:
        return abs(self.mean_ss - self.mean_dv)

    @property
    def rel_diff(self) -> float:
        return self.abs_diff / max(abs(self.mean_dv), 1e-30)

    @property
    def equal(self) -> bool:
        if self.max_z is not None:
            return self.max_z[0] <= self.max_z[1]
        return self.low <= 0.0 <= self.high


def max_relative(a: Tensor, b: Tensor) -> float:
    """‖a − b‖_∞ / ‖b‖_∞ (float64)."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def difference_of_means(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of a − mean of b and its 95 % CI for independent samples (Welch standard error)."""
    ta = torch.tensor(a, dtype=torch.float64)
    tb = torch.tensor(b, dtype=torch.float64)
    delta = float(ta.mean() - tb.mean())
    se = math.sqrt(float(ta.var() / len(ta) + tb.var() / len(tb)))
    return delta, delta - Z95 * se, delta + Z95 * se


@dataclass
class OperatorPair:
    """The same acquisition as an ssibench and a DeepInverse operator.

    Attributes:
        kind: "single-coil", "multicoil" or "sequential".
        ss: the ssibench operator.
        dv: the DeepInverse operator (its noise model, if any, draws from ``noise_rng``).
        x: ground truth ``(B, 2, H, W)``.
        y: the measurements of both sides (measured by ssibench).
        omega: the acquisition mask Ω ``(B, 1, H, W)`` (the union of the frames for sequential).
        noise_rng: the generator of DeepInverse's noise model (positioned by the cases).
        sigma: noise level.
    """

    kind: str
    ss: Any
    dv: Any
    x: Tensor
    y: Tensor
    omega: Tensor
    noise_rng: torch.Generator
    sigma: float


class _Denoiser(nn.Module):
    """The U-Net as a DeepInverse denoiser ``D(x, sigma)`` (MoDL's PnP prior ignores σ)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, sigma: Any = None, *args: Any, **kwargs: Any) -> Tensor:
        return self.net(x)


@dataclass
class ModelPair:
    """ssibench's MoDL and DeepInverse's MoDL with the same U-Net weights and step sizes."""

    ss: nn.Module
    dv: nn.Module
    dv_unet: nn.Module
    extra_ss: list[nn.Parameter] = field(default_factory=list)
    extra_dv: list[nn.Parameter] = field(default_factory=list)

    def ss_params(self) -> list[Tensor]:
        return [*self.ss.denoiser.parameters(), self.ss.step_sizes, *self.extra_ss]

    def dv_params(self) -> list[Tensor]:
        return [*self.dv_unet.parameters(), *self._dv_steps(), *self.extra_dv]

    def _dv_steps(self) -> list[Tensor]:
        return list(self.dv.params_algo["stepsize"])

    def ss_gradient(self, loss: Tensor) -> Tensor:
        return _flat_gradient(loss, self.ss_params(), n_steps=0)

    def dv_gradient(self, loss: Tensor) -> Tensor:
        # The K scalar step sizes are stacked to match ssibench's (K,) step_sizes.
        return _flat_gradient(loss, self.dv_params(), n_steps=len(self._dv_steps()))


def _flat_gradient(loss: Tensor, params: list[Tensor], n_steps: int) -> Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat]).double()


def compare(
    loss_ss: Tensor,
    loss_dv: Tensor,
    models: ModelPair | None,
    known: str | None = None,
    tol_loss: float = TOL_LOSS,
    tol_grad: float = TOL_GRAD,
    offset: tuple[str, float] | None = None,
    scale: tuple[str, float] | None = None,
) -> Exact:
    """Compare two losses and, through ``models``, their parameter gradients.

    Args:
        loss_ss: ssibench's 0-dim loss.
        loss_dv: DeepInverse's loss (``(B,)`` values are averaged, as its trainer does).
        models: the model pair whose parameters are differentiated (None: values only).
        known: the documented reason if the two differ by design.
        tol_loss: relative loss tolerance.
        tol_grad: relative gradient tolerance.
        offset: (description, expected loss_dv − loss_ss) of a documented constant offset; the
            gradients are then compared as they are.
        scale: (description, expected loss_dv / loss_ss) of a documented constant factor; the
            DeepInverse gradient is divided by it before the comparison.
    """
    loss_dv = loss_dv.mean()
    grad_rel = float("nan")
    factor = 1.0 if scale is None else scale[1]
    if models is not None:
        g_ss = models.ss_gradient(loss_ss)
        g_dv = models.dv_gradient(loss_dv) / factor
        grad_rel = max_relative(g_ss, g_dv)
    value_ss, value_dv = float(loss_ss.detach().double()), float(loss_dv.detach().double())
    abs_diff = abs(value_ss - value_dv)
    rel_diff = abs_diff / max(abs(value_dv), 1e-30)
    adjusted = None
    if offset is not None:
        adjusted = (offset[0], abs(value_dv - offset[1] - value_ss) / max(abs(value_ss), 1e-30))
    elif scale is not None:
        adjusted = (scale[0], abs(value_dv / factor - value_ss) / max(abs(value_ss), 1e-30))
    return Exact(abs_diff, rel_diff, grad_rel, tol_loss, tol_grad, known, adjusted)


def _smooth_images(batch: int, generator: torch.Generator) -> Tensor:
    """Smooth random complex images ``(B, 2, H, W)`` (bilinear upsampling of 8 × 8 noise)."""
    coarse = torch.randn(batch, 2, 8, 8, generator=generator)
    return F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def _frame_masks(omega: Tensor) -> Tensor:
    """Split Ω's columns into FRAMES disjoint frames (the k-th sampled column to frame k mod T)."""
    masks = torch.zeros(omega.shape[0], 1, FRAMES, SIZE, SIZE)
    for b in range(omega.shape[0]):
        columns = omega[b, 0, 0].nonzero().flatten()
        for k, column in enumerate(columns.tolist()):
            masks[b, 0, k % FRAMES, :, column] = 1.0
    return masks


class Setup:
    """Builds the data, operators and models of every comparison (seeded, CPU, float32)."""

    def __init__(self, dinv: ModuleType, seed: int = 0, draws: int = 1000) -> None:
        self.dinv = dinv
        self.seed = seed
        self.draws = draws
        self.acquisition = GaussianMaskGenerator(acceleration=ACCELERATION)
        self.split_columns = GaussianMaskGenerator(acceleration=2.0, center_fraction=0.0)
        g = torch.Generator().manual_seed(seed)
        self.x = _smooth_images(BATCH, g)
        self.x_other = _smooth_images(BATCH, g)  # unpaired data of the adversarial methods
        self.omega = self.acquisition.sample(BATCH, SIZE, SIZE, g)
        self.omega_other = self.acquisition.sample(BATCH, SIZE, SIZE, g)
        self.coil_maps = birdcage_maps(COILS, SIZE, SIZE)
        self._noise = torch.Generator().manual_seed(seed + 1)
        self._master = build_modl(
            num_iter=NUM_ITER,
            scales=UNET_SCALES,
            width=UNET_WIDTH,
            generator=torch.Generator().manual_seed(seed + 2),
        )
        with torch.no_grad():  # step sizes away from their common initial value
            self._master.step_sizes.copy_(torch.linspace(0.7, 1.3, NUM_ITER))

    # -- operators -------------------------------------------------------------------------

    def dv_noise(self, sigma: float, rng: torch.Generator) -> Any:
        if sigma == 0:
            return self.dinv.physics.ZeroNoise()
        return self.dinv.physics.GaussianNoise(sigma=sigma, rng=rng)

    def dv_operator(
        self, kind: str, mask: Tensor, sigma: float, rng: torch.Generator | None = None
    ) -> Any:
        """The DeepInverse operator of ``kind`` with the ssibench-shaped ``mask``."""
        physics = self.dinv.physics
        rng = rng if rng is not None else torch.Generator()
        noise = self.dv_noise(sigma, rng)
        mask2 = mask.expand(mask.shape[0], 2, *mask.shape[2:]).clone()
        if kind == "single-coil":
            return physics.MRI(mask=mask2, img_size=tuple(mask2.shape), noise_model=noise)
        if kind == "multicoil":
            return physics.MultiCoilMRI(
                mask=mask2,
                coil_maps=self.coil_maps,
                img_size=tuple(mask2.shape),
                noise_model=noise,
            )
        return physics.SequentialMRI(mask=mask2, img_size=tuple(mask2.shape), noise_model=noise)

    def ss_operator(self, kind: str, mask: Tensor, sigma: float) -> Any:
        if kind == "single-coil":
            return SingleCoilMRI(mask, sigma=sigma)
        if kind == "multicoil":
            return MultiCoilMRI(mask, self.coil_maps, sigma=sigma)
        return SequentialMRI(mask, sigma=sigma)

    def pair(self, kind: str, sigma: float = 0.0, other: bool = False) -> OperatorPair:
        """Both operators of ``kind`` and the measurements y of x (or of the unpaired images)."""
        omega = self.omega_other if other else self.omega
        x = self.x_other if other else self.x
        mask = _frame_masks(omega) if kind == "sequential" else omega
        ss = self.ss_operator(kind, mask, sigma)
        rng = torch.Generator()
        dv = self.dv_operator(kind, mask, sigma, rng)
        # Contiguous: DeepInverse draws probes with ``empty_like(y).normal_(generator)``, which
        # fills memory in storage order, so only a contiguous y gets ssibench's ``randn`` layout.
        y = ss.measure(x, self._noise).contiguous()
        return OperatorPair(kind, ss, dv, x, y, omega, rng, sigma)

    # -- models ----------------------------------------------------------------------------

    def models(self) -> ModelPair:
        """A fresh model pair: ssibench's MoDL and DeepInverse's MoDL with the same weights."""
        ss = copy.deepcopy(self._master)
        unet = copy.deepcopy(self._master.denoiser)
        dv = self.dinv.models.MoDL(denoiser=_Denoiser(unet), num_iter=NUM_ITER)
        with torch.no_grad():
            for k, step in enumerate(dv.params_algo["stepsize"]):
                step.copy_(ss.step_sizes[k])
        ss.train()
        dv.train()
        return ModelPair(ss, dv, unet)
