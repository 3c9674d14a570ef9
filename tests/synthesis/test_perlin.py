"""perlin_grid must reproduce perlin_noise.PerlinNoise pixel for pixel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from perlin_noise import PerlinNoise

from maphc2f_data.synthesis.perlin import perlin_grid


def _reference_grid(height, width, octaves, seed):
    """The paper's per-pixel loop (Algorithm 2, line 9)."""
    noise = PerlinNoise(octaves=octaves, seed=seed)
    return np.array(
        [[noise([y / height, x / width]) for x in range(width)] for y in range(height)],
        dtype=np.float64,
    )


@pytest.mark.parametrize("octaves", [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.7, 3.25, 6.9])
def test_perlin_grid_matches_package(octaves):
    height, width, seed = 23, 31, 12345
    grid = perlin_grid(height, width, octaves, seed)
    assert np.max(np.abs(grid - _reference_grid(height, width, octaves, seed))) <= 1e-9


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(min_value=1, max_value=2**31 - 1),
    octaves=st.one_of(st.integers(1, 8), st.floats(0.25, 8.0, allow_nan=False)),
    height=st.integers(1, 17),
    width=st.integers(1, 17),
)
def test_perlin_grid_matches_package_property(seed, octaves, height, width):
    grid = perlin_grid(height, width, octaves, seed)
    assert np.max(np.abs(grid - _reference_grid(height, width, octaves, seed))) <= 1e-9


def test_perlin_grid_shape_dtype_and_seed_dependence():
    grid = perlin_grid(40, 56, 4, 7)
    assert grid.shape == (40, 56)
    assert grid.dtype == np.float64
    assert np.all(np.isfinite(grid))
    # Values are a convex combination of dot products bounded by 2.
    assert np.abs(grid).max() <= 2.0
    assert np.array_equal(grid, perlin_grid(40, 56, 4, 7))
    assert not np.allclose(grid, perlin_grid(40, 56, 4, 8))


def test_perlin_grid_leaves_global_random_state_alone():
    import random

    random.seed(99)
    expected = random.random()
    random.seed(99)
    perlin_grid(16, 16, 3, 5)
    assert random.random() == expected


@pytest.mark.parametrize(
    "height, width, octaves, seed",
    [
        (0, 8, 2, 1),
        (8, -1, 2, 1),
        (8, 8, 0, 1),
        (8, 8, -2.5, 1),
        (8, 8, 2, 0),
        (8, 8, 2, -4),
        (8, 8, 2, 1.5),
    ],
)
def test_perlin_grid_rejects_bad_arguments(height, width, octaves, seed):
    with pytest.raises(ValueError):
        perlin_grid(height, width, octaves, seed)
