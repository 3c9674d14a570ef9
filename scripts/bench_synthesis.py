"""Synthesis throughput per core at 512x512, and perlin_grid vs per-pixel perlin-noise.

Usage: python scripts/bench_synthesis.py [--size 512] [--samples 100]

Runs single-threaded (OpenCV and BLAS pinned to one thread) so the figure is
samples/s per core. Prints a small table.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from perlin_noise import PerlinNoise  # noqa: E402
from skimage import data  # noqa: E402

from maphc2f_data.synthesis import ANOMALY_TYPES, synthesize  # noqa: E402
from maphc2f_data.synthesis.perlin import perlin_grid  # noqa: E402

TARGETS = {"crack": 30.0, "corrosion": 30.0, "deformation": 60.0}


def scene(size: int) -> "tuple[np.ndarray, np.ndarray]":
    image = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    foreground = np.zeros((size, size), np.uint8)
    cv2.ellipse(foreground, (size // 2, size // 2), (size * 3 // 8, size * 5 // 16), 0, 0, 360, 1, -1)
    return image, foreground.astype(bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    image, foreground = scene(args.size)

    print(f"{'kind':<12} {'ms/sample':>10} {'samples/s/core':>15} {'target':>7}")
    for kind in sorted(ANOMALY_TYPES):
        synthesize(kind, image, foreground, seed=0)  # warm-up
        start = time.perf_counter()
        for seed in range(args.samples):
            synthesize(kind, image, foreground, seed=seed)
        per_sample = (time.perf_counter() - start) / args.samples
        target = TARGETS.get(kind)
        print(f"{kind:<12} {per_sample * 1e3:>10.1f} {1 / per_sample:>15.1f} {target or '-':>7}")

    size, octaves, seed, rows = args.size, 6, 3, 4
    reference = PerlinNoise(octaves=octaves, seed=seed)
    start = time.perf_counter()
    for y in range(rows):  # a few full rows, extrapolated: the whole grid takes seconds
        for x in range(size):
            reference([y / size, x / size])
    per_pixel_grid = (time.perf_counter() - start) / rows * size
    perlin_grid(size, size, octaves, seed)
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        perlin_grid(size, size, octaves, seed)
    vectorised = (time.perf_counter() - start) / repeats
    print()
    print(f"{'perlin ' + str(size) + 'x' + str(size):<22} {'seconds':>10}")
    print(f"{'per-pixel perlin-noise':<22} {per_pixel_grid:>10.3f}  (extrapolated from {rows} rows)")
    print(f"{'perlin_grid':<22} {vectorised:>10.4f}")
    print(f"{'speed-up':<22} {per_pixel_grid / vectorised:>10.0f}x  (target >= 1000x)")


if __name__ == "__main__":
    main()
