"""Comparisons of the equivariance, multi-operator and augmentation-consistency methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ssibench.losses import (
    AdjointMCLoss,
    AugmentConsistencyLoss,
    EILoss,
    MCLoss,
    MOEILoss,
    MOILoss,
    WeightedSplittingLoss,
)
from ssibench.losses.augmentation import DEFAULT_ROTATE_LIMITS, DEFAULT_SHIFT_MAX
from ssibench.transforms import (
    Compose,
    CPABDiffeomorphism,
    Identity,
    RandomNoise,
    RandomPhaseError,
    Rotate,
    Shift,
    Transform,
)
from ssibench.transforms.cpab import _cell_index

from .cases_splitting import LOSS_SEED, Case, _expectation, _generator, _probabilities
from .common import BATCH, SIGMA, Exact, Expectation, Setup, compare, max_relative
from .replay import (
    RecordingMasks,
    RecordingTransform,
    ReplayMasks,
    deepinv_steps,
    per_sample_transform,
)
from .ssibench_reference import reference_losses
from .steps import dv_objective, ss_objective

__all__ = ["CASES", "CPABMap"]

#: Tolerance of comparisons through CPAB warps: libcpab integrates the flow in float32, ssibench
#: builds the step matrices in float64 (warped images agree to ~1e-4).
TOL_CPAB = 1e-3

B1 = (
    "B1: DeepInverse's RandomPhaseError multiplies Re by cos φ and Im by −sin φ (not a complex "
    "product)"
)
B3 = (
    "B3: DeepInverse's transformed operator overrides Aᴴ only, so MoDL's closed-form prox inverts "
    "the unrotated F⁻¹(M+1/γ)F; ssibench solves the rotated normal equations"
)
B2 = (
    "B2: DeepInverse re-flips its shift-or-rotate coin at every application (replayed here once "
    "per sample, as ssibench draws it)"
)


class CPABMap:
    """ssibench CPAB coefficients θ → libcpab's θ' describing the same velocity field.

    Both libraries span the same CPA velocity space with different orthonormal bases; the map is
    the least-squares fit of libcpab's field to ssibench's at 400 points (an orthogonal d × d
    matrix; residual ~1e-8), computed once.
    """

    def __init__(self, dinv: Any) -> None:
        self.transform = dinv.transform.CPABDiffeomorphism(device="cpu")
        cpab, ss = self.transform.cpab, CPABDiffeomorphism()
        basis = ss.basis()
        d = basis.shape[1]
        points = torch.rand(400, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        points = 0.01 + 0.98 * points
        index = _cell_index(points[:, 0], points[:, 1], ss.n_tessellation)
        homogeneous = torch.cat([points, torch.ones(len(points), 1, dtype=points.dtype)], 1)

        def ssibench_field(theta: Tensor) -> Tensor:
            affine = (basis @ theta).view(-1, 2, 3)[index]
            return torch.einsum("pij,pj->pi", affine, homogeneous).reshape(-1)

        def libcpab_field(theta: Tensor) -> Tensor:
            field = cpab.calc_vectorfield(points.T.contiguous().float(), theta.float().view(1, -1))
            return field.double().T.reshape(-1)

        eye = torch.eye(d, dtype=torch.float64)
        lib = torch.stack([libcpab_field(eye[k]) for k in range(d)], 1)
        ours = torch.stack([ssibench_field(eye[k]) for k in range(d)], 1)
        self.matrix = torch.linalg.lstsq(lib, ours).solution
        self.residual = float((lib @ self.matrix - ours).abs().max())

    def __call__(self, theta: Tensor) -> Tensor:
        return (theta.double() @ self.matrix.T).float()


def _replay(setup: Setup, record: RecordingTransform, lib: CPABMap | None = None) -> Any:
    draws = [deepinv_steps(setup.dinv, record, d, BATCH, lib) for d in record.draws]
    return per_sample_transform(setup.dinv, draws)


def _mc_pair(setup: Setup, kind: str) -> tuple[Any, Any]:
    if kind == "single-coil":
        return MCLoss(), setup.dinv.loss.MCLoss()
    return AdjointMCLoss(), reference_losses(setup.dinv)["AdjointMCLoss"]()


def ei(kind: str, sigma: float = 0.0) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        pair, models, g = setup.pair(kind, sigma), setup.models(), _generator()
        ss_mc, dv_mc = _mc_pair(setup, kind)
        loss = EILoss(Rotate(), g)
        loss.transform = record = RecordingTransform(loss.transform, g)
        ss, _, _ = ss_objective([ss_mc, loss], models.ss, pair)
        pair.noise_rng.set_state(record.states_after[0])  # the noise follows the angles
        dv_ei = setup.dinv.loss.EILoss(transform=_replay(setup, record))
        dv, _, _ = dv_objective([dv_mc, dv_ei], models.dv, pair)
        return compare(ss, dv, models)

    return run


def ei_own_rotations(setup: Setup) -> Expectation:
    """E[EI loss]: ssibench draws one angle per sample, DeepInverse one per batch."""
    dinv, pair, models = setup.dinv, setup.pair("single-coil"), setup.models()
    ss_loss = EILoss(Rotate(), _generator())
    rotate = dinv.transform.Rotate(interpolation_mode="nearest", rng=torch.Generator())
    rotate.rng.manual_seed(LOSS_SEED + 1)
    dv_loss = dinv.loss.EILoss(transform=rotate)
    values_ss, values_dv = [], []
    with torch.no_grad():
        for _ in range(setup.draws):
            values_ss.append(float(ss_objective([ss_loss], models.ss, pair)[0]))
            values_dv.append(float(dv_objective([dv_loss], models.dv, pair)[0]))
    return _expectation(values_ss, values_dv, "loss")


def moi(setup: Setup) -> Exact:
    pair, models, g = setup.pair("single-coil", SIGMA), setup.models(), _generator()
    loss = MOILoss(setup.acquisition, g)
    loss.mask_generator = record = RecordingMasks(loss.mask_generator, g)
    ss, _, _ = ss_objective([MCLoss(), loss], models.ss, pair)
    pair.noise_rng.set_state(record.states_after[0])  # the noise follows the new masks
    dv_losses = [
        setup.dinv.loss.MCLoss(),
        setup.dinv.loss.MOILoss(physics_generator=ReplayMasks(record.draws)),
    ]
    dv, _, _ = dv_objective(dv_losses, models.dv, pair)
    return compare(ss, dv, models)


def mo_ei(sigma: float) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        pair, models, g = setup.pair("single-coil", sigma), setup.models(), _generator()
        lib = CPABMap(setup.dinv)
        loss = MOEILoss(CPABDiffeomorphism(), setup.acquisition, g)
        loss.mask_generator = masks = RecordingMasks(loss.mask_generator, g)
        loss.transform = record = RecordingTransform(loss.transform, g)
        ss, _, _ = ss_objective([MCLoss(), loss], models.ss, pair)
        pair.noise_rng.set_state(record.states_after[0])  # masks, then θ, then the noise
        dv_loss = setup.dinv.loss.MOEILoss(
            transform=_replay(setup, record, lib), physics_generator=ReplayMasks(masks.draws)
        )
        dv, _, _ = dv_objective([setup.dinv.loss.MCLoss(), dv_loss], models.dv, pair)
        return compare(ss, dv, models, tol_loss=TOL_CPAB, tol_grad=TOL_CPAB)

    return run


def cpab_warp(setup: Setup) -> Exact:
    """One CPAB warp of the images with θ mapped to libcpab's basis (DeepInverse's transform)."""
    lib = CPABMap(setup.dinv)
    ss = CPABDiffeomorphism()
    params = ss.sample_params(setup.x, _generator())
    out_ss = ss.apply(setup.x, params)
    out_dv = torch.cat(
        [
            lib.transform._transform(setup.x[b : b + 1], diffeo=lib(params["theta"][b : b + 1]))
            for b in range(BATCH)
        ]
    )
    diff = float((out_ss - out_dv).abs().max())
    return Exact(diff, max_relative(out_ss, out_dv), float("nan"), tol_loss=TOL_CPAB)


def _complex_phase_error(dinv: Any) -> type:
    """DeepInverse's RandomPhaseError with B1 fixed: a true complex product exp(−iφ) y."""

    class ComplexPhaseError(dinv.transform.RandomPhaseError):
        def _transform(self, y: Tensor, se: Any = (), so: Any = (), **kwargs: Any) -> Tensor:
            out = []
            for phase_even, phase_odd in zip(se, so, strict=True):
                phase = torch.zeros(y.shape[-1], dtype=y.dtype, device=y.device)
                phase[0::2], phase[1::2] = phase_even, phase_odd
                factor = torch.polar(torch.ones_like(phase), -phase)
                z = torch.view_as_complex(y.movedim(1, -1).contiguous()) * factor
                out.append(torch.view_as_real(z).movedim(-1, 1))
            return torch.cat(out)

    return ComplexPhaseError


def vortex(image_transform: str, fix_b1: bool) -> Callable[[Setup], Exact]:
    """VORTEX: MC + augmentation consistency, T_i = phase error then noise, T_e as named."""

    def run(setup: Setup) -> Exact:
        dinv, pair, models, g = setup.dinv, setup.pair("single-coil"), setup.models(), _generator()
        t_e: Transform | None = {
            "default": None,
            "shift": Shift(shift_max=DEFAULT_SHIFT_MAX),
            "rotate": Rotate(limits=DEFAULT_ROTATE_LIMITS),
        }[image_transform]
        loss = AugmentConsistencyLoss(
            Compose([RandomPhaseError(scale=0.1), RandomNoise(sigma=0.1)]), t_e, g
        )
        loss.T_i = record_i = RecordingTransform(loss.T_i, g)
        loss.T_e = record_e = RecordingTransform(loss.T_e, g)
        ss, _, _ = ss_objective([MCLoss(), loss], models.ss, pair)
        t_i_draws = [deepinv_steps(dinv, record_i, d, BATCH) for d in record_i.draws]
        if fix_b1:
            fixed = _complex_phase_error(dinv)()
            t_i_draws = [
                [
                    [
                        (fixed if isinstance(t, dinv.transform.RandomPhaseError) else t, p)
                        for t, p in s
                    ]
                    for s in draw
                ]
                for draw in t_i_draws
            ]
        dv_loss = dinv.loss.AugmentConsistencyLoss(
            T_i=per_sample_transform(dinv, t_i_draws), T_e=_replay(setup, record_e)
        )
        dv, _, _ = dv_objective([dinv.loss.MCLoss(), dv_loss], models.dv, pair)
        known = {
            ("default", False): f"{B1}; {B3}; {B2}",
            ("shift", False): B1,
            ("shift", True): None,
            ("rotate", True): B3,
        }[image_transform, fix_b1]
        return compare(ss, dv, models, known=known)

    return run


def noise2recon(setup: Setup) -> Exact:
    dinv, pair, models, g = (
        setup.dinv,
        setup.pair("single-coil", SIGMA),
        setup.models(),
        _generator(),
    )
    weighted = WeightedSplittingLoss(g, setup.acquisition, setup.split_columns)
    weighted.mask_generator = splits = RecordingMasks(weighted.mask_generator, g)
    augment = AugmentConsistencyLoss(RandomNoise(sigma=(0.05, 0.2)), Identity(), g, no_grad=False)
    augment.T_i = record = RecordingTransform(augment.T_i, g)
    ss, _, _ = ss_objective([weighted, augment], models.ss, pair)
    dv_losses = [
        dinv.loss.mri.WeightedSplittingLoss(
            mask_generator=ReplayMasks(splits.draws, _probabilities(setup, setup.split_columns)),
            physics_generator=ReplayMasks([], _probabilities(setup, setup.acquisition)),
        ),
        dinv.loss.AugmentConsistencyLoss(
            T_i=_replay(setup, record), T_e=dinv.transform.Identity(), no_grad=False
        ),
    ]
    dv, _, _ = dv_objective(dv_losses, models.dv, pair)
    return compare(ss, dv, models)


CASES = [
    Case("ei", "ei", "EILoss(Rotate)", ei("single-coil")),
    Case("ei", "ei [multicoil]", "EILoss(Rotate) + AdjointMCLoss", ei("multicoil")),
    Case("ei", "ei [own rotations]", "EILoss(Rotate)", ei_own_rotations),
    Case("moi", "moi [noisy]", "MOILoss", moi),
    Case("mo-ei", "mo-ei", "MOEILoss(CPABDiffeomorphism)", mo_ei(0.0)),
    Case("mo-ei", "CPAB warp", "CPABDiffeomorphism (libcpab)", cpab_warp),
    Case("vortex", "vortex", "AugmentConsistencyLoss", vortex("default", False)),
    Case("vortex", "vortex [T_e shift]", "AugmentConsistencyLoss", vortex("shift", False)),
    Case(
        "vortex",
        "vortex [T_e shift, B1 fixed]",
        "AugmentConsistencyLoss",
        vortex("shift", True),
    ),
    Case(
        "vortex",
        "vortex [T_e rotate, B1 fixed]",
        "AugmentConsistencyLoss",
        vortex("rotate", True),
    ),
    Case(
        "noise2recon-ssdu",
        "noise2recon-ssdu",
        "mri.WeightedSplittingLoss + AugmentConsistencyLoss",
        noise2recon,
    ),
]
