"""CPU time of a training step, this checkout against a baseline checkout (ratio ≤ 1.02).

    git worktree add /tmp/base <commit>
    python benchmarks/bench_step.py --baseline /tmp/base

Cases: ``mc``, ``ssdu``, ``ei``, ``mo-ei``, ``vortex`` on the single-coil scenario and ``mc`` on the
multicoil one, on demo stores at 40 × 40 (the default demo size) with the demo's network (MoDL, 3
iterations, 3-scale 16-channel U-Net; ``--model``) and batch 8. Each case builds its run with
:func:`ssibench.training.run.build_trainable` and times ``run.step`` on consecutive batches of the
training split, one thread, after a warm-up. Each checkout runs in its own processes (its ``src``
first on ``PYTHONPATH``), on the same stores, alternating over ``--rounds`` rounds, never at once;
the table gives each case's median over rounds of the median step time, and the ratio
(this / baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CASES = (
    ("mc", "single-coil"),
    ("ssdu", "single-coil"),
    ("ei", "single-coil"),
    ("mo-ei", "single-coil"),
    ("vortex", "single-coil"),
    ("mc", "multicoil"),
)
SCENARIOS = {
    "single-coil": {"physics": "single-coil", "sigma": 0.0, "shared_mask": False},
    "multicoil": {"physics": "multicoil", "sigma": 0.0, "shared_mask": False, "n_coils": 4},
}
MASK = {"mask": "gaussian", "acceleration": 6}


def build_stores(root: Path, size: int) -> dict[str, str]:
    """Demo stores of both scenarios (24 volumes, 1 slice each) in ``root``."""
    from ssibench.data.demo import write_demo_volumes
    from ssibench.data.slices import extract_slices
    from ssibench.simulate import simulate_scenario

    write_demo_volumes(root / "raw", 24, 1, size, size, 4, seed=0)
    extract_slices(root / "raw", root / "slices.h5", (size, size), (0.8, 0.1, 0.1), seed=0)
    return {
        name: str(
            simulate_scenario(root / "slices.h5", root / f"{name}.h5", name, {**spec, **MASK}, 0)
        )
        for name, spec in SCENARIOS.items()
    }


def time_steps(stores: dict[str, str], model: dict, batch: int, steps: int) -> dict[str, float]:
    """Median seconds of one training step per case, in this interpreter's ssibench."""
    from ssibench.config.records import parse_train_config
    from ssibench.data.measurements import read_measurements
    from ssibench.training import resolved_config
    from ssibench.training.run import build_trainable

    torch.set_num_threads(1)
    medians = {}
    for method, scenario in CASES:
        spec = {
            "model": model,
            "train": {"batch_size": batch},
            "scenario": {**SCENARIOS[scenario], **MASK},
        }
        resolved = resolved_config(spec, method)
        config = parse_train_config(resolved["train"])
        data = read_measurements(stores[scenario], "train")
        run = build_trainable(method, 0, resolved, data, config, torch.device("cpu"))
        n_batches = len(data) // batch
        times = []
        for step in range(3 + steps):  # 3 warm-up steps
            rows = slice((step % n_batches) * batch, (step % n_batches + 1) * batch)
            x, y, physics = data.x[rows], data.y[rows], data.physics(rows)
            started = time.perf_counter()
            run.step(x, y, physics, 0)
            if step >= 3:
                times.append(time.perf_counter() - started)
        medians[f"{method} {scenario}"] = statistics.median(times)
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with (its src/)")
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each side")
    parser.add_argument("--model", default='{"num_iter": 3, "scales": 3, "width": 16}')
    parser.add_argument("--stores", help=argparse.SUPPRESS)  # JSON, for the baseline subprocess
    args = parser.parse_args()
    model = json.loads(args.model)
    if args.stores:  # the baseline's side: time and print JSON
        print(json.dumps(time_steps(json.loads(args.stores), model, args.batch, args.steps)))
        return 0
    with tempfile.TemporaryDirectory(prefix="ssibench-bench-step-") as scratch:
        stores = build_stores(Path(scratch), args.size)
        sides = {"this": Path(__file__).resolve().parents[1]}
        if args.baseline is not None:
            sides["baseline"] = args.baseline.resolve()
        # Rounds alternate the two checkouts in fresh processes (this, baseline, this, ...): the
        # first process of a series runs faster (CPU boost, warm caches), by as much as 10 %.
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, checkout in sides.items():
                env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
                command = [sys.executable, __file__, "--stores", json.dumps(stores)]
                command += ["--model", args.model, "--batch", str(args.batch)]
                command += ["--steps", str(args.steps)]
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    mine = {case: statistics.median(r[case] for r in runs["this"]) for case in runs["this"][0]}
    base = None
    if "baseline" in runs:
        base = {case: statistics.median(r[case] for r in runs["baseline"]) for case in mine}
    print(f"{'case':<22} {'this (ms)':>10} {'baseline (ms)':>14} {'ratio':>7}")
    for case, seconds in mine.items():
        if base is None:
            print(f"{case:<22} {1e3 * seconds:>10.2f}")
            continue
        ratio = seconds / base[case]
        print(f"{case:<22} {1e3 * seconds:>10.2f} {1e3 * base[case]:>14.2f} {ratio:>7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
