"""Comparisons of the supervised, MC and measurement-splitting methods (SSDU family, time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ssibench.losses import (
    AdjointMCLoss,
    MCLoss,
    MOConsistencyLoss,
    RobustSplittingLoss,
    SplittingConsistencyLoss,
    SplittingLoss,
    SupLoss,
    WeightedSplittingLoss,
)
from ssibench.losses.dynamic import Artifact2ArtifactLoss, Phase2PhaseLoss
from ssibench.masks import inclusion_probabilities

from .common import (
    FRAMES,
    SIGMA,
    SIZE,
    Exact,
    Expectation,
    Setup,
    compare,
    compare_outputs,
    difference_of_means,
)
from .replay import RecordingMasks, ReplayMasks
from .ssibench_reference import reference_losses
from .steps import dv_objective, ss_objective

__all__ = ["CASES", "Case"]

#: Seed of the ssibench loss generator in every comparison.
LOSS_SEED = 7
#: Tolerance of comparisons through iterative multicoil solves (ssibench's conjugate gradient
#: against DeepInverse's least-squares solver, both stopped at a relative residual of 1e-4).
TOL_ITERATIVE = 1e-3


@dataclass(frozen=True)
class Case:
    """One comparison: the ssibench method, the row label, the DeepInverse counterpart, the run."""

    method: str
    label: str
    counterpart: str
    run: Callable[[Setup], Exact | Expectation]


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(LOSS_SEED)


def _probabilities(setup: Setup, generator: object) -> torch.Tensor:
    """Exact column probabilities as DeepInverse's ``average()["mask"]`` ``(1, 2, H, W)``."""
    p = inclusion_probabilities(generator, SIZE).float()
    return p.view(1, 1, 1, SIZE).expand(1, 2, SIZE, SIZE).contiguous()


def sup(setup: Setup) -> Exact:
    pair, models = setup.pair("single-coil"), setup.models()
    ss, _, _ = ss_objective([SupLoss()], models.ss, pair)
    dv, _, _ = dv_objective([setup.dinv.loss.SupLoss()], models.dv, pair)
    return compare(ss, dv, models)


def mc(kind: str) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        pair, models = setup.pair(kind), setup.models()
        if kind == "single-coil":
            ss_loss, dv_loss = MCLoss(), setup.dinv.loss.MCLoss()
        else:
            ss_loss, dv_loss = AdjointMCLoss(), reference_losses(setup.dinv)["AdjointMCLoss"]()
        ss, _, _ = ss_objective([ss_loss], models.ss, pair)
        dv, _, _ = dv_objective([dv_loss], models.dv, pair)
        return compare(ss, dv, models)

    return run


def ssdu(kind: str) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        pair, models, g = setup.pair(kind), setup.models(), _generator()
        loss = SplittingLoss(g, split_ratio=0.6, eval_n_samples=1, eval_split_input=False)
        loss.mask_generator = record = RecordingMasks(loss.mask_generator, g)
        ss, _, _ = ss_objective([loss], models.ss, pair)
        dv_loss = setup.dinv.loss.SplittingLoss(
            split_ratio=0.6, mask_generator=ReplayMasks(record.draws), eval_split_input=False
        )
        dv, _, _ = dv_objective([dv_loss], models.dv, pair)
        tol = TOL_ITERATIVE if kind == "multicoil" else None
        return compare(ss, dv, models, **({"tol_loss": tol, "tol_grad": tol} if tol else {}))

    return run


def ssdu_own_samplers(setup: Setup) -> Expectation:
    """E[SSDU loss] with each library's own split sampler (different random streams)."""
    dinv, pair, models = setup.dinv, setup.pair("single-coil"), setup.models()
    g = _generator()
    ss_loss = SplittingLoss(g, split_ratio=0.6, eval_n_samples=1, eval_split_input=False)
    ss_model = ss_loss.adapt_model(models.ss)
    generator = dinv.physics.generator.BernoulliSplittingMaskGenerator(
        (2, SIZE, SIZE), split_ratio=0.6, rng=torch.Generator().manual_seed(LOSS_SEED + 1)
    )
    dv_loss = dinv.loss.SplittingLoss(
        split_ratio=0.6, mask_generator=generator, eval_split_input=False
    )
    dv_model = dv_loss.adapt_model(models.dv)
    values_ss, values_dv = [], []
    with torch.no_grad():
        for _ in range(setup.draws):
            values_ss.append(float(ss_objective([ss_loss], ss_model, pair)[0]))
            values_dv.append(float(dv_objective([dv_loss], dv_model, pair)[0]))
    return _expectation(values_ss, values_dv, "loss")


def _expectation(
    values_ss: list[float], values_dv: list[float], what: str, known: str | None = None
) -> Expectation:
    delta, low, high = difference_of_means(values_ss, values_dv)
    mean_ss = sum(values_ss) / len(values_ss)
    return Expectation(mean_ss, mean_ss - delta, low, high, len(values_ss), what, known)


def noise2inverse_eval(setup: Setup) -> Exact:
    """Noise2Inverse evaluation: the mean of 3 split reconstructions (same 3 splits)."""
    pair, models, g = setup.pair("single-coil"), setup.models(), _generator()
    loss = SplittingLoss(g, split_ratio=0.6, eval_n_samples=3, eval_split_input=True)
    loss.mask_generator = record = RecordingMasks(loss.mask_generator, g)
    ss_model = loss.adapt_model(models.ss).eval()
    dv_loss = setup.dinv.loss.SplittingLoss(
        split_ratio=0.6,
        mask_generator=ReplayMasks(record.draws),
        eval_n_samples=3,
        eval_split_input=True,
    )
    with torch.no_grad():
        out_ss = ss_model(pair.y, pair.ss)
        dv_loss.mask_generator = ReplayMasks(record.draws)
        out_dv = dv_loss.adapt_model(models.dv).eval()(pair.y, pair.dv)
    return compare_outputs(out_ss, out_dv)


def weighted_ssdu(own_weights: bool) -> Callable[[Setup], Exact]:
    def run(setup: Setup) -> Exact:
        dinv, pair, models, g = setup.dinv, setup.pair("single-coil"), setup.models(), _generator()
        loss = WeightedSplittingLoss(g, setup.acquisition, setup.split_columns)
        loss.mask_generator = record = RecordingMasks(loss.mask_generator, g)
        ss, _, _ = ss_objective([loss], models.ss, pair)
        replay = ReplayMasks(record.draws, _probabilities(setup, setup.split_columns))
        acquisition = ReplayMasks([], _probabilities(setup, setup.acquisition))
        known = None
        if own_weights:  # DeepInverse's generators: weights from 2000 draws of each
            gen = dinv.physics.generator
            acquisition = gen.GaussianMaskGenerator(
                (SIZE, SIZE), acceleration=setup.acquisition.acceleration, rng=_seeded(11)
            )
            split = gen.GaussianMaskGenerator(
                (SIZE, SIZE), acceleration=2, center_fraction=0.0, rng=_seeded(12)
            )
            dv_loss = dinv.loss.mri.WeightedSplittingLoss(
                mask_generator=gen.MultiplicativeSplittingMaskGenerator((1, SIZE, SIZE), split),
                physics_generator=acquisition,
            )
            dv_loss.mask_generator = replay  # the same split masks as ssibench's
            exact = loss.kspace_weight(SIZE).float()
            estimated = dv_loss.metric.weights[SIZE].flatten()
            error = float(((estimated - exact).abs() / exact).max())
            known = (
                "column weights from 2000 draws of each generator (max relative weight error "
                f"{100 * error:.0f} %); ssibench uses the exact inclusion probabilities"
            )
        else:
            dv_loss = dinv.loss.mri.WeightedSplittingLoss(
                mask_generator=replay, physics_generator=acquisition
            )
        dv, _, _ = dv_objective([dv_loss], models.dv, pair)
        return compare(ss, dv, models, known=known)

    return run


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def robust_ssdu(setup: Setup) -> Exact:
    dinv, pair, models, g = (
        setup.dinv,
        setup.pair("single-coil", SIGMA),
        setup.models(),
        _generator(),
    )
    loss = RobustSplittingLoss(g, setup.acquisition, setup.split_columns, sigma=SIGMA, alpha=0.75)
    loss.weighted.mask_generator = record = RecordingMasks(loss.weighted.mask_generator, g)
    ss, _, _ = ss_objective([loss], models.ss, pair)
    noise_rng = torch.Generator()
    noise_rng.set_state(record.states_after[0])  # the extra noise follows the mask draw
    noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=noise_rng)
    dv_loss = dinv.loss.mri.RobustSplittingLoss(
        mask_generator=ReplayMasks(record.draws, _probabilities(setup, setup.split_columns)),
        physics_generator=ReplayMasks([], _probabilities(setup, setup.acquisition)),
        noise_model=noise,
        alpha=0.75,
    )
    mutated = float(noise.sigma)  # DeepInverse rescales the model it is given (bug B11)
    dv, _, _ = dv_objective([dv_loss], models.dv, pair)
    result = compare(ss, dv, models)
    if abs(mutated - 0.75 * SIGMA) > 1e-7:
        return Exact(result.abs_diff, result.rel_diff, result.grad_rel, known="noise model kept")
    return result


def ssdu_consistency(setup: Setup) -> Exact:
    pair, models, g = setup.pair("single-coil"), setup.models(), _generator()
    loss = SplittingConsistencyLoss(g, split_ratio=0.6)
    loss.mask_generator = record = RecordingMasks(loss.mask_generator, g)
    ss, _, _ = ss_objective([loss], models.ss, pair)
    dv_loss = reference_losses(setup.dinv)["SplittingConsistencyLoss"](ReplayMasks(record.draws))
    dv, _, _ = dv_objective([dv_loss], models.dv, pair)
    return compare(ss, dv, models)


def moc_ssdu(setup: Setup) -> Exact:
    dinv, pair, models, g = (
        setup.dinv,
        setup.pair("single-coil", SIGMA),
        setup.models(),
        _generator(),
    )
    moc = MOConsistencyLoss(setup.acquisition, g)
    split = SplittingLoss(g, split_ratio=0.6, eval_n_samples=1, eval_split_input=False)
    moc.mask_generator = new_masks = RecordingMasks(moc.mask_generator, g)
    split.mask_generator = splits = RecordingMasks(split.mask_generator, g)
    ss, _, _ = ss_objective([moc, split], models.ss, pair)
    pair.noise_rng.set_state(new_masks.states_after[0])  # re-measurement noise after the masks
    dv_losses = [
        reference_losses(dinv)["MOConsistencyLoss"](physics_generator=ReplayMasks(new_masks.draws)),
        dinv.loss.SplittingLoss(
            split_ratio=0.6, mask_generator=ReplayMasks(splits.draws), eval_split_input=False
        ),
    ]
    dv, _, _ = dv_objective(dv_losses, models.dv, pair)
    return compare(ss, dv, models)


def _frame_mask(mask: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The time mask restricted to ``frames`` per sample, ``(B, 1, T, H, W)``."""
    keep = torch.zeros(mask.shape[0], 1, mask.shape[2], 1, 1)
    for b, row in enumerate(frames.tolist()):
        keep[b, 0, row] = 1.0
    return mask * keep


TIME_NORMALISER = (
    "normaliser: DeepInverse divides the time-averaged MSE by the held-out fraction of all T "
    f"frames (×T = {FRAMES}); ssibench by the held-out entries"
)


def phase2phase(setup: Setup) -> Exact:
    dinv, pair, models = setup.dinv, setup.pair("sequential"), setup.models()
    ss, _, _ = ss_objective([Phase2PhaseLoss(dynamic_model=False)], models.ss, pair)
    dv_loss = dinv.loss.mri.Phase2PhaseLoss(img_size=(2, FRAMES, SIZE, SIZE), dynamic_model=False)
    dv, _, _ = dv_objective([dv_loss], models.dv, pair)
    return compare(ss, dv, models, known=TIME_NORMALISER, scale=(f"×{FRAMES}", float(FRAMES)))


def artifact2artifact(setup: Setup) -> Exact:
    dinv, pair, models, g = setup.dinv, setup.pair("sequential"), setup.models(), _generator()
    loss = Artifact2ArtifactLoss(g, split_size=2, dynamic_model=False)
    ss, _, wrapped = ss_objective([loss], models.ss, pair)
    split, mask = wrapped.last_split, pair.ss.mask.expand(pair.y.shape[0], -1, -1, -1, -1)
    replay = ReplayMasks(
        [_frame_mask(mask, split.input_frames), _frame_mask(mask, split.target_frames)]
    )
    dv_loss = dinv.loss.mri.Artifact2ArtifactLoss(
        img_size=(2, FRAMES, SIZE, SIZE), split_size=2, dynamic_model=False
    )
    dv_loss.mask_generator = replay  # input chunk (wrapper), then target chunk (loss)
    dv, _, _ = dv_objective([dv_loss], models.dv, pair)
    return compare(ss, dv, models, known=TIME_NORMALISER, scale=(f"×{FRAMES}", float(FRAMES)))


CASES = [
    Case("sup", "sup", "SupLoss", sup),
    Case("mc", "mc", "MCLoss", mc("single-coil")),
    Case("mc", "mc [multicoil]", "MCLoss on Aᴴ (SSIBench AdjointMCLoss)", mc("multicoil")),
    Case("ssdu", "ssdu", "SplittingLoss", ssdu("single-coil")),
    Case("ssdu", "ssdu [multicoil]", "SplittingLoss", ssdu("multicoil")),
    Case("ssdu", "ssdu [own samplers]", "SplittingLoss + BernoulliSplitting", ssdu_own_samplers),
    Case(
        "noise2inverse", "noise2inverse [eval]", "SplittingLoss.SplittingModel", noise2inverse_eval
    ),
    Case("weighted-ssdu", "weighted-ssdu", "mri.WeightedSplittingLoss", weighted_ssdu(False)),
    Case(
        "weighted-ssdu",
        "weighted-ssdu [deepinv weights]",
        "mri.WeightedSplittingLoss",
        weighted_ssdu(True),
    ),
    Case("robust-ssdu", "robust-ssdu", "mri.RobustSplittingLoss", robust_ssdu),
    Case(
        "ssdu-consistency",
        "ssdu-consistency",
        "SplittingLoss (SSIBench SplittingConsistencyLoss)",
        ssdu_consistency,
    ),
    Case(
        "moc-ssdu",
        "moc-ssdu",
        "MOILoss (SSIBench MOConsistencyLoss) + SplittingLoss",
        moc_ssdu,
    ),
    Case("phase2phase", "phase2phase", "mri.Phase2PhaseLoss", phase2phase),
    Case("artifact2artifact", "artifact2artifact", "mri.Artifact2ArtifactLoss", artifact2artifact),
]
