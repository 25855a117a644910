"""``ssibench demo-data``: write the embedded demo data set as fastMRI-format volumes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``demo-data`` subcommand."""
    parser = subparsers.add_parser(
        "demo-data",
        help="build the embedded demo volumes (no download)",
        description=(
            "Write DIR/demo_000.h5, demo_001.h5, ... : fastMRI-format multicoil brain volumes "
            "simulated from the MNI ICBM152 T1 template shipped with nilearn (random deformation, "
            "rotation, contrast, smooth phase, birdcage coils, readout oversampling x2)."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench demo-data --out-dir data/raw/demo --n-volumes 40 --n-slices 5 "
            "--height 64 --width 64 --n-coils 4 --seed 0"
        ),
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="folder to write into")
    parser.add_argument("--n-volumes", type=int, default=40, help="number of pseudo-subjects")
    parser.add_argument("--n-slices", type=int, default=5, help="axial slices per volume")
    parser.add_argument("--height", type=int, default=64, help="image rows (k-space has 2x rows)")
    parser.add_argument("--width", type=int, default=64, help="image columns (phase encoding)")
    parser.add_argument("--n-coils", type=int, default=4, help="simulated receive coils")
    parser.add_argument("--seed", type=int, default=0, help="master seed (stream 'demo')")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.data.demo import write_demo_volumes  # imported here so --help stays fast

    write_demo_volumes(
        out_dir=args.out_dir,
        n_volumes=args.n_volumes,
        n_slices=args.n_slices,
        height=args.height,
        width=args.width,
        n_coils=args.n_coils,
        seed=args.seed,
    )
