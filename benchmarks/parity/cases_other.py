"""Operators, mask distributions and the adversarial methods."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ssibench.losses import (
    MultiOperatorUnsupAdversarialDiscriminatorLoss,
    MultiOperatorUnsupAdversarialGeneratorLoss,
    UAIRDiscriminatorLoss,
    UAIRGeneratorLoss,
)
from ssibench.losses.adversarial_multi_operator import AdversarialSampler
from ssibench.losses.base import call_loss
from ssibench.masks import inclusion_probabilities
from ssibench.models.discriminators import SkipConvDiscriminator

from .cases_splitting import TOL_ITERATIVE, Case, _generator, _seeded
from .common import (
    SIZE,
    TOL_LOSS,
    Exact,
    Expectation,
    Setup,
    compare,
    max_relative,
)
from .replay import RecordingMasks
from .steps import dv_forward

__all__ = ["CASES"]

#: Discriminator of the adversarial comparisons: SkipConvDiscriminator at a small width.
D_DIM = 8
D_BLOCKS = 2
#: Draws of the mask-distribution comparisons.
MASK_DRAWS = 20000
#: Step size γ of the data-consistency comparison.
GAMMA = 0.8


def physics(kind: str) -> Callable[[Setup], Exact]:
    """A, Aᴴ, prox_l2 and the MoDL forward of both libraries on the same data."""

    def run(setup: Setup) -> Exact:
        pair, models = setup.pair(kind), setup.models()
        z = torch.randn(pair.x.shape, generator=_seeded(3))
        checks = [
            (pair.ss.A(pair.x), pair.dv.A(pair.x)),
            (pair.ss.A_adjoint(pair.y), pair.dv.A_adjoint(pair.y)),
        ]
        if kind != "sequential":  # MoDL on time series runs through the time-averaged operator
            checks += [
                (pair.ss.prox_l2(z, pair.y, GAMMA), pair.dv.prox_l2(z, pair.y, GAMMA)),
                (models.ss(pair.y, pair.ss), models.dv(pair.y, pair.dv)),
            ]
        diff = max(float((a - b).detach().abs().max()) for a, b in checks)
        rel = max(max_relative(a, b) for a, b in checks)
        return Exact(
            diff, rel, float("nan"), tol_loss=TOL_ITERATIVE if kind == "multicoil" else TOL_LOSS
        )

    return run


def _column_test(ss_p: Tensor, dv_draws: Tensor, what: str) -> Expectation:
    """Per-coordinate z-test of DeepInverse's empirical frequencies against ssibench's exact ones.

    z_j = (p̂_j − p_j) / √(p_j (1 − p_j) / n) on the coordinates with 0 < p_j < 1; equal when every
    |z_j| is below the Bonferroni-corrected two-sided 95 % threshold.
    """
    n = dv_draws.shape[0]
    p_hat = dv_draws.double().mean(0)
    random = (ss_p > 0) & (ss_p < 1)
    z = (p_hat - ss_p)[random] / (ss_p * (1 - ss_p) / n)[random].sqrt()
    threshold = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1 - 0.025 / len(z))))
    delta = (p_hat - ss_p)[random]
    se = (ss_p * (1 - ss_p) / n)[random].sqrt()
    worst = int(delta.abs().argmax())
    return Expectation(
        float(ss_p[random][worst]),
        float(p_hat[random][worst]),
        float(-delta[worst] - 1.96 * se[worst]),
        float(-delta[worst] + 1.96 * se[worst]),
        n,
        what,
        max_z=(float(z.abs().max()), threshold),
    )


def acquisition_masks(setup: Setup) -> Expectation:
    """E[M] per column: DeepInverse's Gaussian masks against ssibench's exact probabilities."""
    generator = setup.dinv.physics.generator.GaussianMaskGenerator(
        (SIZE, SIZE), acceleration=setup.acquisition.acceleration, rng=_seeded(21)
    )
    draws = generator.step(batch_size=MASK_DRAWS)["mask"][:, 0, 0, :]
    exact = inclusion_probabilities(setup.acquisition, SIZE)
    return _column_test(exact, draws, "E[M] per column")


def bernoulli_split(setup: Setup) -> Expectation:
    """E[M₁] per acquired point: ⌊ρ K⌋ of the K points of Ω kept uniformly (both libraries)."""
    omega = setup.omega[:1]
    generator = setup.dinv.physics.generator.BernoulliSplittingMaskGenerator(
        (2, SIZE, SIZE), split_ratio=0.6, rng=_seeded(22)
    )
    input_mask = omega.expand(1, 2, SIZE, SIZE)
    draws = torch.stack(
        [generator.step(1, input_mask=input_mask)["mask"][0, 0] for _ in range(MASK_DRAWS)]
    )
    counts = omega.sum()
    keep = int(0.6 * counts) / counts
    exact = (omega[0, 0] * keep).double()
    return _column_test(exact.flatten(), draws.flatten(1), "E[M₁] per point")


def multiplicative_split(setup: Setup) -> Expectation:
    """E[M₁] per column of the weighted-SSDU split (Gaussian 2×, no centre) inside Ω."""
    gen = setup.dinv.physics.generator
    split = gen.GaussianMaskGenerator(
        (SIZE, SIZE), acceleration=2, center_fraction=0.0, rng=_seeded(23)
    )
    splitter = gen.MultiplicativeSplittingMaskGenerator((1, SIZE, SIZE), split)
    omega = setup.omega[:1, 0]
    draws = torch.stack(
        [splitter.step(1, input_mask=omega)["mask"][0, 0, 0] for _ in range(MASK_DRAWS)]
    )
    exact = inclusion_probabilities(setup.split_columns, SIZE) * omega[0, 0].double()
    return _column_test(exact, draws, "E[M₁] per column")


def _adversarial(setup: Setup, uair: bool, part: str) -> Exact:
    """One step of the adversarial generator (part "G") or discriminator ("D") loss.

    DeepInverse 0.5.0 has neither the multi-operator adversarial losses nor a UAIR discriminator
    loss (they are in its unmerged pull request #409): the DeepInverse side is assembled from
    0.5.0's ``UnsupAdversarialGeneratorLoss``/``UnsupAdversarialDiscriminatorLoss`` and
    ``UAIRGeneratorLoss``, fed the same new operator and unpaired batch. 0.5.0's UAIR generator
    calls ``model(ŷ)`` without an operator, so it is given ``ŷ ↦ f(ŷ, A_new)``.
    """
    dinv, models = setup.dinv, setup.models()
    pair, other = setup.pair("single-coil"), setup.pair("single-coil", other=True)
    discriminator = SkipConvDiscriminator((SIZE, SIZE), _seeded(31), d_dim=D_DIM, d_blocks=D_BLOCKS)
    g = _generator()
    sampler = AdversarialSampler(setup.acquisition, g, unpaired=lambda _: (other.y, other.ss))
    sampler.mask_generator = masks = RecordingMasks(sampler.mask_generator, g)
    if uair:
        ss_losses = (
            UAIRGeneratorLoss(discriminator, sampler),
            UAIRDiscriminatorLoss(discriminator, sampler),
        )
    else:
        ss_losses = (
            MultiOperatorUnsupAdversarialGeneratorLoss(discriminator, sampler),
            MultiOperatorUnsupAdversarialDiscriminatorLoss(discriminator, sampler),
        )
    x_ss = models.ss(pair.y, pair.ss)
    value_g = call_loss(ss_losses[0], x_ss, pair.y, pair.ss, models.ss)
    value_d = call_loss(ss_losses[1], x_ss, pair.y, pair.ss, models.ss)
    ss_value = value_g if part == "G" else value_d

    x_dv = dv_forward(models.dv, pair.y, pair.dv)
    new = setup.dv_operator("single-coil", masks.draws[0], 0.0)
    y_hat = new.A(x_dv)
    unsup = dinv.loss.adversarial
    if uair:
        if part == "G":
            loss = unsup.UAIRGeneratorLoss(weight_adv=0.5, weight_mc=1.0, D=discriminator)
            dv_value = loss(
                y=pair.y,
                y_hat=y_hat,
                physics=new,
                model=lambda measured: models.dv(measured, new),
            )
        else:
            loss = unsup.UnsupAdversarialDiscriminatorLoss(weight_adv=1.0, D=discriminator)
            dv_value = loss(y=pair.y, y_hat=y_hat)
    else:
        full = setup.dv_operator("single-coil", torch.ones(1, 1, SIZE, SIZE), 0.0)
        fake = full.A_adjoint(y_hat)
        if part == "G":
            loss = unsup.UnsupAdversarialGeneratorLoss(weight_adv=1.0, D=discriminator)
            dv_value = loss(y=None, y_hat=fake)
        else:
            loss = unsup.UnsupAdversarialDiscriminatorLoss(weight_adv=1.0, D=discriminator)
            dv_value = loss(y=full.A_adjoint(other.y), y_hat=fake)
    if part == "G":
        return compare(ss_value, dv_value, models)
    params = list(discriminator.parameters())
    result = compare(ss_value, dv_value, None)
    g_ss = torch.cat([p.reshape(-1) for p in torch.autograd.grad(ss_value, params)])
    g_dv = torch.cat([p.reshape(-1) for p in torch.autograd.grad(dv_value, params)])
    return Exact(result.abs_diff, result.rel_diff, max_relative(g_ss, g_dv))


def adversarial(uair: bool, part: str) -> Callable[[Setup], Exact]:
    return lambda setup: _adversarial(setup, uair, part)


ASSEMBLED = "UnsupAdversarial{}Loss (multi-operator loss assembled; not in 0.5.0)"

CASES = [
    Case("physics", "physics [single-coil]", "MRI + MoDL", physics("single-coil")),
    Case("physics", "physics [multicoil]", "MultiCoilMRI + MoDL", physics("multicoil")),
    Case("physics", "physics [sequential]", "SequentialMRI", physics("sequential")),
    Case("masks", "gaussian acquisition masks", "GaussianMaskGenerator", acquisition_masks),
    Case("masks", "bernoulli split masks", "BernoulliSplittingMaskGenerator", bernoulli_split),
    Case(
        "masks",
        "multiplicative split masks",
        "MultiplicativeSplittingMaskGenerator",
        multiplicative_split,
    ),
    Case("adversarial", "adversarial [G]", ASSEMBLED.format("Generator"), adversarial(False, "G")),
    Case(
        "adversarial",
        "adversarial [D]",
        ASSEMBLED.format("Discriminator"),
        adversarial(False, "D"),
    ),
    Case("uair", "uair [G]", "UAIRGeneratorLoss (given f(·, A_new))", adversarial(True, "G")),
    Case(
        "uair",
        "uair [D]",
        "UnsupAdversarialDiscriminatorLoss (no UAIR D in 0.5.0)",
        adversarial(True, "D"),
    ),
]
