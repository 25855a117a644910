"""The published SSIBench leaderboards, shipped as data, and our numbers set beside them.

``ssibench/data/published_leaderboards.csv`` holds the paper's test-set means (PSNR dB, SSIM) of
its four scenarios, keyed by our scenario and method names. Scenarios are matched by name, so a
configured scenario reproduces a published one when it keeps the default name (``single-coil``,
``noisy``, ``single-operator``, ``multicoil``); a scenario without published numbers gets NaN.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["PUBLISHED_SOURCE", "published_leaderboards", "with_published"]

#: Where the published values come from (quoted in tables and captions).
PUBLISHED_SOURCE = "SSIBench leaderboard, github.com/Andrewwango/ssibench README @44af995"
_COLUMNS = ("scenario", "method", "paper_label", "psnr", "ssim")


@cache
def _read() -> pd.DataFrame:
    path = resources.files("ssibench.data") / "published_leaderboards.csv"
    with path.open(encoding="utf-8") as handle:
        table = pd.read_csv(handle, comment="#")
    if tuple(table.columns) != _COLUMNS:
        raise ValueError(f"{path}: columns {list(table.columns)}, expected {list(_COLUMNS)}")
    return table


def published_leaderboards() -> pd.DataFrame:
    """All published rows: ``scenario, method, paper_label, psnr, ssim`` (a fresh copy)."""
    return _read().copy()


def with_published(table: pd.DataFrame, scenario: str) -> pd.DataFrame:
    r"""Add the published PSNR/SSIM of ``scenario`` and our difference to a leaderboard table.

    .. math:: \Delta_\text{PSNR} = \overline{\text{PSNR}}_\text{ours} - \text{PSNR}_\text{paper}

    Args:
        table: leaderboard rows with columns ``method, psnr_mean, ssim_mean``.
        scenario: our scenario name, matched against the published scenario names.

    Returns:
        A copy with ``psnr_published, ssim_published, psnr_diff, ssim_diff`` (NaN where the paper
        has no number for the method in this scenario).
    """
    published = _read()
    rows = published[published["scenario"] == scenario].set_index("method")
    result = table.copy()
    result["psnr_published"] = result["method"].map(rows["psnr"]).astype("float64")
    result["ssim_published"] = result["method"].map(rows["ssim"]).astype("float64")
    result["psnr_diff"] = result["psnr_mean"] - result["psnr_published"]
    result["ssim_diff"] = result["ssim_mean"] - result["ssim_published"]
    return result
