"""``ssibench undersample``: fully sampled volumes → undersampled, as acquired (no reference)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``undersample`` subcommand."""
    parser = subparsers.add_parser(
        "undersample",
        help="undersample fastMRI-format volumes as an acquisition would (no ground truth)",
        description=(
            "Write each .h5 volume of --raw-dir to --out-dir with its unsampled k-space columns "
            "zeroed, its 1-D 'mask' and no reconstruction: fastMRI's test-set layout, a stand-in "
            "for prospectively undersampled data (a measured-multicoil scenario reads it). One "
            "mask per volume, drawn from stream 'masks' of --seed."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench undersample --raw-dir data/raw/demo-40x40 --out-dir "
            "data/raw/demo-measured --mask random --acceleration 3 --center-lines 8 --seed 0"
        ),
    )
    parser.add_argument("--raw-dir", type=Path, required=True, help="fully sampled volumes")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--mask", default="random", help="column density: gaussian, random or equispaced"
    )
    parser.add_argument("--acceleration", type=float, default=4.0, help="acceleration factor R")
    parser.add_argument("--center-lines", type=int, default=8, help="fully sampled ACS columns")
    parser.add_argument("--seed", type=int, default=0, help="master seed (stream 'masks')")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.data.kspace import write_undersampled_volumes  # --help stays fast
    from ssibench.progress import progress

    written = write_undersampled_volumes(
        args.raw_dir, args.out_dir, args.mask, args.acceleration, args.center_lines, args.seed
    )
    progress(f"undersample: wrote {len(written)} volumes to {args.out_dir}")
