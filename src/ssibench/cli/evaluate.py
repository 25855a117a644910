"""``ssibench evaluate``: score one run on the test split (with the zero-filled baseline).

A run is given by its folder (``--run-dir``, what the workflow passes, with ``--method``,
``--seed`` and ``--spec``) or by a checkpoint file (``--ckpt``): a ``model.pt`` of ``ssibench
train`` (its method, seed and spec are read from it), a plain ``state_dict`` with
``--model-spec`` and ``--method``, or a DeepInverse MoDL checkpoint (``Trainer``'s
``ckp_*.pth.tar``) with ``--method``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ssibench.cli.common import add_device_argument, formatter, parse_spec, resolve_device
from ssibench.errors import ConfigError
from ssibench.methods import METHODS

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="per-slice PSNR/SSIM/NMSE of a trained run and of zero-filled",
        description=(
            "Reconstruct the test split with a run's model.pt (or Aᴴy for zero-filled), write "
            "per-slice metrics in both metric modes and sample reconstructions. The run is its "
            "folder (--run-dir) or a checkpoint file (--ckpt)."
        ),
        formatter_class=formatter,
        epilog=(
            "examples: ssibench evaluate --data data/measurements/demo-40x40/noisy.h5 --method ei "
            "--run-dir results/demo-40x40/runs/noisy/ei/seed0 "
            "--out-metrics results/demo-40x40/runs/noisy/ei/seed0/metrics.csv "
            "--out-samples results/demo-40x40/runs/noisy/ei/seed0/samples.npz; "
            "ssibench evaluate --data data/measurements/demo-40x40/noisy.h5 --ckpt model.pt "
            "--out-metrics eval/metrics.csv --out-samples eval/samples.npz"
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="measurement store (.h5)")
    run = parser.add_mutually_exclusive_group(required=True)
    run.add_argument("--run-dir", type=Path, help="run directory with model.pt (the workflow's)")
    run.add_argument(
        "--ckpt",
        type=Path,
        help=(
            "checkpoint file: a model.pt written by `ssibench train` (method, seed and spec are "
            "read from it), a plain state_dict (with --model-spec and --method) or a DeepInverse "
            "MoDL checkpoint such as SSIBench's *.pth.tar (with --method; its model spec is read "
            "from its weights)"
        ),
    )
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        help=(
            "method evaluated (required with --run-dir, for a plain state_dict and for a "
            "DeepInverse checkpoint)"
        ),
    )
    parser.add_argument(
        "--seed", type=int, help="training seed of the run (default: 0, or the checkpoint's)"
    )
    parser.add_argument(
        "--spec",
        default="{}",
        help=(
            "JSON: model, train, method_options, scenario, evaluate slices and the metrics list; "
            "with --ckpt laid over the checkpoint's own spec, e.g. "
            '\'{"evaluate": {"n_samples": 3}}\''
        ),
    )
    parser.add_argument(
        "--model-spec",
        help=(
            "JSON: the `model` config slice of a plain state_dict given with --ckpt, e.g. "
            '\'{"num_iter": 2, "scales": 2, "width": 8}\' (for a DeepInverse checkpoint it is '
            "optional and checked against the weights)"
        ),
    )
    parser.add_argument(
        "--transfer",
        action="store_true",
        help=(
            "with a model.pt: score it on a store other than the one it was trained on (another "
            "scenario's test split), with that store's scenario; its configuration is still checked"
        ),
    )
    parser.add_argument("--out-metrics", type=Path, required=True, help="per-slice metrics CSV")
    parser.add_argument("--out-samples", type=Path, required=True, help="sample images (.npz)")
    add_device_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    from ssibench.evaluation.checkpoint import read_checkpoint
    from ssibench.evaluation.evaluate import evaluate, evaluate_checkpoint

    spec = parse_spec(args.spec)
    if args.ckpt is None:
        if args.method is None:
            raise ConfigError("--method: required with --run-dir (the method of the run)")
        if args.model_spec is not None:
            raise ConfigError("--model-spec: only for a plain state_dict given with --ckpt")
        if args.transfer:
            raise ConfigError("--transfer: only with --ckpt (a model.pt trained elsewhere)")
        evaluate(
            data_path=args.data,
            method=args.method,
            run_dir=args.run_dir,
            seed=0 if args.seed is None else args.seed,
            spec=spec,
            # A method that trains nothing (zero-filled: one adjoint per slice) claims no GPU.
            device=resolve_device(
                "cpu" if args.device == "auto" and not _trains(args.method) else args.device,
                when_busy="cpu",
            ),
            out_metrics=args.out_metrics,
            out_samples=args.out_samples,
        )
        return
    model_spec = None if args.model_spec is None else parse_spec(args.model_spec, "--model-spec")
    checkpoint = read_checkpoint(
        args.ckpt, method=args.method, seed=args.seed, spec=spec, model_spec=model_spec
    )
    evaluate_checkpoint(
        data_path=args.data,
        checkpoint=checkpoint,
        device=resolve_device(args.device, when_busy="cpu"),
        out_metrics=args.out_metrics,
        out_samples=args.out_samples,
        transfer=args.transfer,
    )


def _trains(method: str) -> bool:
    """Whether ``method`` has a network to run (unknown names: yes; evaluation names them)."""
    spec = METHODS.get(method)
    return spec is None or spec.trains
