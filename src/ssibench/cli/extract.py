"""``ssibench extract``: middle slice of every raw volume → normalised slices store with a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter

__all__ = ["ON_BAD_FILE_CHOICES", "add_parser"]

#: Choices of --on-bad-file; equal to ``ssibench.data.slices.ON_BAD_FILE`` (a test checks it),
#: spelled out here so that building the parser does not import the data layer.
ON_BAD_FILE_CHOICES = ("stop", "skip")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``extract`` subcommand."""
    parser = subparsers.add_parser(
        "extract",
        help="extract the middle slice of each raw volume into a slices store",
        description=(
            "For every *.h5 fastMRI-format volume in --raw-dir (sorted by name): the middle "
            "slice's magnitude target (reconstruction_rss / reconstruction_esc, or the RSS of "
            "kspace), min-max normalised to [0, 1], centre-cropped or zero-padded to --size; "
            "then a seeded train/val/test split (train and test must not be empty). Every file "
            "is checked before anything is written: malformed files stop the run with one error "
            "listing them all, or are left out with --on-bad-file skip. Writes one HDF5 slices "
            "store."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench extract --raw-dir data/raw/demo --out data/slices/demo.h5 "
            "--size 64 64 --split 0.8 0.0 0.2 --seed 0"
        ),
    )
    parser.add_argument("--raw-dir", type=Path, required=True, help="folder of *.h5 volumes")
    parser.add_argument("--out", type=Path, required=True, help="slices store to write (.h5)")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=(320, 320),
        help="image size after centre crop / zero pad",
    )
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        default=(0.8, 0.0, 0.2),
        help="split fractions, summing to 1 (SSIBench: 0.8 0.0 0.2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (stream 'split')")
    parser.add_argument(
        "--on-bad-file",
        choices=ON_BAD_FILE_CHOICES,
        default="stop",
        help=(
            "what to do with unreadable or malformed *.h5 files: 'stop' fails with one error "
            "listing every bad file; 'skip' leaves them out, warns about each on stderr and "
            "records them in the store's skipped_files attribute (config: data.on_bad_file)"
        ),
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.data.slices import extract_slices  # imported here so --help stays fast

    extract_slices(
        raw_dir=args.raw_dir,
        out=args.out,
        size=(args.size[0], args.size[1]),
        split_fractions=tuple(args.split),
        seed=args.seed,
        on_bad_file=args.on_bad_file,
    )
