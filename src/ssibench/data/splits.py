"""Split assignment: how N images are cut into the train, val and test splits.

The split is a random permutation of 0 … N−1 cut into consecutive train, val and test parts
(:func:`split_indices`), of the sizes ``torch.utils.data.random_split`` gives fractions
(:func:`split_lengths`); the train and test parts must not be empty (:func:`check_split_sizes`,
pure, so the workflow can call it while it builds the DAG). The permutation comes from the
generator of a split rule (:func:`split_generator`): ``"seeded"``, the ``split`` stream of the
master seed, or ``"ssibench"``, SSIBench's own ``torch.Generator().manual_seed(0)``, with which the
parts are exactly ``random_split(range(N), fractions, generator)``'s for any N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ssibench.errors import ConfigError
from ssibench.rng import stream

__all__ = [
    "FRACTION_SUM_TOLERANCE",
    "SPLITS",
    "SPLIT_RULES",
    "SSIBENCH_SPLIT_SEED",
    "check_fractions",
    "check_split_rule",
    "check_split_sizes",
    "split_generator",
    "split_indices",
    "split_lengths",
]

#: The data splits, in the order their indices are cut from the permutation and masks are drawn.
SPLITS = ("train", "val", "test")
#: Tolerance on Σ fractions = 1 (fractions usually come from a YAML file as decimals).
FRACTION_SUM_TOLERANCE = 1e-6
#: How the split's permutation is drawn (``data.split_rule``, ``ssibench extract --split-rule``).
SPLIT_RULES = ("seeded", "ssibench")
#: The seed of SSIBench's split (its ``train.py``: ``random_split(dataset, (0.8, 0.2),
#: generator=torch.Generator("cpu").manual_seed(0))``), whatever the experiment's seed.
SSIBENCH_SPLIT_SEED = 0
#: Largest N :func:`check_split_sizes` tries when it suggests how many volumes the fractions need.
_MAX_SUGGESTED_N = 100_000


def check_fractions(
    fractions: Sequence[float], where: str = "split fractions (--split TRAIN VAL TEST)"
) -> tuple[float, float, float]:
    """Validate (train, val, test) fractions: three finite numbers ≥ 0 summing to 1.

    Returns:
        The fractions as a tuple of floats.

    Raises:
        ConfigError: naming ``where``, if they are not three finite numbers ≥ 0 summing to 1.
    """
    values = tuple(float(f) for f in fractions)
    if len(values) != len(SPLITS):
        raise ConfigError(f"{where}: expected 3 values (train, val, test); got {list(values)}")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(
            f"{where}: every fraction must be a finite number ≥ 0; got {list(values)}"
        )
    if abs(sum(values) - 1.0) > FRACTION_SUM_TOLERANCE:
        raise ConfigError(
            f"{where}: fractions must sum to 1; got {list(values)} (sum {sum(values):g}); "
            "e.g. 0.8 0.0 0.2 as in SSIBench"
        )
    return values  # type: ignore[return-value]


def split_lengths(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Number of samples per split, as ``torch.utils.data.random_split`` does with fractions.

    nₛ = ⌊fₛ N⌋, then the remainder N − Σ nₛ is handed out one by one, round-robin from the first
    split, to the splits whose fraction is > 0 (so a split with fraction 0 stays empty).

    Raises:
        ConfigError: if the fractions are not three numbers ≥ 0 summing to 1.
    """
    values = check_fractions(fractions)
    lengths = [math.floor(f * n) for f in values]
    eligible = [i for i, f in enumerate(values) if f > 0]
    for k in range(n - sum(lengths)):
        lengths[eligible[k % len(eligible)]] += 1
    return lengths[0], lengths[1], lengths[2]


def check_split_sizes(
    n: int, fractions: Sequence[float], where: str = "data.split"
) -> tuple[int, int, int]:
    """Split sizes of :func:`split_lengths`, refusing an empty train or test split.

    (n_train, n_val, n_test) = :func:`split_lengths` (N, fractions); requires n_train ≥ 1 and
    n_test ≥ 1 (n_val = 0 is allowed: SSIBench uses 0.8 / 0.0 / 0.2). Pure: no I/O, so the
    workflow can call it while it builds the DAG.

    Args:
        n: number of images N (one per good raw volume).
        fractions: (train, val, test) fractions summing to 1.
        where: the config key (or option) the fractions come from, named in the error.

    Returns:
        (n_train, n_val, n_test), summing to N.

    Raises:
        ConfigError: if the fractions are invalid, or the train or test split would be empty; the
            message names ``where``, the counts per split, N and the fix.
    """
    if n < 0:
        raise ValueError(f"number of images must be ≥ 0; got {n}")
    values = check_fractions(fractions, where)
    lengths = split_lengths(n, values)
    empty = [
        name for name, length in zip(SPLITS, lengths, strict=True) if name != "val" and not length
    ]
    if not empty:
        return lengths
    counts = ", ".join(f"{name} {length}" for name, length in zip(SPLITS, lengths, strict=True))
    fixes = [f"raise {where}.{name}" for name in empty] if n else []
    needed = _smallest_valid_n(values)
    if needed is not None:
        fixes.append(f"add volumes (these fractions need N ≥ {needed})")
    fix = " or ".join(fixes) if len(fixes) <= 2 else ", ".join(fixes[:-1]) + f" or {fixes[-1]}"
    if not fix:
        fix = "add volumes"
    raise ConfigError(
        f"{where}: fractions {list(values)} of N = {n} images give {counts}; the "
        f"{' and '.join(empty)} split{'s' if len(empty) > 1 else ''} would be empty (train and "
        f"test need ≥ 1 image, val may be empty); {fix}"
    )


def _smallest_valid_n(fractions: tuple[float, float, float]) -> int | None:
    """Smallest N whose train and test splits are both non-empty, or ``None`` if none is found."""
    if fractions[0] <= 0 or fractions[2] <= 0:
        return None
    for n in range(1, _MAX_SUGGESTED_N + 1):
        train, _, test = split_lengths(n, fractions)
        if train and test:
            return n
    return None


def split_indices(
    n: int, fractions: Sequence[float], generator: torch.Generator
) -> dict[str, Tensor]:
    """Random train/val/test split: a permutation of 0 … N−1 cut into consecutive parts.

    Args:
        n: number of samples N.
        fractions: (train, val, test) fractions summing to 1 (see :func:`split_lengths`).
        generator: the ``split`` stream (one ``randperm(N)`` is drawn).

    Returns:
        split name → sorted ``(nₛ,)`` int64 indices; disjoint, covering 0 … N−1.
    """
    lengths = split_lengths(n, fractions)
    permutation = torch.randperm(n, generator=generator)
    parts = torch.split(permutation, list(lengths))
    return {name: part.sort().values for name, part in zip(SPLITS, parts, strict=True)}


def check_split_rule(rule: str, where: str = "--split-rule") -> str:
    """``rule`` if it is one of :data:`SPLIT_RULES`, else a ConfigError naming ``where``."""
    if rule not in SPLIT_RULES:
        raise ConfigError(f"{where}: unknown split rule {rule!r}; valid: {', '.join(SPLIT_RULES)}")
    return rule


def split_generator(rule: str, seed: int) -> torch.Generator:
    """The generator :func:`split_indices` draws its permutation from, under split rule ``rule``.

    * ``"seeded"``: the ``split`` stream of the master ``seed`` (:func:`ssibench.rng.stream`);
    * ``"ssibench"``: ``torch.Generator("cpu").manual_seed(0)``, SSIBench's, ignoring ``seed``:
      the parts then equal ``torch.utils.data.random_split(range(N), fractions, generator)``'s
      (as sets; ours are sorted), so they depend on the number of volumes N only.

    Raises:
        ConfigError: an unknown rule.

    Example:
        >>> from torch.utils.data import random_split
        >>> parts = split_indices(10, (0.8, 0.0, 0.2), split_generator("ssibench", seed=7))
        >>> reference = random_split(range(10), (0.8, 0.2), torch.Generator().manual_seed(0))
        >>> parts["test"].tolist() == sorted(reference[1].indices)
        True
    """
    check_split_rule(rule)
    if rule == "ssibench":
        return torch.Generator("cpu").manual_seed(SSIBENCH_SPLIT_SEED)
    return stream(seed, "split")
