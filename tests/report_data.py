"""Hand-made metrics rows shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ssibench.data.identity import store_identity
from ssibench.data.measurements import write_measurements

SCENARIO = "noisy"
#: PSNR per (method, seed) over three test slices; sup is worse than ssdu on purpose (must still
#: be listed last), zero-filled sits between mc and ssdu.
PSNR = {
    ("mc", 0): [10.0, 12.0, 14.0],
    ("mc", 1): [11.0, 13.0, 15.0],
    ("zero-filled", 0): [20.0, 20.0, 20.0],
    ("zero-filled", 1): [20.0, 20.0, 20.0],
    ("ssdu", 0): [30.0, 31.0, 32.0],
    ("ssdu", 1): [30.0, 31.0, 32.0],
    ("sup", 0): [25.0, 25.0, 25.0],
    ("sup", 1): [27.0, 27.0, 27.0],
}


def make_metrics(
    psnr: dict[tuple[str, int], list[float]] = PSNR, fastmri: bool = True
) -> pd.DataFrame:
    """Hand-made metrics rows: SSIM = PSNR / 100, NMSE = 1 / PSNR, zf_psnr = 20 + sample."""
    rows = []
    modes = ("ssibench", "fastmri") if fastmri else ("ssibench",)
    for (method, seed), values in psnr.items():
        for sample, value in enumerate(values):
            for mode in modes:
                offset = 0.0 if mode == "ssibench" else 1.0
                rows.append(
                    {
                        "scenario": SCENARIO,
                        "method": method,
                        "seed": seed,
                        "sample": sample,
                        "mode": mode,
                        "psnr": value + offset,
                        "ssim": value / 100,
                        "nmse": 1 / value,
                        "zf_psnr": 20.0 + sample,
                        "zf_ssim": 0.2,
                        "zf_nmse": 0.05,
                    }
                )
    return pd.DataFrame(rows)


#: Test slices of the store the hand-made metrics cover.
N_TEST = 3


def write_store(path: Path, n_test: int = N_TEST) -> str:
    """A tiny single-coil measurement store of ``n_test`` test slices; returns its content hash."""
    with write_measurements(
        path,
        scenario=SCENARIO,
        physics_kind="single-coil",
        sigma=0.1,
        spec={"physics": "single-coil", "sigma": 0.1},
        seed=0,
        slices_file="slices.h5",
        coil_maps=None,
    ) as writer:
        for split, n in (("train", 2), ("val", 1), ("test", n_test)):
            writer.create_split(split, torch.arange(n), (2, 4, 4))
            writer.write_rows(
                split, 0, torch.zeros(n, 2, 4, 4), torch.ones(n, 2, 4, 4), torch.ones(n, 1, 4, 4)
            )
    return store_identity(path).content_hash


def with_provenance(frame: pd.DataFrame, store_hash: str) -> pd.DataFrame:
    """``frame`` with the provenance columns ``ssibench evaluate`` writes (the installed code)."""
    from ssibench.provenance import code_hash

    return frame.assign(store_hash=store_hash, code_hash=frame["method"].map(code_hash))


def write_metrics(root: Path, frame: pd.DataFrame) -> list[Path]:
    """One metrics.csv per (method, seed) of ``frame`` under ``root/<method>/seed<k>/``."""
    paths = []
    for (method, seed), rows in frame.groupby(["method", "seed"], sort=False):
        folder = root / str(method) / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_csv(folder / "metrics.csv", index=False)
        paths.append(folder / "metrics.csv")
    return paths
