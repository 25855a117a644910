"""Comparisons of the noise-aware methods: ENSURE, SURE + EI, SURE + MO-EI, DDSSL (R2R + EI)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssibench.losses import EILoss, ENSURELoss, MOEILoss, R2RLoss, SureGaussianLoss
from ssibench.transforms import CPABDiffeomorphism, RandomNoise, Rotate

from .cases_equivariant import TOL_CPAB, CPABMap, _replay
from .cases_splitting import LOSS_SEED, Case, _generator, _probabilities, _seeded
from .common import SIGMA, SIZE, Exact, Setup, compare
from .replay import (
    GlobalStateReplay,
    RecordingMasks,
    RecordingTransform,
    ReplayMasks,
    StateRecorder,
)
from .steps import dv_objective, ss_objective

__all__ = ["CASES"]

R2R_ALPHA = 0.5
SURE_TAU = 0.01

SURE_CONSTANT = (
    "value offset: ssibench subtracts σ² mean(M) (unbiased for undersampled data), DeepInverse "
    "σ²; same gradients"
)
ENSURE_CONSTANT = (
    "value offset: ssibench subtracts σ² mean(w⊙M), DeepInverse σ² (equal in expectation over "
    "masks); same gradients"
)


def ensure(own_weights: bool) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        dinv, pair, models, g = (
            setup.dinv,
            setup.pair("single-coil", SIGMA),
            setup.models(),
            _generator(),
        )
        loss = ENSURELoss(SIGMA, setup.acquisition, g)
        ss, _, _ = ss_objective([loss], models.ss, pair)
        weights = loss.column_weights(SIZE)
        offset = SIGMA**2 * (float((weights * pair.ss.mask).mean()) - 1.0)
        known = ENSURE_CONSTANT
        if own_weights:  # DeepInverse's generator: E[M] from 2000 draws
            generator = dinv.physics.generator.GaussianMaskGenerator(
                (SIZE, SIZE), acceleration=setup.acquisition.acceleration, rng=_seeded(11)
            )
            exact = weights.float()
            dv_loss = dinv.loss.mri.ENSURELoss(
                sigma=SIGMA, physics_generator=generator, rng=_seeded(LOSS_SEED)
            )
            estimated = (dv_loss.dsqrti.flatten()[:SIZE] ** 2).float()
            error = float(((estimated - exact).abs() / exact).max())
            known = (
                f"weights 1/E[M] from 2000 draws (max relative error {100 * error:.0f} %); "
                + ENSURE_CONSTANT
            )
        else:
            dv_loss = dinv.loss.mri.ENSURELoss(
                sigma=SIGMA,
                physics_generator=ReplayMasks([], _probabilities(setup, setup.acquisition)),
                rng=_seeded(LOSS_SEED),  # the probe is the loss generator's first draw
            )
        dv, _, _ = dv_objective([dv_loss], models.dv, pair)
        return compare(ss, dv, models, known=known, offset=("σ²(mean(w⊙M) − 1)", offset))

    return run


def sure_plus(second: str) -> Callable[[Setup], Exact]:
    """Robust-EI (SURE + EI with rotations) or Robust-MO-EI (SURE + MO-EI with CPAB)."""

    def run(setup: Setup) -> Exact:
        dinv, pair, models, g = (
            setup.dinv,
            setup.pair("single-coil", SIGMA),
            setup.models(),
            _generator(),
        )
        sure = SureGaussianLoss(SIGMA, g, tau=SURE_TAU)
        masks, lib = None, None
        if second == "ei":
            other = EILoss(Rotate(), g)
        else:
            lib = CPABMap(dinv)
            other = MOEILoss(CPABDiffeomorphism(), setup.acquisition, g)
            other.mask_generator = masks = RecordingMasks(other.mask_generator, g)
        other.transform = record = RecordingTransform(other.transform, g)
        ss, _, _ = ss_objective([sure, other], models.ss, pair)
        pair.noise_rng.set_state(record.states_after[0])  # EI's noise follows its transform
        dv_sure = dinv.loss.SureGaussianLoss(sigma=SIGMA, tau=SURE_TAU, rng=_seeded(LOSS_SEED))
        if second == "ei":
            dv_other = dinv.loss.EILoss(transform=_replay(setup, record))
        else:
            dv_other = dinv.loss.MOEILoss(
                transform=_replay(setup, record, lib), physics_generator=ReplayMasks(masks.draws)
            )
        dv, _, _ = dv_objective([dv_sure, dv_other], models.dv, pair)
        offset = -(SIGMA**2) * (1.0 - float(pair.ss.mask.mean()))
        tol = {"tol_loss": TOL_CPAB, "tol_grad": TOL_CPAB} if lib is not None else {}
        return compare(
            ss, dv, models, known=SURE_CONSTANT, offset=("−σ²(1 − mean M)", offset), **tol
        )

    return run


def ddssl(setup: Setup) -> Exact:
    """DDSSL: R2R (recorruption from torch's global generator in DeepInverse) + EI(RandomNoise)."""
    dinv, pair, models, g = (
        setup.dinv,
        setup.pair("single-coil", SIGMA),
        setup.models(),
        _generator(),
    )
    r2r = R2RLoss(g, alpha=R2R_ALPHA, sigma=SIGMA)
    ei = EILoss(RandomNoise(sigma=0.1), g, apply_noise=False)
    ei.transform = record = RecordingTransform(ei.transform, g)
    ss_model = r2r.adapt_model(models.ss)
    states = StateRecorder(ss_model, g)  # before each recorruption
    ss, _, _ = ss_objective([r2r, ei], ss_model, pair)
    dv_r2r = dinv.loss.R2RLoss(noise_model=dinv.physics.GaussianNoise(sigma=SIGMA), alpha=R2R_ALPHA)
    dv_model = dv_r2r.adapt_model(models.dv)
    saved = torch.get_rng_state()
    GlobalStateReplay(dv_model, states.states)
    dv_ei = dinv.loss.EILoss(transform=_replay(setup, record), apply_noise=False)
    try:
        dv, _, _ = dv_objective([dv_r2r, dv_ei], dv_model, pair)
    finally:
        torch.set_rng_state(saved)
    # DeepInverse also recorrupts unsampled k-space; its target y₂ then carries −√((1−α)/α) σ ω
    # there, a constant for the network (MoDL reads y only on the sampled points).
    replay = torch.Generator()
    replay.set_state(states.states[0])
    omega = torch.randn(pair.y.shape, generator=replay)
    unsampled = 1.0 - pair.ss.mask
    offset = (1 - R2R_ALPHA) / R2R_ALPHA * SIGMA**2 * float((omega**2 * unsampled).mean())
    known = (
        "value offset: DeepInverse's R2R also recorrupts unsampled k-space (a constant "
        "((1−α)/α) σ² mean(ω² (1−M)) in the target); same gradients"
    )
    return compare(ss, dv, models, known=known, offset=("((1−α)/α)σ² mean(ω²(1−M))", offset))


CASES = [
    Case("ensure", "ensure", "mri.ENSURELoss", ensure(False)),
    Case("ensure", "ensure [deepinv weights]", "mri.ENSURELoss", ensure(True)),
    Case("robust-ei", "robust-ei", "SureGaussianLoss + EILoss(Rotate)", sure_plus("ei")),
    Case(
        "robust-mo-ei",
        "robust-mo-ei",
        "SureGaussianLoss + MOEILoss(CPAB)",
        sure_plus("mo-ei"),
    ),
    Case("ddssl", "ddssl", "R2RLoss + EILoss(RandomNoise)", ddssl),
]
