"""One GPU check: run once on a machine with a GPU, send back the report it writes.

    python benchmarks/gpu_check.py                  # ≤ 8 minutes on one H100
    python benchmarks/gpu_check.py --toy            # seconds, on the CPU (what CI runs)

Writes ``gpu_check.md`` and ``gpu_check.json`` (``--out``): everything below, each section timed,
a failed check recorded with its error instead of stopping the others.

1. **environment**: versions, device, precision flags (:func:`ssibench.precision.math_environment`).
2. **cuda tests**: the unit tests that need CUDA (``pytest -m cuda`` markers: ``requires_cuda``).
3. **every method, one epoch** on tiny stores of its scenario kind, under
   ``torch.cuda.set_sync_debug_mode("warn")``: host syncs counted per step (0 expected; the
   epoch's log line and divergence check come after the steps and are not counted).
4. **mixed precision**: bf16 and fp16 epochs of ``ei``, ``robust-ei``, ``ensure``, ``uair``:
   finite losses.
5. **resume**: 1 + 1 epochs against 2 (deterministic mode: equal weights expected), and a CPU
   checkpoint resumed on the device.
6. **evaluation across devices**: PSNR of ``noise2inverse`` and ``ddssl`` (random evaluation
   draws) scored on the CPU and on the device from the same ``model.pt``.
7. **throughput** at 320 × 320, batch 4 (the paper's network): images/s of ``run_epoch`` (what
   ``fit`` runs: shuffling, indexing, the divergence guard) against the bare step on one batch,
   TF32 on/off, ``channels_last``, ``cudnn.benchmark``, bf16; and the calibrated
   ``resources.throughput.gpu_gflops``: the rate the job sizing
   (:func:`ssibench.pipeline.resources.sized_runtime_min`) needs to predict the measured time.
8. **profile** of one step of ``ssdu``, ``mo-ei``, ``vortex`` and multicoil ``mc``: the ten
   operators with the most device time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ssibench.config.records import parse_model_config, parse_train_config
from ssibench.data.demo import write_demo_volumes
from ssibench.data.identity import store_scenario
from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.data.slices import extract_slices
from ssibench.evaluation.evaluate import evaluate
from ssibench.methods import METHODS, skip_reason
from ssibench.models.cost import FLOPS_TRAIN, network_macs
from ssibench.pipeline.resources import LOSS_PASSES
from ssibench.precision import configure_math, math_environment
from ssibench.simulate import simulate_scenario
from ssibench.training import MODEL, resolved_config, train
from ssibench.training.loop import divergence_guarded, run_epoch
from ssibench.training.run import build_trainable

KINDS = {
    "single-coil": {"physics": "single-coil", "sigma": 0.0, "shared_mask": False},
    "noisy": {"physics": "single-coil", "sigma": 0.1, "shared_mask": False},
    "multicoil": {"physics": "multicoil", "sigma": 0.0, "shared_mask": False, "n_coils": 4},
    "sequential": {"physics": "sequential", "sigma": 0.0, "shared_mask": False, "n_frames": 4},
}
MASK = {"mask": "gaussian", "acceleration": 4}
#: (method, scenario kind) of the throughput table: plain MC, a second network pass (EI) and the
#: multicoil conjugate gradient.
THROUGHPUT_CASES = (("mc", "single-coil"), ("ei", "single-coil"), ("mc", "multicoil"))
#: The paper's network (MoDL, 3 iterations, 4-scale 64-channel U-Net) and a toy one for CI.
PAPER_MODEL = {"num_iter": 3, "scales": 4, "width": 64}
TOY_MODEL = {"num_iter": 1, "scales": 2, "width": 4}


def _kind_of(method: str) -> str:
    """The first scenario kind ``method`` applies to."""
    for kind in ("single-coil", "noisy", "sequential"):
        if skip_reason(method, {**KINDS[kind], **MASK}) is None:
            return kind
    raise ValueError(method)


def build_stores(root: Path, size: int, kinds: list[str]) -> dict[str, Path]:
    """Tiny demo stores (8 volumes × 2 slices) of each scenario kind in ``root``."""
    write_demo_volumes(root / "raw", 8, 2, size, size, 4, seed=0)
    extract_slices(root / "raw", root / "slices.h5", (size, size), (0.5, 0.25, 0.25), seed=0)
    return {
        kind: simulate_scenario(
            root / "slices.h5", root / f"{kind}.h5", kind, {**KINDS[kind], **MASK}, 0
        )
        for kind in kinds
    }


def _spec(store: Path, model: dict, batch: int, epochs: int = 1, **train_keys: Any) -> dict:
    train_slice = {"epochs": epochs, "batch_size": batch, **train_keys}
    return {"model": model, "train": train_slice, "scenario": store_scenario(store)}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def sync_warnings(device: torch.device) -> Iterator[list[warnings.WarningMessage]]:
    """Record CUDA's warnings for synchronizing operations (none are raised on the CPU)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")


def every_method(stores: dict[str, Path], device: torch.device, model: dict) -> list[dict]:
    """One epoch of every built-in method; host syncs per step (CUDA's sync debug mode)."""
    rows = []
    for method, spec in METHODS.items():
        if not spec.trains:
            continue
        store = stores[_kind_of(method)]
        resolved = resolved_config(_spec(store, model, 2), method)
        config = parse_train_config(resolved["train"])
        data = read_measurements(store, "train").to(device)
        run = build_trainable(method, 0, resolved, data, config, device)
        started = time.perf_counter()
        with sync_warnings(device) as caught:
            sums, _ = run_epoch(run, data, config.batch_size, 0, divergence_guarded(run, config))
            _synchronize(device)
        steps = -(-len(data) // config.batch_size)
        syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
        rows.append(
            {
                "method": method,
                "kind": _kind_of(method),
                "steps": steps,
                "syncs_per_step": len(syncs) / steps if device.type == "cuda" else None,
                "first_sync": syncs[0][:160] if syncs else "",
                "finite": bool(torch.isfinite(sums).all()),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    return rows


def mixed_precision(
    stores: dict[str, Path], device: torch.device, model: dict, methods: tuple[str, ...]
) -> list[dict]:
    """bf16 and fp16 epochs of the methods most sensitive to rounding: finite losses."""
    rows = []
    for method in methods:
        for amp in ("bf16", "fp16"):
            store = stores[_kind_of(method)]
            resolved = resolved_config(_spec(store, model, 2, amp=amp), method)
            config = parse_train_config(resolved["train"])
            data = read_measurements(store, "train").to(device)
            run = build_trainable(method, 0, resolved, data, config, device)
            sums, diverged = run_epoch(run, data, 2, 0, divergence_guarded(run, config))
            rows.append(
                {
                    "method": method,
                    "amp": amp,
                    "losses": [round(v, 6) for v in (sums / len(data)).tolist()],
                    "finite": bool(torch.isfinite(sums).all() and not diverged.any()),
                }
            )
    return rows


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def resume(stores: dict[str, Path], device: torch.device, model: dict, root: Path) -> list[dict]:
    """1 + 1 epochs against 2 (deterministic), and a CPU checkpoint resumed on ``device``."""
    rows = []
    for method in ("mc", "ssdu", "ei"):
        store = stores[_kind_of(method)]
        straight, resumed = root / f"{method}-2", root / f"{method}-1+1"
        train(store, straight, method, 0, _spec(store, model, 2, 2, deterministic=True), device)
        train(store, resumed, method, 0, _spec(store, model, 2, 1, deterministic=True), device)
        (resumed / MODEL).unlink()
        train(store, resumed, method, 0, _spec(store, model, 2, 2, deterministic=True), device)
        difference = _max_difference(_weights(straight / MODEL), _weights(resumed / MODEL))
        rows.append({"check": f"{method}: 1+1 epochs vs 2 on {device}", "max_abs": difference})
    configure_math(parse_train_config({}))
    store = stores["single-coil"]
    across = root / "cpu-then-device"
    train(store, across, "mc", 0, _spec(store, model, 2, 1), torch.device("cpu"))
    (across / MODEL).unlink()
    train(store, across, "mc", 0, _spec(store, model, 2, 2), device)
    on_device = root / "device-2"
    train(store, on_device, "mc", 0, _spec(store, model, 2, 2), device)
    difference = _max_difference(_weights(across / MODEL), _weights(on_device / MODEL))
    rows.append(
        {"check": f"mc: 1 epoch on cpu + 1 on {device} vs 2 on {device}", "max_abs": difference}
    )
    return rows


def evaluation_across_devices(
    stores: dict[str, Path], device: torch.device, model: dict, root: Path
) -> list[dict]:
    """Mean PSNR of the same model.pt scored on the CPU and on ``device``."""
    rows = []
    for method in ("noise2inverse", "ddssl"):
        store = stores[_kind_of(method)]
        spec = _spec(store, model, 2)
        run = root / f"eval-{method}"
        train(store, run, method, 0, spec, torch.device("cpu"))
        psnr = {}
        for where in (torch.device("cpu"), device):
            out = root / f"eval-{method}-{where.type}"
            metrics = evaluate(
                store, method, run, 0, spec, where, out / "metrics.csv", out / "s.npz"
            )
            psnr[where.type] = metrics.loc[metrics["mode"] == "ssibench", "psnr"].to_numpy()
        difference = float(abs(psnr["cpu"] - psnr[device.type]).max())
        rows.append({"method": method, "max_abs_psnr_difference_db": difference})
    return rows


def _random_set(size: int, n: int, kind: str) -> MeasurementSet:
    """``n`` random images measured through 6× Gaussian masks (speed does not depend on content)."""
    from ssibench.masks import make_mask_generator
    from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, size, size, generator=generator)
    masks = make_mask_generator("gaussian", 6).sample(n, size, size, generator)
    coil_maps = birdcage_maps(4, size, size) if kind == "multicoil" else None
    physics = MultiCoilMRI(masks, coil_maps) if kind == "multicoil" else SingleCoilMRI(masks)
    return MeasurementSet(
        x, physics.A(x), masks, coil_maps, 0.0, kind, "random", torch.arange(n), None
    )


def _images_per_second(step: Callable[[], int], device: torch.device, seconds: float) -> float:
    step()  # warm-up (cuDNN autotuning, allocator)
    _synchronize(device)
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        images += step()
    _synchronize(device)
    return images / (time.perf_counter() - started)


def throughput(
    device: torch.device,
    size: int,
    batch: int,
    model: dict,
    seconds: float,
    cases: tuple[tuple[str, str], ...] = (),
) -> dict:
    """Images/s of an epoch (what fit runs) and of the bare step, across precision settings."""
    cases = cases or THROUGHPUT_CASES
    variants = {
        "float32": {"tf32": False},
        "tf32": {"tf32": True},
        "tf32 + cudnn.benchmark": {"tf32": True, "benchmark": True},
        "tf32 + channels_last": {"tf32": True, "channels_last": True},
        "bf16": {"tf32": True, "amp": "bf16"},
    }
    rows = []
    for method, kind in cases:
        data = _random_set(size, 4 * batch, kind).to(device)
        for label, variant in variants.items():
            spec = {"model": model, "scenario": {**KINDS[kind], **MASK}}
            spec["train"] = {"batch_size": batch, "amp": variant.get("amp", "none")}
            spec["train"]["tf32"] = variant["tf32"]
            resolved = resolved_config(spec, method)
            config = parse_train_config(resolved["train"])
            configure_math(config)
            torch.backends.cudnn.benchmark = variant.get("benchmark", False)
            run = build_trainable(method, 0, resolved, data, config, device)
            if variant.get("channels_last"):
                run.network.to(memory_format=torch.channels_last)
            guarded = divergence_guarded(run, config)
            x, y, physics = data.x[:batch], data.y[:batch], data.physics(slice(0, batch))

            def bare(run=run, x=x, y=y, physics=physics) -> int:
                run.step(x, y, physics, 0)
                return batch

            def epoch(run=run, data=data, guarded=guarded) -> int:
                run_epoch(run, data, batch, 0, guarded)
                return len(data)

            rows.append(
                {
                    "case": f"{method} {kind}",
                    "variant": label,
                    "step_images_per_s": round(_images_per_second(bare, device, seconds), 2),
                    "epoch_images_per_s": round(_images_per_second(epoch, device, seconds), 2),
                }
            )
    torch.backends.cudnn.benchmark = False
    configure_math(parse_train_config({}))
    return {"rows": rows, "gpu_gflops": _calibrated(rows, model, size)}


def _calibrated(rows: list[dict], model: dict, size: int) -> float:
    """The ``gpu_gflops`` under which the job sizing predicts the measured ``ei`` epoch time.

    A training image is sized FLOPS_TRAIN × LOSS_PASSES × MACs; ``ei`` (a second network pass
    per image) is the cost the sizing assumes for every method.
    """
    macs = network_macs(parse_model_config(model).__dict__, (size, size))
    ei = [r for r in rows if r["case"].startswith("ei")] or rows  # the toy run times mc only
    rate = ei[0]["epoch_images_per_s"]
    return round(rate * FLOPS_TRAIN * LOSS_PASSES * macs / 1e9, 1)


def profile(stores: dict[str, Path], device: torch.device, model: dict) -> list[dict]:
    """The ten operators with the most time in one step of four methods."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "device_time_total" if device.type == "cuda" else "cpu_time_total"
    rows = []
    for method, kind in (
        ("ssdu", "single-coil"),
        ("mo-ei", "single-coil"),
        ("vortex", "single-coil"),
        ("mc", "multicoil"),
    ):
        store = stores[kind]
        resolved = resolved_config(_spec(store, model, 2), method)
        config = parse_train_config(resolved["train"])
        data = read_measurements(store, "train").to(device)
        run = build_trainable(method, 0, resolved, data, config, device)
        x, y, physics = data.x[:2], data.y[:2], data.physics(slice(0, 2))
        run.step(x, y, physics, 0)
        with torch_profile(activities=activities) as prof:
            run.step(x, y, physics, 0)
            _synchronize(device)
        table = prof.key_averages().table(sort_by=sort, row_limit=10)
        rows.append({"case": f"{method} {kind}", "table": table})
    return rows


def cuda_tests() -> dict:
    """The unit tests that only run with CUDA (they skip without it)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "tests/test_amp.py",
        "tests/test_device.py",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    lines = result.stdout.strip().splitlines()
    return {
        "returncode": result.returncode,
        "summary": lines[-1] if lines else result.stderr[-300:],
    }


def _section(report: dict, name: str, run: Callable[[], Any]) -> None:
    started = time.perf_counter()
    try:
        report[name] = {"result": run()}
    except Exception as error:  # one failed check must not hide the others
        report[name] = {
            "error": f"{type(error).__name__}: {error}",
            "trace": traceback.format_exc(),
        }
    report[name]["seconds"] = round(time.perf_counter() - started, 1)
    print(f"gpu_check: {name} done in {report[name]['seconds']} s", file=sys.stderr)


def markdown(report: dict) -> str:
    """The report as Markdown: one section per check, tables of its rows."""
    out = ["# ssibench GPU check", ""]
    for name, section in report.items():
        out += [f"## {name} ({section.get('seconds', 0)} s)", ""]
        if "error" in section:
            out += [
                "**failed**: `" + section["error"] + "`",
                "",
                "```",
                section["trace"],
                "```",
                "",
            ]
            continue
        result = section["result"]
        rows = result.get("rows") if isinstance(result, dict) and "rows" in result else result
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            if "table" in rows[0]:
                for row in rows:
                    out += [f"### {row['case']}", "", "```", row["table"], "```", ""]
                continue
            keys = list(rows[0])
            out += ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
            out += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
            out.append("")
        if isinstance(result, dict):
            extra = {k: v for k, v in result.items() if k != "rows"}
            out += ["```json", json.dumps(extra, indent=2, default=str), "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="tiny sizes on the CPU (CI)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("gpu_check"), help="report path stem")
    parser.add_argument("--seconds", type=float, default=None, help="timing window per variant")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    toy = args.toy or device.type == "cpu"
    model = TOY_MODEL if toy else PAPER_MODEL
    size, batch = (32, 2) if toy else (320, 4)
    seconds = args.seconds if args.seconds is not None else (0.2 if toy else 4.0)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ssibench-gpu-check-") as scratch:
        root = Path(scratch)
        stores = build_stores(root, 16, list(KINDS))
        _section(report, "environment", lambda: math_environment(parse_train_config({}), device))
        if device.type == "cuda":
            _section(report, "cuda tests", cuda_tests)
        _section(report, "every method, one epoch", lambda: every_method(stores, device, TOY_MODEL))
        amp_methods = ("ei",) if toy else ("ei", "robust-ei", "ensure", "uair")
        _section(
            report,
            "mixed precision",
            lambda: mixed_precision(stores, device, TOY_MODEL, amp_methods),
        )
        _section(report, "resume", lambda: resume(stores, device, TOY_MODEL, root))
        _section(
            report,
            "evaluation across devices",
            lambda: evaluation_across_devices(stores, device, TOY_MODEL, root),
        )
        cases = (("mc", "single-coil"),) if toy else THROUGHPUT_CASES
        _section(
            report,
            "throughput",
            lambda: throughput(device, size, batch, model, seconds, cases),
        )
        _section(report, "profile", lambda: profile(stores, device, TOY_MODEL))
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    failed = [name for name, section in report.items() if "error" in section]
    print(f"gpu_check: wrote {args.out.with_suffix('.md')} and .json; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
