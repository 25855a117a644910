"""``ssibench import-measurements``: a DeepInverse ``generate_dataset`` file as a measurement store.

So that ssibench and DeepInverse score the very same measurements: the store holds the file's
x, y and masks as they are, checked (:mod:`ssibench.interop.measurements`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssibench.cli.common import formatter, parse_spec

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``import-measurements`` subcommand."""
    parser = subparsers.add_parser(
        "import-measurements",
        help="turn a DeepInverse generate_dataset file into a measurement store",
        description=(
            "Copy x, y and the per-sample masks of a file written by "
            "deepinv.datasets.generate_dataset (MRI or MultiCoilMRI) into a measurement store, "
            "split by split (train, val if present, test), checking every row: y must be 0 "
            "where the mask is 0 and differ from A x at the sampled points by the declared noise "
            "level only. The fixed mask, the coil maps and the noise level of the operator are "
            "in the physics<g>.pt saved beside the file (--physics-state)."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench import-measurements dinv/dinv_dataset0.h5 --physics-state "
            'dinv/physics0.pt --physics \'{"mask": "gaussian", "acceleration": 4, '
            '"center_fraction": 0.08}\' --out data/measurements/mine/deepinv.h5'
        ),
    )
    parser.add_argument("source", type=Path, help="the dinv_dataset<g>.h5 to import")
    parser.add_argument(
        "--physics",
        required=True,
        help=(
            "JSON scenario spec, the keys of `ssibench simulate --spec`: mask "
            "(gaussian|random|equispaced), acceleration, center_fraction or center_lines, and "
            "sigma unless the physics state holds it; physics, shared_mask and n_coils come from "
            "the files (given, they must agree)"
        ),
    )
    parser.add_argument(
        "--physics-state",
        type=Path,
        default=None,
        help=(
            "the physics<g>.pt generate_dataset saved beside the file (loaded weights-only): "
            "required for a fixed mask and for MultiCoilMRI's coil maps; its noise_model.sigma is "
            "the store's sigma"
        ),
    )
    parser.add_argument(
        "--scenario",
        default=None,
        help="scenario name recorded in the store (None: the stem of --out)",
    )
    parser.add_argument("--out", type=Path, required=True, help="measurement store to write (.h5)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.interop.measurements import import_measurements

    summary = import_measurements(
        args.source,
        args.out,
        physics=parse_spec(args.physics, "--physics"),
        scenario=args.scenario,
        physics_state=args.physics_state,
    )
    sizes = ", ".join(f"{split} {n}" for split, n in summary.sizes.items())
    found = ", ".join(
        f"{split} σ̂ {summary.noise_estimates[split]:.4g}, R {summary.accelerations[split]:.3g}"
        for split in summary.noise_estimates
    )
    print(
        f"wrote {summary.out}: {summary.physics_kind}, {sizes} slices, sigma {summary.sigma:g} "
        f"(measured: {found})",
        file=sys.stderr,
    )
