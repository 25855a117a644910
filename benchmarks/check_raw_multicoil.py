"""Check the demo's raw-multicoil store: ESPIRiT maps against the true birdcage maps.

The demo volumes are made with birdcage coil sensitivities, so the maps ESPIRiT estimates from
their ACS lines can be compared with the truth. Prints the per-pixel correlation
|⟨Ŝ, S⟩| / (‖Ŝ‖‖S‖) averaged inside the head (|x| > 10 % of its maximum) of every slice, and
PSNR / SSIM / NMSE (fastMRI mode: data range = max |x|) of the zero-filled Aᴴy and SENSE A†y
images of one test slice; draws them to ``docs/figures/raw_multicoil_demo.png``. Run it after the
default run's simulate job:

    snakemake data/measurements/demo-40x40/raw-multicoil.h5 --cores 2
    python benchmarks/check_raw_multicoil.py [STORE] [--out PNG]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch
from torch import Tensor

from ssibench.data.measurements import MeasurementSet, read_measurements
from ssibench.evaluation.functional import image_metrics
from ssibench.fft import to_complex
from ssibench.physics import birdcage_maps

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

#: A pixel is inside the head where |x| exceeds this fraction of the slice's maximum.
HEAD_FRACTION = 0.1


def map_correlation(estimate: Tensor, truth: Tensor) -> Tensor:
    """|⟨Ŝ(p), S(p)⟩| / (‖Ŝ(p)‖ ‖S(p)‖) per pixel p of ``(N, H, W)`` maps: ``(H, W)``."""
    inner = (estimate.conj() * truth).sum(0).abs()
    norms = estimate.abs().square().sum(0).sqrt() * truth.abs().square().sum(0).sqrt()
    return inner / norms.clamp_min(1e-12)


def head_correlations(data: MeasurementSet, truth: Tensor) -> list[float]:
    """The mean map correlation inside the head of every slice of ``data``."""
    values = []
    for row in range(len(data)):
        image = to_complex(data.x[[row]])[0].abs()
        head = image > HEAD_FRACTION * image.max()
        values.append(map_correlation(data.coil_maps[row], truth)[head].mean().item())
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", default="data/measurements/demo-40x40/raw-multicoil.h5")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/raw_multicoil_demo.png"))
    parser.add_argument("--sample", type=int, default=0, help="test slice to draw")
    args = parser.parse_args()

    test, train = read_measurements(args.store, "test"), read_measurements(args.store, "train")
    truth = birdcage_maps(test.coil_maps.shape[1], *test.coil_maps.shape[-2:])
    correlations = head_correlations(train, truth) + head_correlations(test, truth)
    print(
        f"map correlation inside the head: mean {np.mean(correlations):.4f}, "
        f"min {np.min(correlations):.4f} over {len(correlations)} slices"
    )

    row = torch.tensor([args.sample])
    physics, y = test.physics(row), test.y[row]
    images = {"zero-filled |Aᴴy|": physics.A_adjoint(y), "SENSE |A†y|": physics.A_dagger(y)}
    for name, image in images.items():
        scores = image_metrics(image, test.x[row], "fastmri")
        print(f"{name}: " + ", ".join(f"{k} {v.item():.4f}" for k, v in scores.items()))

    estimate = test.coil_maps[args.sample]
    n_coils = estimate.shape[0]
    columns = max(n_coils, 4)
    fig, axes = plt.subplots(3, columns, figsize=(2.2 * columns, 6.6))
    for coil in range(n_coils):
        axes[0, coil].imshow(truth[coil].abs(), cmap="gray", vmin=0, vmax=1)
        axes[0, coil].set_title(f"birdcage |S{coil}|", fontsize=8)
        axes[1, coil].imshow(estimate[coil].abs(), cmap="gray", vmin=0, vmax=1)
        axes[1, coil].set_title(f"ESPIRiT |Ŝ{coil}|", fontsize=8)
    panels = {
        "ground truth |x|": to_complex(test.x[row])[0].abs(),
        **{name: to_complex(image)[0].abs() for name, image in images.items()},
        "|⟨Ŝ,S⟩| / ‖Ŝ‖‖S‖": map_correlation(estimate, truth),
    }
    for axis, (title, image) in zip(axes[2], panels.items(), strict=False):
        axis.imshow(image, cmap="gray", vmin=0)
        axis.set_title(title, fontsize=8)
    for axis in axes.flat:
        axis.axis("off")
    fig.suptitle(f"raw-multicoil, test slice {args.sample} of {args.store}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
