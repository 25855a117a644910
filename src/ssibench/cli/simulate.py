"""``ssibench simulate``: simulate one scenario's measurement store from a slices store."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import formatter, parse_spec

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a scenario's masks and k-space measurements",
        description=(
            "Draw acquisition masks (stream 'masks') and noise (stream 'noise') on the CPU and "
            "write x, y and masks for the train, val and test splits of a slices store. The same "
            "seed gives a bit-identical store."
        ),
        formatter_class=formatter,
        epilog=(
            "example: ssibench simulate --slices data/slices/demo.h5 "
            "--out data/measurements/demo-40x40/noisy.h5 --scenario noisy --seed 0 --spec "
            '\'{"physics": "single-coil", "sigma": 0.1, "shared_mask": false, '
            '"mask": "gaussian", "acceleration": 6, "center_fraction": null}\''
        ),
    )
    parser.add_argument(
        "--slices",
        type=Path,
        default=None,
        help="slices store (.h5); not used by measured-multicoil (it reads spec.kspace_dir)",
    )
    parser.add_argument("--out", type=Path, required=True, help="measurement store to write (.h5)")
    parser.add_argument("--scenario", required=True, help="scenario name, recorded in the file")
    parser.add_argument(
        "--spec",
        required=True,
        help=(
            "JSON scenario spec: physics (single-coil|multicoil|sequential|raw-multicoil), sigma, "
            "shared_mask, n_coils, mask (gaussian|random|equispaced), acceleration, "
            "center_fraction or center_lines; sequential adds n_frames and frame_partition "
            "(random|interleaved); raw-multicoil adds crop, filter and slices_per_volume; "
            "measured-multicoil takes kspace_dir, crop, filter, slices_per_volume and no mask"
        ),
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="master seed (streams 'masks', 'noise')"
    )
    parser.add_argument(
        "--raw-dir",
        type=Path,
        default=None,
        help="raw volumes the slices store was extracted from (raw-multicoil reads their k-space)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    # imported here so --help stays fast
    from ssibench.config.kinds import MEASURED_KINDS
    from ssibench.errors import ConfigError
    from ssibench.simulate import simulate_scenario

    spec = parse_spec(args.spec)
    if args.slices is None and spec.get("physics") not in MEASURED_KINDS:
        raise ConfigError(
            f"ssibench simulate: --slices is required for physics {spec.get('physics')!r} (only "
            f"{', '.join(MEASURED_KINDS)} reads its own k-space folder)"
        )
    simulate_scenario(
        slices_path=args.slices,
        out=args.out,
        scenario=args.scenario,
        spec=spec,
        seed=args.seed,
        raw_dir=args.raw_dir,
    )
