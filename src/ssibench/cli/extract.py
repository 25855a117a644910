"""``ssibench extract``: raw volumes or images → normalised slices store with a per-volume split."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter
from ssibench.config.sources import EXTRACT_FORMATS

__all__ = ["ON_BAD_FILE_CHOICES", "SPLIT_RULE_CHOICES", "add_parser"]

#: Choices of --on-bad-file; equal to ``ssibench.data.slices.ON_BAD_FILE`` (a test checks it),
#: spelled out here so that building the parser does not import the data layer.
ON_BAD_FILE_CHOICES = ("stop", "skip")
#: Choices of --split-rule; equal to ``ssibench.data.splits.SPLIT_RULES`` (a test checks it).
SPLIT_RULE_CHOICES = ("seeded", "ssibench")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``extract`` subcommand."""
    parser = subparsers.add_parser(
        "extract",
        help="extract the middle slice of each raw volume, or your images, into a slices store",
        description=(
            "--source fastmri (default): for every *.h5 fastMRI-format volume in --raw-dir "
            "(sorted by name), the middle slice's magnitude target (reconstruction_rss / "
            "reconstruction_esc, or the RSS of kspace). --source images: every slice of every "
            "image file in --raw-dir (.png, .npy, .nii, .nii.gz, .pt; one file = one volume; "
            "constant slices left out). --source simple: --raw-dir is the .pt file of a "
            "DeepInverse simple data set (N, H, W), N volumes of one slice. Each slice min-max "
            "normalised to [0, 1], centre-cropped or zero-padded to --size; then a seeded "
            "train/val/test split of the volumes (train and test must not be empty; "
            "--split-rule ssibench: SSIBench's own). Every file is checked before anything is "
            "written: bad files stop the run with one error listing them all, or are left out with "
            "--on-bad-file skip. Writes one HDF5 slices store."
        ),
        formatter_class=formatter,
        epilog=(
            "examples: ssibench extract --raw-dir data/raw/demo --out data/slices/demo.h5 "
            "--size 64 64 --split 0.8 0.0 0.2 --seed 0; ssibench extract --source images "
            "--raw-dir my_images --out data/slices/mine.h5 --size 64 64; ssibench extract "
            "--source simple --raw-dir fastmri_brain_singlecoil.pt --out data/slices/brain.h5 "
            "--size 320 320 --split 0.8 0.0 0.2 --split-rule ssibench"
        ),
    )
    parser.add_argument(
        "--source",
        choices=EXTRACT_FORMATS,
        default="fastmri",
        help=(
            "what --raw-dir holds: fastMRI-format *.h5 volumes, image files, or (simple) is a "
            "DeepInverse simple data set's .pt file"
        ),
    )
    parser.add_argument(
        "--raw-dir",
        type=Path,
        required=True,
        help="folder of *.h5 volumes or of image files; the .pt file with --source simple",
    )
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
        "--split-rule",
        choices=SPLIT_RULE_CHOICES,
        default="seeded",
        help=(
            "seeded: a permutation from the 'split' stream of --seed; ssibench: SSIBench's "
            "random_split with torch.Generator().manual_seed(0), whatever --seed (the same "
            "indices as SSIBench for the same number of volumes) (data.split_rule)"
        ),
    )
    parser.add_argument(
        "--on-bad-file",
        choices=ON_BAD_FILE_CHOICES,
        default="stop",
        help=(
            "what to do with unreadable or malformed files: 'stop' fails with one error "
            "listing every bad file; 'skip' leaves them out, warns about each on stderr and "
            "records them in the store's skipped_files attribute (config: data.on_bad_file)"
        ),
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    # imported here so --help stays fast
    from ssibench.data.images import extract_images
    from ssibench.data.slices import extract_slices
    from ssibench.interop.simple_dataset import extract_simple_dataset

    size, split = (args.size[0], args.size[1]), tuple(args.split)
    if args.source == "simple":  # one file, N slices: every slice is kept, so no bad files
        extract_simple_dataset(args.raw_dir, args.out, size, split, args.seed, args.split_rule)
        return
    extract = extract_images if args.source == "images" else extract_slices
    extract(
        raw_dir=args.raw_dir,
        out=args.out,
        size=size,
        split_fractions=split,
        seed=args.seed,
        on_bad_file=args.on_bad_file,
        split_rule=args.split_rule,
    )
