"""The ``ssibench`` command line: one subcommand per workflow rule.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser binds a
handler with ``set_defaults(handler=...)`` that turns arguments into typed values and calls one
library function. User errors (:data:`ssibench.errors.USER_ERRORS`: bad config, bad input file,
diverged training, a locked run folder, a failed write) are printed as one line on stderr with exit
status 2;
anything else keeps its traceback (status 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ssibench.cli import (
    combined_table,
    dataset,
    demo_data,
    evaluate,
    extract,
    figures,
    simulate,
    tables,
    train,
)
from ssibench.errors import USER_ERRORS
from ssibench.plugins import load_plugins

__all__ = ["build_parser", "main"]

SUBCOMMANDS = (
    demo_data,
    dataset,
    extract,
    simulate,
    train,
    evaluate,
    tables,
    combined_table,
    figures,
)


def _add_plugin_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import this plugin module first (repeatable); it registers methods, models, "
            "metrics, physics or data sets with ssibench.register_*"
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ssibench",
        description="Self-supervised MRI reconstruction benchmark: one subcommand per step.",
        epilog="Run `ssibench <subcommand> --help` for the options of a step.",
    )
    _add_plugin_argument(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<subcommand>")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssibench`` console script; returns the exit status.

    Plugins (``--plugin MODULE`` before the subcommand) are imported before the parser is built,
    so the names they register are valid choices (``ssibench --plugin my_mod train --method
    my-method``).
    """
    pre = argparse.ArgumentParser(add_help=False)
    _add_plugin_argument(pre)
    known, _ = pre.parse_known_args(argv)
    try:
        load_plugins(known.plugin)
    except USER_ERRORS as error:
        print(f"ssibench: error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as error:
        print(f"ssibench {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
