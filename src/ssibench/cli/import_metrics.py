"""``ssibench import-metrics``: an external run's metrics.csv, checked, under its name and label.

An external run (config ``external_runs``) brings per-slice metrics computed outside the workflow,
or the evaluation of its checkpoint by ``ssibench evaluate --ckpt``. Before they join a leaderboard
they pass the checks every table applies (:func:`ssibench.report.inputs.read_metrics`: the columns
``ssibench evaluate`` writes, this scenario, this store's ``store_hash``, exactly its test slices
in both metric modes, finite values) and must hold one method's rows. The copy names the run in
``method`` and carries its label in ``external_label``, which marks it external in the tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssibench.cli.common import formatter
from ssibench.cli.tables import add_data_argument
from ssibench.errors import DataFileError
from ssibench.io import atomic_path

__all__ = ["add_parser", "import_metrics"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``import-metrics`` subcommand."""
    parser = subparsers.add_parser(
        "import-metrics",
        help="check an external run's metrics.csv against a store and import it",
        description=(
            "Check a metrics.csv made outside the workflow (or by `ssibench evaluate --ckpt`) "
            "against the scenario's measurement store, as every table does, and write it with "
            "the external run's name in `method` and its label in `external_label`."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench import-metrics --data data/measurements/demo-40x40/noisy.h5 "
            "--metrics their_metrics.csv --scenario noisy --name theirs --label 'EI (theirs)' "
            "--out results/demo-40x40/runs/noisy/external/theirs/metrics.csv"
        ),
    )
    add_data_argument(parser)
    parser.add_argument("--metrics", type=Path, required=True, help="the metrics.csv to import")
    parser.add_argument("--scenario", required=True, help="scenario name (all rows must match)")
    parser.add_argument("--name", required=True, help="the external run's name (its `method`)")
    parser.add_argument("--label", required=True, help="the name shown in tables and figures")
    parser.add_argument("--out", type=Path, required=True, help="the imported metrics.csv")
    parser.set_defaults(handler=_run)


def import_metrics(
    metrics: Path, data: Path, scenario: str, name: str, label: str, out: Path
) -> None:
    """Check ``metrics`` against the store ``data`` and write it to ``out`` as run ``name``.

    Raises:
        DataFileError: naming ``metrics`` and what is wrong: another store or scenario, missing,
            repeated or extra test slices, non-finite values, or rows of several methods.
    """
    from ssibench.report.inputs import read_metrics
    from ssibench.report.leaderboard import EXTERNAL_LABEL

    # A file made elsewhere cannot be rebuilt here: the fix is to recompute it on this store.
    hint = f"compute it again on the test split of {data} (or fix external_runs.{name})"
    (frame,) = read_metrics([metrics], scenario, data, hint)
    methods = sorted(set(frame["method"].astype(str)))
    if len(methods) != 1:  # one external run per file: its rows all get its name
        raise DataFileError(
            f"{metrics}: rows of methods {', '.join(methods)}; an external run's metrics.csv "
            f"holds one method's rows; {hint}"
        )
    frame = frame.assign(method=name, **{EXTERNAL_LABEL: label})
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)


def _run(args: argparse.Namespace) -> None:
    import_metrics(args.metrics, args.data, args.scenario, args.name, args.label, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
