"""Training throughput on a GPU at the SSIBench size, float32 against bf16, plus two GPU checks.

Throughput: images per second of the full training step (forward, losses, backward, Adam) of MoDL
(3 iterations) around the SSIBench U-Net (4 scales, width 64) at 320 × 320, batch 4, for

* ``mc`` on the single-coil scenario,
* ``ei`` on the single-coil scenario,
* ``mc`` on the multicoil scenario (4 birdcage coils, conjugate-gradient data consistency),

each with ``train.amp`` none and bf16; the table ends with the bf16/none speed ratio. The data are
random images measured through Gaussian 6× masks (speed does not depend on the content).

Checks:

1. a training step on CUDA matches the CPU step to float32 tolerance: loss terms, reconstruction
   and every parameter's gradient, with TF32 turned off (PyTorch lets cuDNN convolutions use TF32
   by default, which is not float32 arithmetic);
2. bf16 mixed precision trains ``--nan-steps`` steps without a NaN or Inf loss.

Without CUDA it prints that it skipped and exits 0; ``--device cpu`` runs everything on the CPU
(for a quick check of the script itself, with a small ``--size`` and ``--width``).

Run: ``python benchmarks/bench_gpu.py [--size 320] [--batch 4] [--steps 20]``
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ssibench.masks import make_mask_generator
from ssibench.methods.builders import build_losses
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.precision import autocast_forward, grad_scaler
from ssibench.rng import stream
from ssibench.training import ModelConfig, adapt, build_network, forward_train, train_step

#: (label, method, scenario spec) of the measured configurations.
CASES = (
    ("mc single-coil", "mc", {"physics": "single-coil", "sigma": 0.0, "shared_mask": False}),
    ("ei single-coil", "ei", {"physics": "single-coil", "sigma": 0.0, "shared_mask": False}),
    (
        "mc multicoil",
        "mc",
        {"physics": "multicoil", "sigma": 0.0, "shared_mask": False, "n_coils": 4},
    ),
)
#: Cases of the CUDA-vs-CPU check: deterministic losses only (EI's random transforms come from
#: a generator on the compute device, so CPU and CUDA draw different ones).
CHECK_CASES = (
    CASES[0],
    ("sup single-coil", "sup", CASES[0][2]),
    CASES[2],
)
ACCELERATION = 6
AMPS = ("none", "bf16")


def make_batch(
    scenario: dict[str, Any], batch: int, size: int, device: torch.device
) -> tuple[Tensor, Tensor, SingleCoilMRI | MultiCoilMRI]:
    """Random images x ``(B, 2, H, W)``, their k-space y and the operator, on ``device``."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 2, size, size, generator=generator)
    x[:, 1] = 0  # real-valued images, as the measurement store's ground truth
    masks = make_mask_generator("gaussian", ACCELERATION, None).sample(batch, size, size, generator)
    if scenario["physics"] == "multicoil":
        physics = MultiCoilMRI(masks, birdcage_maps(scenario["n_coils"], size, size))
    else:
        physics = SingleCoilMRI(masks)
    physics = physics.to(device)
    x = x.to(device)
    return x, physics.A(x), physics


def make_run(
    method: str, scenario: dict[str, Any], amp: str, config: ModelConfig, device: torch.device
) -> tuple[nn.Module, list[nn.Module], torch.optim.Optimizer, torch.amp.GradScaler]:
    """Network (wrapped by its losses), losses, Adam and gradient scaler, as ``ssibench train``."""
    network = build_network(config, seed=0).to(device)
    autocast_forward(network.denoiser, amp, device.type)
    losses = build_losses(method, scenario, None, stream(0, "loss"))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    return adapt(network, losses), losses, optimizer, grad_scaler(amp, device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    method: str,
    scenario: dict[str, Any],
    amp: str,
    config: ModelConfig,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[float, float, float]:
    """(images/s, ms/step, peak GiB) of ``args.steps`` training steps after ``args.warmup``."""
    x, y, physics = make_batch(scenario, args.batch, args.size, device)
    model, losses, optimizer, scaler = make_run(method, scenario, amp, config, device)
    for _ in range(args.warmup):
        train_step(model, losses, optimizer, scaler, x, y, physics, 0)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, losses, optimizer, scaler, x, y, physics, 0)
    synchronize(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return args.steps * args.batch / elapsed, 1000 * elapsed / args.steps, peak


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Full float32 matmuls and convolutions on CUDA in the block (TF32 off), restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def gradients_of_one_step(
    method: str,
    scenario: dict[str, Any],
    config: ModelConfig,
    batch: int,
    size: int,
    device: torch.device,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(loss terms, x̂, gradients by parameter name) of one float32 step, all on the CPU."""
    x, y, physics = make_batch(scenario, batch, size, device)
    model, losses, _, _ = make_run(method, scenario, "none", config, device)
    x_net = forward_train(model, y, physics)
    terms = torch.stack(
        [loss(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=0) for loss in losses]
    )
    terms.sum().backward()
    gradients = {name: p.grad.cpu() for name, p in model.named_parameters() if p.grad is not None}
    return terms.detach().cpu(), x_net.detach().cpu(), gradients


def check_cuda_matches_cpu(config: ModelConfig, args: argparse.Namespace) -> bool:
    """Check 1: relative differences of a CUDA step against the CPU step (TF32 off)."""
    ok = True
    for label, method, scenario in CHECK_CASES:
        cpu = gradients_of_one_step(
            method, scenario, config, args.check_batch, args.size, torch.device("cpu")
        )
        with no_tf32():
            cuda = gradients_of_one_step(
                method, scenario, config, args.check_batch, args.size, torch.device("cuda")
            )
        loss_error = float(((cuda[0] - cpu[0]).abs() / cpu[0].abs()).max())
        recon_error = float((cuda[1] - cpu[1]).norm() / cpu[1].norm())
        grad_error = max(
            float((cuda[2][k] - g).norm() / g.norm().clamp_min(1e-30)) for k, g in cpu[2].items()
        )
        passed = max(loss_error, recon_error) < args.tolerance and grad_error < 10 * args.tolerance
        ok &= passed
        print(
            f"  {label:<15} loss {loss_error:.1e}  x̂ {recon_error:.1e}  worst gradient "
            f"{grad_error:.1e}  {'ok' if passed else 'FAILED'}"
        )
    return ok


def check_bf16_trains(config: ModelConfig, args: argparse.Namespace, device: torch.device) -> bool:
    """Check 2: ``args.nan_steps`` bf16 steps of every case without a NaN or Inf loss."""
    ok = True
    for label, method, scenario in CASES:
        x, y, physics = make_batch(scenario, args.batch, args.size, device)
        model, losses, optimizer, scaler = make_run(method, scenario, "bf16", config, device)
        totals = torch.stack(
            [
                train_step(model, losses, optimizer, scaler, x, y, physics, 0).sum()
                for _ in range(args.nan_steps)
            ]
        ).cpu()  # one host sync, after the loop
        finite = bool(torch.isfinite(totals).all())
        ok &= finite
        print(
            f"  {label:<15} loss {float(totals[0]):.4g} → {float(totals[-1]):.4g} after "
            f"{args.nan_steps} steps  {'ok' if finite else 'FAILED (NaN/Inf)'}"
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA, else skip), cuda[:N], cpu")
    parser.add_argument("--size", type=int, default=320, help="image height and width")
    parser.add_argument("--batch", type=int, default=4, help="images per step")
    parser.add_argument("--width", type=int, default=64, help="U-Net channels of the first level")
    parser.add_argument("--scales", type=int, default=4, help="U-Net resolution levels")
    parser.add_argument("--num-iter", type=int, default=3, help="MoDL iterations")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--check-batch", type=int, default=2, help="batch of the CUDA/CPU check")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="relative, CUDA vs CPU")
    parser.add_argument("--nan-steps", type=int, default=50, help="bf16 steps of the NaN check")
    args = parser.parse_args()

    if args.device == "auto" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible; skipped (run it on a GPU machine)")
        return
    device = torch.device("cuda" if args.device == "auto" else args.device)
    config = ModelConfig(num_iter=args.num_iter, scales=args.scales, width=args.width)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device {device} ({name}), torch {torch.__version__}; MoDL {args.num_iter} iterations, "
        f"U-Net {args.scales} scales width {args.width}; {args.size}×{args.size}, batch "
        f"{args.batch}; {args.steps} timed steps after {args.warmup}"
    )
    print(f"\n{'case':<15} {'amp':<5} {'images/s':>9} {'ms/step':>9} {'peak GiB':>9}")
    speeds: dict[tuple[str, str], float] = {}
    for label, method, scenario in CASES:
        for amp in AMPS:
            rate, ms, peak = throughput(method, scenario, amp, config, args, device)
            speeds[label, amp] = rate
            print(f"{label:<15} {amp:<5} {rate:9.1f} {ms:9.1f} {peak:9.2f}")
    print("\nratio bf16 / none (images/s):")
    for label, _, _ in CASES:
        print(f"  {label:<15} {speeds[label, 'bf16'] / speeds[label, 'none']:.2f}×")

    ok = True
    if device.type == "cuda":
        print(f"\ncheck 1: CUDA step vs CPU step, float32 (relative; tolerance {args.tolerance:g})")
        ok &= check_cuda_matches_cpu(config, args)
    print(f"\ncheck 2: bf16 trains {args.nan_steps} steps without NaN")
    ok &= check_bf16_trains(config, args, device)
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
