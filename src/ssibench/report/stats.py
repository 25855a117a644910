"""Paired significance test of each method against the best one, over the same test slices.

For methods a and b evaluated on the same n test slices, d_i = m_a(i) − m_b(i) with m(i) the
slice's metric averaged over training seeds. The Wilcoxon signed-rank statistic ranks |d_i|
(zero differences dropped, ties given mean ranks) and sums the ranks of the positive d_i:

    W⁺ = Σ_{i: d_i > 0} rank(|d_i|)

The two-sided p-value is exact for small n without ties and uses the normal approximation
otherwise (``scipy.stats.wilcoxon`` with ``method="auto"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

__all__ = ["SIGNIFICANCE_LEVEL", "paired_p_values", "per_slice"]

#: A method whose p-value against the best is below this level is marked as different from it.
SIGNIFICANCE_LEVEL = 0.05


def per_slice(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Slice × method table of ``metric``, averaged over seeds.

    Args:
        rows: metrics rows of one metric mode (columns ``method, seed, sample, <metric>``).
        metric: column to tabulate.

    Returns:
        DataFrame indexed by test slice (``sample``) with one column per method.
    """
    return rows.groupby(["sample", "method"])[metric].mean().unstack("method")


def paired_p_values(values: pd.DataFrame, reference: str) -> pd.Series:
    """Two-sided Wilcoxon signed-rank p-value of each method against ``reference``.

    Args:
        values: slice × method table (see :func:`per_slice`).
        reference: the method every other is compared with (the best one).

    Returns:
        p-value per method (index = columns of ``values``): NaN for the reference itself, 1.0 for
        a method identical to it on every slice (no evidence of a difference).

    Raises:
        ValueError: if ``reference`` is not a column, or a method misses slices the reference has.
    """
    if reference not in values.columns:
        raise ValueError(f"reference method {reference!r} not in {list(values.columns)}")
    base = values[reference]
    p_values = {}
    for method in values.columns:
        if method == reference:
            p_values[method] = np.nan
            continue
        pairs = pd.concat([values[method], base], axis=1).dropna()
        if len(pairs) != base.notna().sum():
            raise ValueError(
                f"method {method!r} was evaluated on {len(pairs)} of the {base.notna().sum()} "
                f"test slices of {reference!r}; a paired test needs the same slices"
            )
        differences = (pairs.iloc[:, 0] - pairs.iloc[:, 1]).to_numpy()
        if np.all(differences == 0):
            p_values[method] = 1.0
        else:
            p_values[method] = float(wilcoxon(differences, zero_method="wilcox").pvalue)
    return pd.Series(p_values, dtype="float64")
