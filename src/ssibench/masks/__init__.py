"""Cartesian acquisition masks and measurement-splitting masks, vectorised over the batch.

Modules: :mod:`~ssibench.masks.acquisition` (column densities), :mod:`~ssibench.masks.splitting`
(SSDU-style splits) and :mod:`~ssibench.masks.inclusion` (exact sampling densities).

Generators hold only hyper-parameters. ``sample(...)`` takes the ``torch.Generator`` to draw from,
is deterministic for a seed, never touches the global RNG, and draws the whole batch in one call (no
Python loop per sample). Acquisition masks select whole columns (phase-encode lines along W) and are
returned as ``(B, 1, H, W)`` float32 of 0/1.

Line counts follow the reference (DeepInverse's ``BaseMaskGenerator``): for width W, acceleration R
and centre fraction c, n_center = ⌊c W⌋ fully sampled centre columns plus
n_lines = ⌊W / R⌋ − n_center random columns (at W = 320, R = 6, c = 0.08: 25 + 28 = 53 columns).

:func:`inclusion_probabilities` gives the exact probability E[Mⱼ] that each column is sampled (the
sampling density that weighted losses such as ENSURE and weighted SSDU invert), computed once per
(generator, W) and cached.
"""

from ssibench.masks.acquisition import (
    MASK_GENERATORS,
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    MaskGenerator,
    RandomMaskGenerator,
    center_block,
    line_counts,
    make_mask_generator,
    sample_without_replacement,
)
from ssibench.masks.inclusion import inclusion_probabilities, successive_sampling_inclusion
from ssibench.masks.splitting import (
    BernoulliSplittingMaskGenerator,
    MultiplicativeSplittingMaskGenerator,
)

__all__ = [
    "MASK_GENERATORS",
    "BernoulliSplittingMaskGenerator",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "MaskGenerator",
    "MultiplicativeSplittingMaskGenerator",
    "RandomMaskGenerator",
    "center_block",
    "inclusion_probabilities",
    "line_counts",
    "make_mask_generator",
    "sample_without_replacement",
    "successive_sampling_inclusion",
]
