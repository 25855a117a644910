"""``ssibench evaluate``: score one run on the test split (with the zero-filled baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import add_device_argument, formatter, parse_spec, resolve_device
from ssibench.methods import METHODS

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="per-slice PSNR/SSIM/NMSE of a trained run and of zero-filled",
        description=(
            "Reconstruct the test split with a run's model.pt (or Aᴴy for zero-filled), write "
            "per-slice metrics in both metric modes and sample reconstructions."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench evaluate --data data/measurements/demo-40x40/noisy.h5 --method ei "
            "--run-dir results/demo-40x40/runs/noisy/ei/seed0 "
            "--out-metrics results/demo-40x40/runs/noisy/ei/seed0/metrics.csv "
            "--out-samples results/demo-40x40/runs/noisy/ei/seed0/samples.npz"
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="measurement store (.h5)")
    parser.add_argument("--method", required=True, choices=list(METHODS), help="method evaluated")
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory with model.pt")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the run")
    parser.add_argument(
        "--spec", default="{}", help="JSON: model, train, method_options, scenario, evaluate slices"
    )
    parser.add_argument("--out-metrics", type=Path, required=True, help="per-slice metrics CSV")
    parser.add_argument("--out-samples", type=Path, required=True, help="sample images (.npz)")
    add_device_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.evaluation.evaluate import evaluate

    evaluate(
        data_path=args.data,
        method=args.method,
        run_dir=args.run_dir,
        seed=args.seed,
        spec=parse_spec(args.spec),
        device=resolve_device(args.device, when_busy="share"),
        out_metrics=args.out_metrics,
        out_samples=args.out_samples,
    )
