"""How much bf16 autocast moves the Monte-Carlo SURE divergence (robust-ei, robust-mo-ei, ENSURE).

The divergence is a finite difference, mean(b ⊙ (A f(y + τ b) − A f(y))) / τ, through a denoiser
that runs in bf16 under ``train.amp: bf16``; bf16 keeps 8 mantissa bits, so the difference of two
forwards τ apart could drown in rounding. This script measures it on the CPU (autocast to bf16 has
the same rounding as on a GPU): the demo network at random initialisation (MoDL 3 × 3-scale
16-channel U-Net) on 40 × 40 noisy demo measurements, the reference τ, 20 probes; it prints the
divergence in float32 and bf16, their relative difference, and that difference's share of the
SURE loss (2σ² · Δdiv / L).

    python benchmarks/sure_amp.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ssibench.data.demo import write_demo_volumes
from ssibench.data.measurements import read_measurements
from ssibench.data.slices import extract_slices
from ssibench.losses.sure import mc_divergence
from ssibench.methods import method_options
from ssibench.precision import autocast_forward
from ssibench.simulate import simulate_scenario
from ssibench.training import ModelConfig, build_network

SIGMA = 0.1
SCENARIO = {"physics": "single-coil", "sigma": SIGMA, "shared_mask": False, "mask": "gaussian"}


def main() -> None:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_demo_volumes(root / "raw", 8, 1, 40, 40, 4, seed=0)
        extract_slices(root / "raw", root / "slices.h5", (40, 40), (0.5, 0.25, 0.25), seed=0)
        spec = {**SCENARIO, "acceleration": 6}
        store = simulate_scenario(root / "slices.h5", root / "noisy.h5", "noisy", spec, 0)
        data = read_measurements(store, "train")
    tau = method_options("robust-ei", None)["sure_tau"]
    model = ModelConfig(num_iter=3, scales=3, width=16)  # random init: no exact identity
    y, physics = data.y[:4], data.physics(slice(0, 4))
    generator = torch.Generator().manual_seed(0)
    probes = [torch.randn(y.shape, generator=generator) * physics.mask for _ in range(20)]
    results = {}
    for amp in ("none", "bf16"):
        network = build_network(model, 0)
        autocast_forward(network.denoiser, amp, "cpu")
        with torch.no_grad():
            h_y = physics.A(network(y, physics))
            fidelity = (h_y - y).pow(2).mean()
            results[amp] = torch.stack(
                [mc_divergence(network, y, physics, h_y, b, tau) for b in probes]
            )
    div32, div16 = results["none"], results["bf16"]
    relative = ((div16 - div32).abs() / div32.abs()).median()
    share = (2 * SIGMA**2 * (div16 - div32).abs() / fidelity).median()
    print(f"tau {tau:g}; divergence float32 {div32.mean():.5f} ± {div32.std():.5f} (20 probes)")
    print(f"bf16 {div16.mean():.5f}; median |bf16 − float32| / |float32| = {relative:.3%}")
    print(f"median share of the SURE loss: 2σ²|Δdiv| / mean((A x̂ − y)²) = {share:.3%}")


if __name__ == "__main__":
    main()
