"""``ssibench preflight``: run a method on the stand-in device before spending GPU-hours on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssibench.cli.common import formatter, parse_spec

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``preflight`` subcommand."""
    parser = subparsers.add_parser(
        "preflight",
        help="check that a method's training step and evaluation are GPU-ready, without a GPU",
        description=(
            "Run two training steps, a validation pass and an evaluation batch of each method on "
            "PyTorch's meta device (shapes only, no arithmetic: seconds on any machine). A host "
            "sync (.item(), bool(t), .tolist(), nonzero, a blocking copy) or a CPU tensor meeting "
            "device data inside them is reported with its file and line, and the exit status is "
            "1. Load a plugin with `ssibench --plugin MODULE preflight ...`."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench --plugin my_loss preflight --data "
            "data/measurements/demo-40x40/single-coil.h5 --method my-method"
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="measurement store (.h5)")
    parser.add_argument(
        "--method",
        action="append",
        help="method to check (repeatable; default: every method that applies to the store)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--spec",
        default="{}",
        help="JSON: model, train, method_options (scenario: the store's own) config slices",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.data.identity import store_scenario
    from ssibench.methods import METHODS, get_method, skip_reason
    from ssibench.standin.audit import DeviceAuditError
    from ssibench.standin.check import check_method

    spec = parse_spec(args.spec)
    scenario = spec.get("scenario") or store_scenario(args.data)
    methods = args.method or [m for m in METHODS if skip_reason(m, scenario) is None]
    failed = 0
    for method in methods:
        get_method(method)  # an unknown name is a ConfigError naming the known ones
        try:
            report = check_method(args.data, method, spec, args.seed)
        except DeviceAuditError as error:
            failed += 1
            print(f"ssibench preflight: {method}: NOT GPU-ready: {error}", file=sys.stderr)
            continue
        ran = f"{report.steps} training steps, validation and " if report.steps else ""
        print(
            f"ssibench preflight: {method}: {ran}an evaluation batch on the stand-in device: "
            f"no host sync, no CPU tensor ({report.planned_syncs} planned host reads after them)"
        )
    if failed:
        raise SystemExit(1)
