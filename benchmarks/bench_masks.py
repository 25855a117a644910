"""Speed of the vectorised mask samplers against per-sample loops in the reference's style.

The reference (DeepInverse) draws each acquisition mask with one ``torch.multinomial`` per sample
and splits each with ``nonzero`` + ``randperm`` per sample; ssibench draws the whole batch at once
(Gumbel-top-k; ranked uniforms). Prints a table ending with the speed-up ratio.

Run: ``python benchmarks/bench_masks.py [--size 320] [--batch 64] [--repeats 20]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from ssibench.masks import BernoulliSplittingMaskGenerator, GaussianMaskGenerator, line_counts


def reference_style_gaussian(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """One multinomial per sample, as DeepInverse's GaussianMaskGenerator does."""
    masks_generator = GaussianMaskGenerator(acceleration=6)
    pdf = masks_generator.pdf(size).float()
    n_center, n_lines = line_counts(size, 6, masks_generator.effective_center_fraction)
    masks = torch.zeros(batch, 1, size, size)
    start = size // 2 - n_center // 2
    for b in range(batch):
        columns = torch.multinomial(pdf, n_lines, replacement=False, generator=generator)
        masks[b, :, :, columns] = 1
        masks[b, :, :, start : start + n_center] = 1
    return masks


def reference_style_split(
    omega: torch.Tensor, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """nonzero + randperm per sample, as DeepInverse's BernoulliSplittingMaskGenerator does."""
    out = torch.zeros_like(omega)
    for b in range(omega.shape[0]):
        points = omega[b, 0].nonzero()
        keep = points[torch.randperm(len(points), generator=generator)[: int(ratio * len(points))]]
        out[b, 0, keep[:, 0], keep[:, 1]] = 1
    return out


def seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    omega = GaussianMaskGenerator(acceleration=6).sample(args.batch, args.size, args.size, g)
    splitter = BernoulliSplittingMaskGenerator(0.6)
    rows = [
        (
            "gaussian acquisition masks",
            seconds(lambda: reference_style_gaussian(args.batch, args.size, g), args.repeats),
            seconds(
                lambda: GaussianMaskGenerator(acceleration=6).sample(
                    args.batch, args.size, args.size, g
                ),
                args.repeats,
            ),
        ),
        (
            "bernoulli splitting masks",
            seconds(lambda: reference_style_split(omega, 0.6, g), args.repeats),
            seconds(lambda: splitter.sample(omega, g), args.repeats),
        ),
    ]
    print(f"batch {args.batch}, {args.size}x{args.size}, CPU threads {torch.get_num_threads()}")
    print(f"{'sampler':30s} {'per-sample loop':>16s} {'vectorised':>12s} {'ratio':>7s}")
    for name, loop, vectorised in rows:
        print(
            f"{name:30s} {loop * 1e3:13.2f} ms {vectorised * 1e3:9.2f} ms {loop / vectorised:6.1f}x"
        )


if __name__ == "__main__":
    main()
