"""The splitting collapse: k-space error inside and outside the acquired points, ± a final DC step.

For every finished run of a results folder (``results/<dataset>/runs/<scenario>/<method>/seed<k>``),
reconstructs the test split twice — as SSIBench scores it (``final_dc: none``) and with the
ablation's final data-consistency step x̂ + A†(y − A x̂) (``final_dc: hard``; ``noiseless`` is
``hard`` on noiseless stores and ``none`` on the others) — and prints, per
scenario and method, PSNR (SSIBench mode) and the relative k-space error at the acquired points
and elsewhere (:func:`ssibench.evaluation.consistency.kspace_errors`), then Spearman's ρ of each
variant's PSNR ranking with the published leaderboard. No file of the run is changed.

    python benchmarks/final_dc.py results/demo-40x40 data/measurements/demo-40x40 [--markdown]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from ssibench.data.identity import store_identity
from ssibench.data.measurements import read_measurements
from ssibench.evaluation.consistency import apply_final_dc, kspace_errors
from ssibench.evaluation.evaluate import load_trained_model
from ssibench.evaluation.functional import image_metrics
from ssibench.methods import METHODS
from ssibench.report.fig_published import rank_correlation
from ssibench.report.published import published_leaderboards

CPU = torch.device("cpu")
BATCH = 16


@torch.no_grad()
def score(store: Path, model: torch.nn.Module | None) -> dict[str, float]:
    """Mean PSNR and k-space errors of a store's test split, without and with hard DC.

    ``model`` None is zero-filled (Aᴴy, consistent already: both modes are the same image).
    """
    test = read_measurements(store, "test")
    totals: dict[str, list[torch.Tensor]] = {}
    for index in torch.arange(len(test)).split(BATCH):
        x, y, physics = test.x[index], test.y[index], test.physics(index)
        output = model(y, physics) if model is not None else physics.A_adjoint(y)
        for mode in ("none", "hard"):
            recon = apply_final_dc(output, y, physics, mode) if model is not None else output
            errors = kspace_errors(recon, x, physics)
            for name, value in (
                (f"psnr_{mode}", image_metrics(recon, x, "ssibench")["psnr"]),
                (f"acquired_{mode}", errors.acquired),
                (f"unacquired_{mode}", errors.unacquired),
            ):
                totals.setdefault(name, []).append(value)
    scores = {name: torch.cat(values).mean().item() for name, values in totals.items()}
    # final_dc: noiseless is hard exactly where the data are noiseless
    noiseless = "hard" if test.sigma == 0 else "none"
    scores["psnr_noiseless"] = scores[f"psnr_{noiseless}"]
    return scores


def trained_model(run_dir: Path, store: Path, method: str, seed: int) -> torch.nn.Module:
    """A finished run's network, wrapped as its method evaluates it (its own recorded spec)."""
    spec = json.loads((run_dir / "run.json").read_text())["config"]
    sigma = read_measurements(store, "test").sigma
    model, _ = load_trained_model(run_dir, method, seed, spec, CPU, store_identity(store), sigma)
    return model


def collect(results: Path, stores: Path) -> pd.DataFrame:
    """One row per finished (scenario, method, seed) run of ``results``."""
    rows = []
    for run_dir in sorted(results.glob("runs/*/*/seed*")):
        scenario, method = run_dir.parent.parent.name, run_dir.parent.name
        seed = int(run_dir.name.removeprefix("seed"))
        store = stores / f"{scenario}.h5"
        if method not in METHODS or not store.exists() or not (run_dir / "metrics.csv").exists():
            continue
        trains = METHODS[method].trains
        model = trained_model(run_dir, store, method, seed) if trains else None
        rows.append({"scenario": scenario, "method": method, "seed": seed, **score(store, model)})
    return pd.DataFrame(rows)


def correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's ρ with the paper's PSNR per scenario, for each final-DC mode."""
    published = published_leaderboards().rename(columns={"psnr": "psnr_published"})
    rows = []
    for scenario, group in table.groupby("scenario"):
        merged = group.merge(published, on=["scenario", "method"], how="left")
        row = {"scenario": scenario}
        for mode in ("none", "hard", "noiseless"):
            frame = merged.rename(columns={f"psnr_{mode}": "psnr_mean"})
            row[f"rho_{mode}"] = rank_correlation(frame)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results/<dataset>")
    parser.add_argument("stores", type=Path, help="data/measurements/<dataset>")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = collect(args.results, args.stores)
    if table.empty:
        raise SystemExit(f"{args.results}: no finished run")
    table = table.groupby(["scenario", "method"], as_index=False).mean(numeric_only=True)
    table = table.drop(columns="seed").sort_values(["scenario", "psnr_none"])
    if args.out is not None:
        table.to_csv(args.out, index=False)
    rho = correlations(table)
    show = table.to_markdown if args.markdown else table.to_string
    print(show(index=False, floatfmt=".4g") if args.markdown else show(index=False))
    print()
    print(rho.to_markdown(index=False, floatfmt=".2f") if args.markdown else rho.to_string())
    gain = (table["psnr_hard"] - table["psnr_none"])[table["method"] != "zero-filled"]
    print(
        f"\nPSNR change from hard DC over {gain.size} methods × scenarios: mean "
        f"{gain.mean():+.2f} dB, largest {gain.max():+.2f}, smallest {gain.min():+.2f}"
    )


if __name__ == "__main__":
    main()
