"""Builders: a method name and a scenario → the losses that train (and evaluate) its network.

:data:`BUILDERS` holds one function per non-adversarial method of
:data:`ssibench.methods.METHODS`, taking a :class:`MethodContext` (the scenario, the method's
typed options record and the loss random stream) and returning the method's losses with the
reference's settings. Adversarial methods are built with their discriminator by
:mod:`ssibench.methods.adversarial`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ssibench.config.kinds import PhysicsKind, physics_kind
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
from ssibench.losses.base import signature_problem
from ssibench.losses.dynamic import Artifact2ArtifactLoss, Phase2PhaseLoss
from ssibench.losses.moc import MOConsistencyLoss
from ssibench.losses.splitting_consistency import SplittingConsistencyLoss
from ssibench.losses.sure import ENSURELoss, SureGaussianLoss
from ssibench.losses.weighted_splitting import RobustSplittingLoss, WeightedSplittingLoss
from ssibench.masks import GaussianMaskGenerator, MaskGenerator, make_mask_generator
from ssibench.methods.registry import (
    get_method,
    parse_method_options,
    plugin_builder,
    skip_reason,
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
    "BUILDERS",
    "LossBuilder",
    "MethodContext",
    "acquisition_masks",
    "build_losses",
    "is_multicoil",
    "method_context",
    "with_noise_level",
]


@dataclass(frozen=True)
class MethodContext:
    """What a method needs to build its losses.

    Attributes:
        scenario: the scenario spec (``physics``, ``sigma``, ``mask``, ``acceleration``, ...).
        options: the method's options record (:func:`ssibench.methods.options_record`): its
            defaults updated with ``method_options.<method>``, one typed attribute per option.
        generator: the random stream of the losses (``loss`` in training, ``eval`` in evaluation).
        method: the method's name (for messages).
    """

    scenario: Mapping[str, Any]
    options: Any
    generator: torch.Generator
    method: str = "this method"


#: context → the method's losses.
LossBuilder = Callable[[MethodContext], list[Loss]]


def _kind(context: MethodContext) -> PhysicsKind:
    return physics_kind(context.scenario.get("physics", "single-coil"), "scenario.physics")


def is_multicoil(context: MethodContext) -> bool:
    """Whether the scenario is multicoil (some terms then work in the adjoint domain)."""
    return _kind(context).coils


def _mc(context: MethodContext) -> Loss:
    """The MC term: adjoint-domain in multicoil, as the reference does."""
    return AdjointMCLoss() if is_multicoil(context) else MCLoss()


def acquisition_masks(context: MethodContext) -> MaskGenerator:
    """The scenario's acquisition mask generator (multi-operator methods draw new masks from it).

    Raises:
        ConfigError: when the scenario spec lacks ``mask`` or ``acceleration`` (``ssibench
            train`` given a ``--spec`` without the scenario), naming the key and the fix.
    """
    missing = [key for key in ("mask", "acceleration") if key not in context.scenario]
    if missing:
        # the store's physics are in the file, but not the mask family new operators are drawn from
        raise ConfigError(
            f"scenario.{missing[0]}: missing; method {context.method!r} draws new acquisition "
            "masks like the scenario's, so its spec needs the scenario's config slice (the "
            'workflow passes it): add it to --spec, e.g. --spec \'{"scenario": {"mask": '
            '"gaussian", "acceleration": 6}}\' with the mask and acceleration the store was '
            "simulated with"
        )
    return make_mask_generator(
        context.scenario["mask"],
        context.scenario["acceleration"],
        context.scenario.get("center_fraction"),  # None: the mask's own default
        context.scenario.get("center_lines"),
    )


def _splitting(context: MethodContext, eval_split_input: bool) -> list[Loss]:
    options = context.options
    return [
        SplittingLoss(
            context.generator,
            split_ratio=options.split_ratio,
            eval_n_samples=options.eval_n_samples,
            eval_split_input=eval_split_input,
        )
    ]


def _split_masks(context: MethodContext) -> MaskGenerator:
    """Millard & Chiew's split: a 1-D Gaussian column mask without a centre block (reference)."""
    return GaussianMaskGenerator(
        acceleration=context.options.split_acceleration, center_fraction=0.0
    )


def _weighted_splitting(context: MethodContext) -> Loss:
    return WeightedSplittingLoss(
        context.generator, acquisition_masks(context), _split_masks(context)
    )


def _rotate(options: Mapping[str, Any]) -> Rotate:
    return Rotate(multiples=options.rotate_multiples)


def _sigma(context: MethodContext) -> float:
    return float(context.scenario["sigma"])


#: The loss builder of every non-adversarial method.
BUILDERS: dict[str, LossBuilder] = {
    "zero-filled": lambda context: [],
    "sup": lambda context: [SupLoss()],
    "mc": lambda context: [_mc(context)],
    "ssdu": lambda context: _splitting(context, eval_split_input=False),
    "noise2inverse": lambda context: _splitting(context, eval_split_input=True),
    "weighted-ssdu": lambda context: [_weighted_splitting(context)],
    "ssdu-consistency": lambda context: [
        SplittingConsistencyLoss(context.generator, split_ratio=context.options.split_ratio)
    ],
    "moc-ssdu": lambda context: [
        MOConsistencyLoss(acquisition_masks(context), context.generator),
        SplittingLoss(
            context.generator,
            split_ratio=context.options.split_ratio,
            eval_n_samples=1,
            eval_split_input=False,
        ),
    ],
    "ei": lambda context: [
        _mc(context),
        EILoss(_rotate(context.options), context.generator),
    ],
    "moi": lambda context: [
        _mc(context),
        MOILoss(acquisition_masks(context), context.generator),
    ],
    "mo-ei": lambda context: [
        _mc(context),
        MOEILoss(CPABDiffeomorphism(), acquisition_masks(context), context.generator),
    ],
    "vortex": lambda context: [
        _mc(context),
        AugmentConsistencyLoss(
            Compose(
                [
                    RandomPhaseError(scale=context.options.phase_error_scale),
                    RandomNoise(sigma=context.options.augment_sigma),
                ]
            ),
            None,
            context.generator,
        ),
    ],
    "ensure": lambda context: [
        ENSURELoss(
            _sigma(context),
            acquisition_masks(context),
            context.generator,
            weighted_divergence=context.options.weighted_divergence,
        )
    ],
    "robust-ssdu": lambda context: [
        RobustSplittingLoss(
            context.generator,
            acquisition_masks(context),
            _split_masks(context),
            sigma=_sigma(context),
            alpha=context.options.alpha,
        )
    ],
    "noise2recon-ssdu": lambda context: [
        _weighted_splitting(context),
        AugmentConsistencyLoss(
            RandomNoise(
                sigma=(
                    context.options.augment_sigma_min,
                    context.options.augment_sigma_max,
                )
            ),
            Identity(),
            context.generator,
            no_grad=False,
        ),
    ],
    "ddssl": lambda context: [
        R2RLoss(
            context.generator,
            alpha=context.options.r2r_alpha,
            sigma=_sigma(context),
            eval_n_samples=context.options.eval_n_samples,
        ),
        EILoss(
            RandomNoise(sigma=context.options.ei_sigma),
            context.generator,
            apply_noise=False,
        ),
    ],
    "robust-ei": lambda context: [
        SureGaussianLoss(_sigma(context), context.generator, tau=context.options.sure_tau),
        EILoss(_rotate(context.options), context.generator),
    ],
    "robust-mo-ei": lambda context: [
        SureGaussianLoss(_sigma(context), context.generator, tau=context.options.sure_tau),
        MOEILoss(CPABDiffeomorphism(), acquisition_masks(context), context.generator),
    ],
    "phase2phase": lambda context: [Phase2PhaseLoss(dynamic_model=_kind(context).video)],
    "artifact2artifact": lambda context: [
        Artifact2ArtifactLoss(
            context.generator,
            split_size=context.options.split_size,
            dynamic_model=_kind(context).video,
        )
    ],
}


def with_noise_level(scenario_spec: Mapping[str, Any], sigma: float) -> dict[str, Any]:
    """The scenario spec as the methods see it, ``sigma`` set to the data's noise level.

    ``sigma`` is the measurement store's: the simulated σ (equal to the spec's), or, for acquired
    k-space, the level estimated from the data (the spec has 0 there: no noise is *added*).
    """
    return {**scenario_spec, "sigma": float(sigma)}


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
    options = parse_method_options(method, overrides)
    return MethodContext(scenario_spec, options, generator, method)


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
    if get_method(method).adversarial:
        return []
    build = BUILDERS.get(method) or plugin_builder(method)
    losses = build(context)
    if not isinstance(losses, list | tuple) or not all(
        isinstance(loss, torch.nn.Module) for loss in losses
    ):
        raise ConfigError(
            f"method {method!r}: its builder must return a list of losses (nn.Module); got "
            f"{losses!r}"
        )
    for loss in losses:
        problem = signature_problem(loss)
        if problem is not None:
            spec = get_method(method)
            where = f" (plugin {spec.plugin!r})" if spec.plugin else ""
            raise ConfigError(
                f"method {method!r}{where}: loss {type(loss).__name__} cannot be called: "
                f"{problem}; write it as forward(self, x_net, y, physics, model, x=None, "
                "**kwargs) returning a scalar or one value per sample"
            )
    return list(losses)
