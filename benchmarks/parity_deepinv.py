"""Parity of ssibench's training losses with DeepInverse 0.5.0: loss values and gradients.

For every ssibench method with a DeepInverse counterpart, the same physics (single-coil,
multicoil or sequential MRI with the same masks and coil maps), the same model (ssibench's MoDL and
``deepinv.models.MoDL`` around a copy of the same U-Net, step sizes copied), the same measurements
and the same random draws (ssibench's splits, masks, transform parameters and noise recorded and
replayed through DeepInverse's own classes; see ``parity/replay.py``) give a loss on each side; the
table reports |Δ loss|, the relative difference, the largest relative gradient difference
‖g_ss − g_dv‖_∞ / ‖g_dv‖_∞ over the U-Net weights and step sizes (the discriminator for the D
losses) and a verdict: ``equal (float32)`` (relative loss ≤ 1e-5, gradients ≤ 1e-4, unless a
looser tolerance is printed), ``equal in expectation`` (independent draws of each library's own
sampler: 95 % CI of the difference of means, or per-coordinate z-tests with a Bonferroni
threshold), or ``differs: <why>`` with the documented reason (docs/parity.md explains each; a
constant offset or factor is removed and the rest re-compared). float32, CPU, one thread by default.

Environment (never the project's own environment; ``pip install -e '.[parity]'``
pins the same release)::

    python3 -m venv ../venv-parity && . ../venv-parity/bin/activate
    pip install torch==2.13.0            # the CPU build
    pip install -e .                     # ssibench, from the checkout
    pip install torchvision==0.28.0 deepinv==0.5.0 libcpab==0.1.3
    # torchvision 0.28.0 pins torch==2.13.0, which the local 2.13.0+cpu satisfies: pip keeps the
    # CPU torch. Its compiled ops do not load beside it; parity/env.py makes the one registration
    # that would fail at import harmless. libcpab (pure Python) backs CPABDiffeomorphism.

Run: ``python benchmarks/parity_deepinv.py [--methods ssdu ei] [--draws 1000] [--markdown]``.
Exits 1 if a comparison differs without a documented reason.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from parity.env import import_deepinv


def _cases() -> list:
    from parity import cases_equivariant, cases_noise, cases_other, cases_splitting

    return [
        *cases_other.CASES[:3],  # operators first
        *cases_splitting.CASES,
        *cases_equivariant.CASES,
        *cases_noise.CASES,
        *cases_other.CASES[3:],
    ]


def main() -> int:
    dinv = import_deepinv()
    from parity.common import BATCH, SIZE, Setup
    from parity.report import UNEXPLAINED, Row, format_table, status, summary

    import ssibench

    cases = _cases()
    methods = sorted({case.method for case in cases})
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: python benchmarks/parity_deepinv.py --methods ssdu weighted-ssdu",
    )
    parser.add_argument("--methods", nargs="+", choices=methods, help="only these (default: all)")
    parser.add_argument("--draws", type=int, default=1000, help="draws per expectation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    setup = Setup(dinv, seed=args.seed, draws=args.draws)
    selected = [c for c in cases if args.methods is None or c.method in args.methods]
    print(
        f"ssibench {ssibench.__version__} vs deepinv {dinv.__version__}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} CPU thread(s); B = {BATCH}, "
        f"{SIZE}×{SIZE}, float32, seed {args.seed}, {args.draws} draws per expectation",
        file=sys.stderr,
    )
    rows = []
    start = time.perf_counter()
    for case in selected:
        begin = time.perf_counter()
        outcome = case.run(setup)
        rows.append(Row(case.label, case.counterpart, outcome, time.perf_counter() - begin))
        print(f"  {case.label}: {rows[-1].seconds:.1f} s", file=sys.stderr)
    print(format_table(rows, args.markdown))
    print()
    print(summary(rows) + f" ({time.perf_counter() - start:.0f} s)")
    return 1 if any(status(row.outcome) == UNEXPLAINED for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
