"""``ssibench dataset``: write a plugin's data set as a raw folder of ``.npy`` volumes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter, parse_spec

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``dataset`` subcommand."""
    parser = subparsers.add_parser(
        "dataset",
        help="write a plugin's data set as .npy volumes (then: extract --source images)",
        description=(
            "Call the build function of a data set registered with ssibench.register_dataset and "
            "write each volume as DIR/<volume>.npy, a folder `ssibench extract --source images` "
            "reads."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench --plugin my_plugin dataset --source my-data "
            "--options '{\"n\": 10}' --out-dir data/raw/my-data-64x64"
        ),
    )
    parser.add_argument("--source", required=True, help="registered data set name")
    parser.add_argument("--options", default="{}", help="JSON: keyword arguments of its build")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder to write into")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.data.sources import write_dataset

    write_dataset(args.source, parse_spec(args.options, "--options"), args.out_dir)
