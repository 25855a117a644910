"""The ``ssibench`` command line: one subcommand per workflow rule.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser binds a
handler with ``set_defaults(handler=...)`` that turns arguments into typed values and calls one
library function. User errors (:data:`ssibench.errors.USER_ERRORS`: bad config, bad input file,
diverged training, a locked run folder, a failed write) are printed as one line on stderr with exit
status 2;
anything else keeps its traceback (status 1). An unknown option after a subcommand is reported
with that subcommand's usage. Before the subcommand: ``--version``, ``--quiet`` (no progress
lines, :mod:`ssibench.progress`) and ``--plugin MODULE``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ssibench import __version__
from ssibench.cli import (
    combined_table,
    dataset,
    demo_data,
    evaluate,
    export,
    extract,
    figures,
    import_measurements,
    import_metrics,
    preflight,
    simulate,
    tables,
    train,
    undersample,
)
from ssibench.errors import USER_ERRORS
from ssibench.plugins import load_plugins
from ssibench.progress import set_quiet

__all__ = ["build_parser", "main"]

SUBCOMMANDS = (
    demo_data,
    undersample,
    dataset,
    extract,
    simulate,
    train,
    evaluate,
    export,
    preflight,
    import_metrics,
    import_measurements,
    tables,
    combined_table,
    figures,
)


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser that reports unknown arguments itself, with its own usage.

    argparse hands a subparser's leftovers back to the root parser, whose error then shows the
    top-level usage (``ssibench [-h] ... <subcommand>``), which says nothing of the subcommand's
    options; refusing them here shows ``usage: ssibench train ...`` instead.
    """

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _add_early_arguments(parser: argparse.ArgumentParser) -> None:
    """The options read before the parser is built: ``--quiet`` and ``--plugin``."""
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress lines (per epoch, simulated chunk, evaluated slices); errors still show",
    )
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
    parser.add_argument("--version", action="version", version=f"ssibench {__version__}")
    _add_early_arguments(parser)
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="<subcommand>", parser_class=_SubcommandParser
    )
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssibench`` console script; returns the exit status.

    Plugins (``--plugin MODULE`` before the subcommand) are imported before the parser is built,
    so the names they register are valid choices (``ssibench --plugin my_mod train --method
    my-method``). ``--quiet`` is read and applied then too, before any step starts.
    """
    pre = argparse.ArgumentParser(add_help=False)
    _add_early_arguments(pre)
    known, _ = pre.parse_known_args(argv)
    set_quiet(known.quiet)  # set on every call: a second main() in one process starts afresh
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
