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
    demo_data,
    evaluate,
    extract,
    figures,
    simulate,
    tables,
    train,
)
from ssibench.errors import USER_ERRORS

__all__ = ["build_parser", "main"]

SUBCOMMANDS = (demo_data, extract, simulate, train, evaluate, tables, combined_table, figures)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ssibench",
        description="Self-supervised MRI reconstruction benchmark: one subcommand per step.",
        epilog="Run `ssibench <subcommand> --help` for the options of a step.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<subcommand>")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssibench`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as error:
        print(f"ssibench {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
