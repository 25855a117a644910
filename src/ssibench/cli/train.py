"""``ssibench train``: train one (scenario, method, seed) run, resuming from its checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import add_device_argument, formatter, parse_spec, resolve_device
from ssibench.methods import METHODS

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a reconstruction network with one method's losses",
        description=(
            "Train MoDL on a measurement store with a method's losses. Writes checkpoint.pt every "
            "epoch (a restarted job resumes from it), train_log.csv and finally model.pt."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench train --data data/measurements/demo-40x40/single-coil.h5 "
            "--out-dir results/demo-40x40/runs/single-coil/ei/seed0 --method ei --seed 0 "
            '--spec \'{"train": {"epochs": 10}}\''
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="measurement store (.h5)")
    parser.add_argument("--out-dir", type=Path, required=True, help="run directory")
    parser.add_argument(
        "--method",
        required=True,
        choices=[name for name, spec in METHODS.items() if spec.trains],
        help="method to train",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--spec", default="{}", help="JSON: model, train, method_options and scenario config slices"
    )
    add_device_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.training import train  # imported here so `ssibench --help` stays fast

    train(
        data_path=args.data,
        out_dir=args.out_dir,
        method=args.method,
        seed=args.seed,
        spec=parse_spec(args.spec),
        device=resolve_device(args.device),
    )
