"""``ssibench export``: a run's network as a checkpoint of another library (DeepInverse).

The file is what DeepInverse's ``Trainer`` saves, ``{"state_dict": …, "epoch": …}``, with the
layer names of ``deepinv.models.MoDL`` (:mod:`ssibench.interop.checkpoints`), so SSIBench's own
code evaluates or fine-tunes a network trained here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter
from ssibench.progress import progress

__all__ = ["EXPORT_FORMATS", "add_parser"]

#: Libraries a run can be exported to.
EXPORT_FORMATS = ("deepinv",)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="write a run's network as a DeepInverse MoDL checkpoint",
        description=(
            "Write the network of a run (its model.pt) as a DeepInverse Trainer checkpoint, "
            "{'state_dict': ..., 'epoch': ...}, that deepinv.models.MoDL with a deepinv UNet "
            "denoiser loads with load_state_dict(strict=True) and computes identically. Only "
            "MoDL runs with step_order dc-first (the default, what DeepInverse computes) map."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench export results/demo-40x40/runs/noisy/ei/seed0 --to deepinv "
            "ei_seed0.pth.tar"
        ),
    )
    parser.add_argument("run", type=Path, help="a run folder, or its model.pt")
    parser.add_argument("out", type=Path, help="the checkpoint to write, e.g. model.pth.tar")
    parser.add_argument(
        "--to", required=True, choices=EXPORT_FORMATS, help="the library whose format to write"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.interop.export import export_deepinv

    model = export_deepinv(args.run, args.out)
    progress(
        f"wrote {args.out}; load it with {model.deepinv_call}.load_state_dict(ckpt['state_dict'])"
    )
