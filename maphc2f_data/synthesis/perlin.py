"""Vectorised Perlin noise, bit-compatible with the ``perlin-noise`` package.

The paper evaluates ``PerlinNoise(octaves, seed)([y / H, x / W])`` once per
pixel (Algorithm 2), ~9 s for a 512x512 mask. The package's value at a point is
a sum over the 4 surrounding lattice corners of ``fade`` weights times the dot
product of the corner's random gradient with the offset. Only the gradients
need the package's seeding (Python's ``random`` seeded with
``seed * hash(corner)``); everything per pixel is array math, so we draw the
few gradients the grid touches and evaluate all pixels at once.
"""

from __future__ import annotations

import math
import random

import numpy as np


def _corner_gradient(seed: int, row: int, col: int) -> "tuple[float, float]":
    # perlin_noise.tools.hasher((row, col)) == max(1, |1*row + 10*col + 1|);
    # RandVec seeds Python's random with seed * hash and draws uniform(-1, 1)
    # per dimension. A private Random instance leaves global state alone.
    corner_hash = max(1, abs(row + 10 * col + 1))
    generator = random.Random(seed * corner_hash)
    return generator.uniform(-1, 1), generator.uniform(-1, 1)


def _fade(t: np.ndarray) -> np.ndarray:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def perlin_grid(height: int, width: int, octaves: float, seed: int) -> np.ndarray:
    """Perlin noise on a pixel grid, as ``perlin_noise.PerlinNoise`` gives it.

    Equals ``PerlinNoise(octaves=octaves, seed=seed)([y / height, x / width])``
    at every pixel (to ~1e-15), without the per-pixel Python loop.

    Parameters
    ----------
    height, width : int
        Grid size in pixels (>= 1).
    octaves : float
        Positive number of lattice cells across each axis (fractional allowed).
    seed : int
        Positive integer seed (the package's own seeding rule).

    Returns
    -------
    ndarray of float64, shape (height, width)
        Noise values, roughly in [-1, 1].

    Examples
    --------
    >>> noise = perlin_grid(4, 6, octaves=2, seed=7)
    >>> noise.shape, noise.dtype
    ((4, 6), dtype('float64'))
    """
    if height < 1 or width < 1:
        raise ValueError(f"grid size must be positive, got {height}x{width}")
    if not octaves > 0:
        raise ValueError(f"octaves must be positive, got {octaves}")
    if int(seed) != seed or seed < 1:
        raise ValueError(f"seed must be a positive integer, got {seed}")
    seed = int(seed)
    # Same float operations as the package: (y / height) * octaves.
    ys = (np.arange(height, dtype=np.float64) / height) * octaves
    xs = (np.arange(width, dtype=np.float64) / width) * octaves
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)

    n_rows, n_cols = int(y0.max()) + 2, int(x0.max()) + 2
    gradients = np.array(
        [[_corner_gradient(seed, r, c) for c in range(n_cols)] for r in range(n_rows)],
        dtype=np.float64,
    )  # (n_rows, n_cols, 2): (d/dy, d/dx) gradient per lattice corner

    # noise(y, x) = sum over corners (r, c) of
    #   fade_y(r) fade_x(c) (g_y[r, c] (y - r) + g_x[r, c] (x - c)),
    # which is separable in y and x given the corner: two small matrix products
    # (H x n_rows) @ (n_rows x n_cols) @ (n_cols x W) instead of a per-pixel gather.
    row_weight, row_weight_offset = _axis_factors(ys, y0, n_rows)
    col_weight, col_weight_offset = _axis_factors(xs, x0, n_cols)
    return (row_weight_offset @ gradients[..., 0]) @ col_weight.T + (
        row_weight @ gradients[..., 1]
    ) @ col_weight_offset.T


def _axis_factors(coords: np.ndarray, cells: np.ndarray, n_corners: int) -> "tuple[np.ndarray, np.ndarray]":
    """Per-axis corner weights ``fade(1 - |t - k|)`` and the same times ``t - k``.

    Returns two (len(coords), n_corners) arrays, non-zero only at the two
    corners ``k = floor(t)`` and ``floor(t) + 1`` of each coordinate ``t``.
    """
    weight = np.zeros((coords.size, n_corners), dtype=np.float64)
    weight_offset = np.zeros_like(weight)
    index = np.arange(coords.size)
    for step in (0, 1):
        corners = cells + step
        offset = coords - corners
        fade = _fade(1 - np.abs(offset))
        weight[index, corners] = fade
        weight_offset[index, corners] = fade * offset
    return weight, weight_offset
