"""The benchmark's methods, registered once under their SSIBench names.

A method is a recipe: which losses train the reconstruction network, with the reference's
hyper-parameters as defaults, and which scenarios it applies to. The workflow expands only the
applicable (scenario, method) pairs and reports the others with the reason from :func:`skip_reason`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ssibench.adversarial import AdversarialParts, AdversarialResources
from ssibench.discriminators import SkipConvDiscriminator
from ssibench.errors import ConfigError
from ssibench.losses import (
    AdjointMCLoss,
    AugmentConsistencyLoss,
    EILoss,
    Loss,
    MCLoss,
    MOEILoss,
    MOILoss,
    R2RLoss,
    SplittingLoss,
    SupLoss,
)
from ssibench.losses.adversarial import (
    AdversarialSampler,
    MultiOperatorUnsupAdversarialDiscriminatorLoss,
    MultiOperatorUnsupAdversarialGeneratorLoss,
    UAIRDiscriminatorLoss,
    UAIRGeneratorLoss,
)
from ssibench.losses.dynamic import Artifact2ArtifactLoss, Phase2PhaseLoss
from ssibench.losses.moc import MOConsistencyLoss
from ssibench.losses.splitting_consistency import SplittingConsistencyLoss
from ssibench.losses.sure import ENSURELoss, SureGaussianLoss
from ssibench.losses.weighted_splitting import RobustSplittingLoss, WeightedSplittingLoss
from ssibench.masks import GaussianMaskGenerator, MaskGenerator, make_mask_generator
from ssibench.method_options import (
    OPTION_ORDERS,
    OPTION_RULES,
    OptionOrder,
    OptionRule,
    check_options,
)
from ssibench.transforms import (
    Compose,
    CPABDiffeomorphism,
    Identity,
    RandomNoise,
    RandomPhaseError,
    Rotate,
)

__all__ = [
    "METHODS",
    "OPTION_ORDERS",
    "OPTION_RULES",
    "TIME_SERIES_PHYSICS",
    "MethodContext",
    "MethodSpec",
    "OptionOrder",
    "OptionRule",
    "build_losses",
    "get_method",
    "method_context",
    "method_options",
    "skip_reason",
]


@dataclass(frozen=True)
class MethodContext:
    """What a method needs to build its losses.

    Attributes:
        scenario: the scenario spec (``physics``, ``sigma``, ``mask``, ``acceleration``, ...).
        options: the method's hyper-parameters (defaults merged with ``method_options.<method>``).
        generator: the random stream of the losses (``loss`` in training, ``eval`` in evaluation).
    """

    scenario: Mapping[str, Any]
    options: Mapping[str, Any]
    generator: torch.Generator


#: (context, resources) → discriminator with generator and discriminator losses.
AdversarialBuilder = Callable[[MethodContext, AdversarialResources], AdversarialParts]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: the SSIBench name used in config and paths.
        label: the name shown in tables and figures, as in the paper.
        trains: False only for the zero-filled baseline.
        needs_noise: applies only to scenarios with a noise level σ > 0.
        supervised: uses ground truth (shown apart in tables).
        build: context → list of losses.
        defaults: hyper-parameters and their reference values (overridable per method in the
            config).
        citation: where the method comes from.
        build_adversarial: for adversarial methods, (context, resources) → discriminator and the
            generator/discriminator losses; the trainer then alternates G and D steps.
        time_series: "only" (needs time-series measurements), "also" (works on both) or "never".
    """

    name: str
    label: str
    trains: bool
    needs_noise: bool
    supervised: bool
    build: Callable[[MethodContext], list[Loss]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    citation: str = ""
    build_adversarial: Callable[[MethodContext, AdversarialResources], AdversarialParts] | None = (
        None
    )
    time_series: Literal["only", "also", "never"] = "never"


def _is_multicoil(context: MethodContext) -> bool:
    return context.scenario.get("physics") == "multicoil"


def _mc(context: MethodContext) -> Loss:
    """The MC term: adjoint-domain in multicoil, as the reference does."""
    return AdjointMCLoss() if _is_multicoil(context) else MCLoss()


def _acquisition_masks(context: MethodContext) -> MaskGenerator:
    return make_mask_generator(
        context.scenario.get("mask", "gaussian"),
        context.scenario.get("acceleration", 6),
        context.scenario.get("center_fraction"),
    )


def _splitting(context: MethodContext, eval_split_input: bool) -> list[Loss]:
    options = context.options
    return [
        SplittingLoss(
            context.generator,
            split_ratio=options["split_ratio"],
            eval_n_samples=options["eval_n_samples"],
            eval_split_input=eval_split_input,
        )
    ]


def _split_masks(context: MethodContext) -> MaskGenerator:
    """Millard & Chiew's split: a 1-D Gaussian column mask without a centre block (reference)."""
    return GaussianMaskGenerator(
        acceleration=context.options["split_acceleration"], center_fraction=0.0
    )


def _weighted_splitting(context: MethodContext) -> Loss:
    return WeightedSplittingLoss(
        context.generator, _acquisition_masks(context), _split_masks(context)
    )


def _rotate(options: Mapping[str, Any]) -> Rotate:
    return Rotate(multiples=options["rotate_multiples"])


def _sigma(context: MethodContext) -> float:
    return float(context.scenario["sigma"])


def _discriminator(
    context: MethodContext, resources: AdversarialResources
) -> SkipConvDiscriminator:
    height, width = resources.train_set.x.shape[-2:]
    return SkipConvDiscriminator(
        (height, width),
        resources.discriminator_generator,
        d_dim=context.options["d_dim"],
        d_blocks=context.options["d_blocks"],
        use_sigmoid=False,
    )


def _multi_operator_adversarial(
    context: MethodContext, resources: AdversarialResources
) -> AdversarialParts:
    """Cole et al.: D tells measurements of other images from re-measured reconstructions."""
    from ssibench.adversarial import UnpairedBatches

    discriminator = _discriminator(context, resources)
    sampler = AdversarialSampler(
        _acquisition_masks(context),
        context.generator,
        UnpairedBatches(resources.train_set, resources.unpaired_generator),
    )
    weight = context.options["weight_adv"]
    return AdversarialParts(
        discriminator,
        [MultiOperatorUnsupAdversarialGeneratorLoss(discriminator, sampler, weight, "A_adjoint")],
        [
            MultiOperatorUnsupAdversarialDiscriminatorLoss(
                discriminator, sampler, weight, "A_adjoint"
            )
        ],
    )


def _uair(context: MethodContext, resources: AdversarialResources) -> AdversarialParts:
    """UAIR: adversarial on measurements of new operators plus measurement consistency."""
    discriminator = _discriminator(context, resources)
    sampler = AdversarialSampler(_acquisition_masks(context), context.generator)
    space = "A_adjoint" if _is_multicoil(context) else "kspace"
    options = context.options
    return AdversarialParts(
        discriminator,
        [
            UAIRGeneratorLoss(
                discriminator,
                sampler,
                weight_adv=options["weight_adv"],
                weight_mc=options["weight_mc"],
                space=space,
            )
        ],
        [UAIRDiscriminatorLoss(discriminator, sampler, weight=options["weight_d"], space=space)],
    )


def _no_losses_outside_adversarial_training(context: MethodContext) -> list[Loss]:
    raise ConfigError("adversarial methods are built by the trainer's adversarial mode")


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            name="zero-filled",
            label="Zero-filled",
            trains=False,
            needs_noise=False,
            supervised=False,
            build=lambda context: [],
            citation="No learning: the adjoint Aᴴy.",
            time_series="also",
        ),
        MethodSpec(
            name="sup",
            label="(Supervised)",
            trains=True,
            needs_noise=False,
            supervised=True,
            build=lambda context: [SupLoss()],
            citation="Supervised MSE to the ground truth (upper bound).",
            time_series="also",
        ),
        MethodSpec(
            name="mc",
            label="MC",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [_mc(context)],
            citation="Measurement consistency only.",
            time_series="also",
        ),
        MethodSpec(
            name="ssdu",
            label="SSDU",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: _splitting(context, eval_split_input=False),
            defaults={"split_ratio": 0.6, "eval_n_samples": 1},
            citation="Yaman et al., MRM 2020, arXiv:1912.07669.",
        ),
        MethodSpec(
            name="noise2inverse",
            label="Noise2Inverse",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: _splitting(context, eval_split_input=True),
            defaults={"split_ratio": 0.6, "eval_n_samples": 3},
            citation="Hendriksen et al., IEEE TCI 2020, arXiv:2001.11801.",
        ),
        MethodSpec(
            name="weighted-ssdu",
            label="Weighted-SSDU",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [_weighted_splitting(context)],
            defaults={"split_acceleration": 2.0},
            citation="Millard & Chiew, IEEE TCI 2023, arXiv:2205.10278.",
        ),
        MethodSpec(
            name="ssdu-consistency",
            label="SSDU-Consistency",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                SplittingConsistencyLoss(
                    context.generator, split_ratio=context.options["split_ratio"]
                )
            ],
            defaults={"split_ratio": 0.6},
            citation="After Hu et al. (parallel-network SSDU consistency), as SSIBench.",
        ),
        MethodSpec(
            name="moc-ssdu",
            label="MOC-SSDU",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                MOConsistencyLoss(_acquisition_masks(context), context.generator),
                SplittingLoss(
                    context.generator,
                    split_ratio=context.options["split_ratio"],
                    eval_n_samples=1,
                    eval_split_input=False,
                ),
            ],
            defaults={"split_ratio": 0.6},
            citation="SSIBench (Wang, McDonagh, Davies 2025): SSDU + multi-operator consistency.",
        ),
        MethodSpec(
            name="ei",
            label="EI",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                EILoss(_rotate(context.options), context.generator),
            ],
            defaults={"rotate_multiples": 1},
            citation="Chen, Tachella, Davies, ICCV 2021, arXiv:2103.14756.",
            time_series="also",
        ),
        MethodSpec(
            name="moi",
            label="MOI",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                MOILoss(_acquisition_masks(context), context.generator),
            ],
            citation="Tachella, Chen, Davies, NeurIPS 2022, arXiv:2201.12151.",
        ),
        MethodSpec(
            name="mo-ei",
            label="MO-EI",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                MOEILoss(CPABDiffeomorphism(), _acquisition_masks(context), context.generator),
            ],
            citation="SSIBench MO-EI: EI with CPAB diffeomorphisms (Wang & Davies, 2025) and a "
            "new acquisition mask per sample (MOI).",
        ),
        MethodSpec(
            name="vortex",
            label="VORTEX",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                _mc(context),
                AugmentConsistencyLoss(
                    Compose(
                        [
                            RandomPhaseError(scale=context.options["phase_error_scale"]),
                            RandomNoise(sigma=context.options["augment_sigma"]),
                        ]
                    ),
                    None,
                    context.generator,
                ),
            ],
            defaults={"phase_error_scale": 0.1, "augment_sigma": 0.1},
            citation="Desai et al., MIDL 2022, arXiv:2111.02549.",
        ),
        MethodSpec(
            name="adversarial",
            label="Adversarial",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=_no_losses_outside_adversarial_training,
            build_adversarial=_multi_operator_adversarial,
            defaults={"weight_adv": 1.0, "d_dim": 128, "d_blocks": 4},
            citation="Cole et al., arXiv:2008.13065 (multi-operator unsupervised adversarial).",
        ),
        MethodSpec(
            name="uair",
            label="UAIR",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=_no_losses_outside_adversarial_training,
            build_adversarial=_uair,
            defaults={
                "weight_adv": 0.5,
                "weight_mc": 1.0,
                "weight_d": 1.0,
                "d_dim": 128,
                "d_blocks": 4,
            },
            citation="Pajot, de Bézenac, Gallinari, ICLR 2019.",
        ),
        MethodSpec(
            name="ensure",
            label="ENSURE",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                ENSURELoss(
                    _sigma(context),
                    _acquisition_masks(context),
                    context.generator,
                    weighted_divergence=context.options["weighted_divergence"],
                )
            ],
            defaults={"weighted_divergence": False},
            citation="Aggarwal, Pramanik, Jacob, IEEE TMI 2023, arXiv:2010.10631.",
        ),
        MethodSpec(
            name="robust-ssdu",
            label="Robust-SSDU",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                RobustSplittingLoss(
                    context.generator,
                    _acquisition_masks(context),
                    _split_masks(context),
                    sigma=_sigma(context),
                    alpha=context.options["alpha"],
                )
            ],
            defaults={"split_acceleration": 2.0, "alpha": 0.75},
            citation="Millard & Chiew, IEEE TCI 2023, arXiv:2205.10278 (robust SSDU).",
        ),
        MethodSpec(
            name="noise2recon-ssdu",
            label="Noise2Recon-SSDU",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                _weighted_splitting(context),
                AugmentConsistencyLoss(
                    RandomNoise(
                        sigma=(
                            context.options["augment_sigma_min"],
                            context.options["augment_sigma_max"],
                        )
                    ),
                    Identity(),
                    context.generator,
                    no_grad=False,
                ),
            ],
            defaults={
                "split_acceleration": 2.0,
                "augment_sigma_min": 0.05,
                "augment_sigma_max": 0.2,
            },
            citation="Desai et al., MRM 2023, arXiv:2110.00075, with weighted SSDU.",
        ),
        MethodSpec(
            name="ddssl",
            label="DDSSL",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                R2RLoss(
                    context.generator,
                    alpha=context.options["r2r_alpha"],
                    sigma=_sigma(context),
                    eval_n_samples=context.options["eval_n_samples"],
                ),
                EILoss(
                    RandomNoise(sigma=context.options["ei_sigma"]),
                    context.generator,
                    apply_noise=False,
                ),
            ],
            defaults={"r2r_alpha": 0.5, "eval_n_samples": 5, "ei_sigma": 0.1},
            citation="SSIBench DDSSL: recorrupted-to-recorrupted (Pang et al., CVPR 2021) + EI "
            "with a noise transform.",
        ),
        MethodSpec(
            name="robust-ei",
            label="Robust-EI",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                SureGaussianLoss(
                    _sigma(context), context.generator, tau=context.options["sure_tau"]
                ),
                EILoss(_rotate(context.options), context.generator),
            ],
            defaults={"sure_tau": 0.01, "rotate_multiples": 1},
            citation="Chen, Tachella, Davies, CVPR 2022, arXiv:2111.12855 (robust EI).",
        ),
        MethodSpec(
            name="robust-mo-ei",
            label="Robust-MO-EI",
            trains=True,
            needs_noise=True,
            supervised=False,
            build=lambda context: [
                SureGaussianLoss(
                    _sigma(context), context.generator, tau=context.options["sure_tau"]
                ),
                MOEILoss(CPABDiffeomorphism(), _acquisition_masks(context), context.generator),
            ],
            defaults={"sure_tau": 0.01},
            citation="SSIBench: SURE (Stein 1981) + MO-EI.",
        ),
        MethodSpec(
            name="phase2phase",
            label="Phase2Phase",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                Phase2PhaseLoss(dynamic_model=context.scenario["physics"] == "dynamic")
            ],
            time_series="only",
            citation="Eldeniz et al., Investigative Radiology 2021.",
        ),
        MethodSpec(
            name="artifact2artifact",
            label="Artifact2Artifact",
            trains=True,
            needs_noise=False,
            supervised=False,
            build=lambda context: [
                Artifact2ArtifactLoss(
                    context.generator,
                    split_size=context.options["split_size"],
                    dynamic_model=context.scenario["physics"] == "dynamic",
                )
            ],
            defaults={"split_size": 2},
            time_series="only",
            citation="Liu et al., IEEE JSTSP 2020, arXiv:1912.05854.",
        ),
    )
}

#: Physics kinds whose measurements are time series ``(B, 2, T, H, W)``.
TIME_SERIES_PHYSICS = ("sequential", "dynamic")


def get_method(name: str) -> MethodSpec:
    """Return the registered method ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid names and the closest match.
    """
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown method {name!r}{hint}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def skip_reason(method: str, scenario_spec: Mapping[str, Any]) -> str | None:
    """Why ``method`` does not apply to a scenario, or None if it does."""
    spec = get_method(method)
    if spec.needs_noise and not scenario_spec.get("sigma", 0.0) > 0:
        return "needs a noise level (sigma > 0)"
    time_series = scenario_spec.get("physics") in TIME_SERIES_PHYSICS
    if time_series and spec.time_series == "never":
        return "needs a single static acquisition (not a time series)"
    if not time_series and spec.time_series == "only":
        return "needs time-series measurements (physics: sequential or dynamic)"
    return None


def method_options(method: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's defaults updated with ``overrides``, each checked against its rule.

    Every override must have the type and range of its :data:`OPTION_RULES` entry (an integer is
    accepted for a number and returned as a float; a bool is not a number; NaN and ±inf are
    refused), and the merged options must satisfy :data:`OPTION_ORDERS`.

    Args:
        method: the registered method name.
        overrides: ``method_options.<method>`` of the config, or None.

    Returns:
        The merged options, option name → value.

    Raises:
        ConfigError: for an unknown method or key, or a value of the wrong type or out of range,
            naming the dotted key (``method_options.ssdu.split_ratio``), the value and what is
            allowed.
    """
    spec = get_method(method)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        allowed = ", ".join(sorted(spec.defaults)) or "none"
        raise ConfigError(
            f"method_options.{method}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    return check_options(method, spec.defaults, overrides)


def method_context(
    method: str,
    scenario_spec: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    generator: torch.Generator,
) -> MethodContext:
    """Check that ``method`` applies to the scenario and bundle what its builders need."""
    reason = skip_reason(method, scenario_spec)
    if reason is not None:
        raise ConfigError(f"method {method!r} does not apply to this scenario: {reason}")
    return MethodContext(scenario_spec, method_options(method, overrides), generator)


def build_losses(
    method: str,
    scenario_spec: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    generator: torch.Generator,
) -> list[Loss]:
    """Build the losses of ``method`` for a scenario (checking applicability and options).

    For an adversarial method these are the network's losses used at evaluation (none: evaluation
    only runs the network); training builds them with the discriminator through the trainer.
    """
    context = method_context(method, scenario_spec, overrides, generator)
    spec = get_method(method)
    if spec.build_adversarial is not None:
        return []
    return spec.build(context)
