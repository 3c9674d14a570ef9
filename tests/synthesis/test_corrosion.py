"""Corrosion anomalies: mask steps of Algorithm 4, appearance, and the registry contract."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from maphc2f_data.synthesis import ANOMALY_TYPES, SynthesisError, synthesize
from maphc2f_data.synthesis.base import PlacementError
from maphc2f_data.synthesis.corrosion import (
    CORROSION,
    CorrosionConfig,
    apply_corrosion,
    corrosion_polygons,
    grow_boundary,
    perlin_erode_boundary,
    render_corrosion,
    sample_corrosion_params,
)
from maphc2f_data.synthesis.perlin import perlin_grid

SIZE = 112
CROSS = ndimage.generate_binary_structure(2, 1)


def textured_image(height: int, width: int, seed: int) -> np.ndarray:
    """A grey, mildly textured RGB image (uint8, (H, W, 3))."""
    noise = np.random.default_rng(seed).integers(90, 190, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def blob_foreground(height: int, width: int, seed: int) -> np.ndarray:
    """Union of 1-3 random filled ellipses (bool, (H, W)), never empty."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        center = (
            int(rng.integers(width // 4, 3 * width // 4)),
            int(rng.integers(height // 4, 3 * height // 4)),
        )
        axes = (int(rng.integers(8, width // 2)), int(rng.integers(8, height // 2)))
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return canvas.astype(bool)


def within_px(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels at Euclidean distance <= radius from ``mask``."""
    return ndimage.distance_transform_edt(~mask) <= radius


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return textured_image(SIZE, SIZE, seed=0)


@pytest.fixture(scope="module")
def foreground() -> np.ndarray:
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    cv2.ellipse(canvas, (SIZE // 2, SIZE // 2), (45, 35), 20.0, 0, 360, 1, -1)
    return canvas.astype(bool)


def test_registered_under_its_name():
    assert ANOMALY_TYPES["corrosion"] is CORROSION
    assert CORROSION.render is render_corrosion


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mask_is_inside_foreground_and_far_pixels_keep_their_bytes(image, foreground, seed):
    result = synthesize("corrosion", image, foreground, seed=seed)
    assert result.mask.dtype == np.bool_ and result.mask.shape == foreground.shape
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape
    assert result.mask.any()
    assert not (result.mask & ~foreground).any()
    far = ~within_px(result.mask, 3)
    np.testing.assert_array_equal(result.image[far], image[far])


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_patch_visibly_changes_the_image_inside_the_mask(image, foreground, seed):
    result = synthesize("corrosion", image, foreground, seed=seed)
    difference = np.abs(result.image.astype(np.int16) - image.astype(np.int16)).sum(axis=2)
    assert difference[result.mask].mean() > 20  # summed over RGB, 0-765


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(image, foreground):
    first = synthesize("corrosion", image, foreground, seed=7)
    again = synthesize("corrosion", image, foreground, seed=7)
    assert first.image.tobytes() == again.image.tobytes()
    assert first.mask.tobytes() == again.mask.tobytes()
    assert first.params == again.params
    other = synthesize("corrosion", image, foreground, seed=8)
    assert other.mask.tobytes() != first.mask.tobytes()
    assert other.image.tobytes() != first.image.tobytes()


def test_params_round_trip_through_json_and_recreate_the_sample(image, foreground):
    original = synthesize("corrosion", image, foreground, seed=3)
    params = json.loads(json.dumps(original.params))
    assert params == original.params
    recreated = synthesize("corrosion", image, foreground, seed=999, **params)
    assert recreated.image.tobytes() == original.image.tobytes()
    assert recreated.mask.tobytes() == original.mask.tobytes()


def test_sampled_params_are_plain_python_with_positive_sub_seeds(foreground):
    params = sample_corrosion_params(np.random.default_rng(4), foreground)

    def leaves(value):
        if isinstance(value, list):
            for item in value:
                yield from leaves(item)
        else:
            yield value

    for key, value in params.items():
        for leaf in leaves(value):
            assert type(leaf) in (int, float, bool, str), (key, type(leaf))
    for key in ("polygon_seed", "growth_seed", "erosion_seed", "texture_seed"):
        assert type(params[key]) is int and params[key] >= 1
    n_polygons = len(params["centers"])
    config = CorrosionConfig()
    assert config.n_polygons[0] <= n_polygons <= config.n_polygons[1]
    assert len(params["radii"]) == len(params["vertex_counts"]) == len(params["overlap_flags"]) == n_polygons
    assert all(foreground[y, x] for y, x in params["centers"])


def test_overlap_flag_combines_by_xor_and_union_by_or(foreground):
    common = dict(centers=[[56, 56], [56, 56]], radii=[12.0, 12.0], vertex_counts=[8, 8], jitter=0.0)
    union = corrosion_polygons(foreground, overlap_flags=[False, False], polygon_seed=5, **common)
    xor = corrosion_polygons(foreground, overlap_flags=[False, True], polygon_seed=5, **common)
    first = corrosion_polygons(
        foreground, centers=[[56, 56]], radii=[12.0], vertex_counts=[8], jitter=0.0,
        overlap_flags=[False], polygon_seed=5,
    )
    assert not (first & ~union).any()  # union keeps polygon 1
    flaked = union & ~xor
    assert flaked.any() and not (flaked & ~first).any()  # XOR removes only the shared part
    assert union[56, 56] and not xor[56, 56]  # concentric polygons: the centre becomes a pit
    assert not (xor & ~union).any()
    assert not (union & ~foreground).any()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), iterations=st.integers(1, 6), grow_prob=st.floats(0.0, 1.0))
def test_boundary_growth_only_adds_pixels_within_reach_inside_foreground(seed, iterations, grow_prob):
    rng = np.random.default_rng(seed)
    foreground = blob_foreground(96, 96, seed)
    mask = (rng.random((96, 96)) < 0.02) & foreground
    grown = grow_boundary(mask, foreground, iterations=iterations, grow_prob=grow_prob, seed=seed % 1000 + 1)
    assert not (mask & ~grown).any()  # only adds
    added = grown & ~mask
    assert not (added & ~foreground).any()
    reach = ndimage.binary_dilation(mask, CROSS, iterations=iterations)
    assert not (added & ~reach).any()
    one_step = grow_boundary(mask, foreground, iterations=1, grow_prob=grow_prob, seed=seed % 1000 + 1)
    boundary = ndimage.binary_dilation(mask, CROSS) & ~mask & foreground
    assert not ((one_step & ~mask) & ~boundary).any()  # one round touches the boundary only


def test_boundary_growth_probability_extremes(foreground):
    mask = np.zeros_like(foreground)
    mask[50:60, 50:60] = True
    unchanged = grow_boundary(mask, foreground, iterations=5, grow_prob=0.0, seed=1)
    np.testing.assert_array_equal(unchanged, mask)
    full = grow_boundary(mask, foreground, iterations=3, grow_prob=1.0, seed=1)
    # The square sits deep inside the foreground, so geodesic = plain dilation here.
    np.testing.assert_array_equal(full, ndimage.binary_dilation(mask, CROSS, iterations=3))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(1, 2**20), rho=st.floats(-0.3, 0.3), passes=st.integers(1, 3))
def test_perlin_erosion_only_removes_pixels_where_noise_exceeds_rho(seed, rho, passes):
    mask = blob_foreground(96, 96, seed)
    noise = perlin_grid(96, 96, 6, seed)
    eroded = perlin_erode_boundary(mask, noise, rho=rho, passes=passes)
    assert not (eroded & ~mask).any()
    removed = mask & ~eroded
    assert not (removed & (noise <= rho)).any()
    once = perlin_erode_boundary(mask, noise, rho=rho, passes=1)
    boundary = mask & ~ndimage.binary_erosion(mask, CROSS, border_value=1)
    np.testing.assert_array_equal(mask & ~once, boundary & (noise > rho))  # eq. (7) exactly


def test_perlin_erosion_threshold_extremes():
    mask = blob_foreground(96, 96, 3)
    noise = perlin_grid(96, 96, 6, 3)
    np.testing.assert_array_equal(perlin_erode_boundary(mask, noise, rho=10.0, passes=3), mask)
    peeled = perlin_erode_boundary(mask, noise, rho=-10.0, passes=1)
    np.testing.assert_array_equal(peeled, ndimage.binary_erosion(mask, CROSS, border_value=1))


def test_apply_with_empty_mask_returns_an_identical_copy(image):
    out = apply_corrosion(
        image, np.zeros(image.shape[:2], dtype=bool), colour=[150, 80, 30], strength=0.9, darken=0.1,
        substrate_detail=0.3, texture_octaves=8, texture_amplitude=0.3, texture_seed=1,
        grain_amplitude=0.05, feather_sigma=1.0,
    )
    assert out is not image
    np.testing.assert_array_equal(out, image)


def test_render_raises_placement_error_below_min_area(image, foreground):
    params = sample_corrosion_params(np.random.default_rng(0), foreground)
    params["min_area"] = int(foreground.sum()) + 1
    with pytest.raises(PlacementError):
        render_corrosion(image, foreground, params)


def test_tiny_foreground_gives_synthesis_error(image):
    foreground = np.zeros(image.shape[:2], dtype=bool)
    foreground[40:42, 40] = True
    with pytest.raises(SynthesisError):
        synthesize("corrosion", image, foreground, seed=0)


def test_bad_inputs_raise_value_error(image, foreground):
    with pytest.raises(ValueError, match="empty"):
        synthesize("corrosion", image, np.zeros_like(foreground), seed=0)
    with pytest.raises(ValueError, match="uint8"):
        synthesize("corrosion", image.astype(np.float32), foreground, seed=0)
    with pytest.raises(ValueError, match="shape"):
        synthesize("corrosion", image[..., 0], foreground, seed=0)
    with pytest.raises(ValueError, match="does not match"):
        synthesize("corrosion", image, foreground[:-1], seed=0)
    with pytest.raises(ValueError, match="bool"):
        grow_boundary(foreground.astype(np.uint8), foreground, iterations=1, grow_prob=0.5, seed=1)
    with pytest.raises(ValueError, match="empty"):
        sample_corrosion_params(np.random.default_rng(0), np.zeros_like(foreground))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), blob_seed=st.integers(0, 2**16), size=st.integers(96, 128))
def test_any_seed_on_random_blobs_gives_a_valid_local_anomaly(seed, blob_seed, size):
    image = textured_image(size, size, blob_seed)
    foreground = blob_foreground(size, size, blob_seed)
    result = synthesize("corrosion", image, foreground, seed=seed)
    assert result.mask.sum() >= result.params["min_area"]
    assert not (result.mask & ~foreground).any()
    far = ~within_px(result.mask, 3)
    np.testing.assert_array_equal(result.image[far], image[far])
    again = render_corrosion(image, foreground, result.params)
    assert again[0].tobytes() == result.image.tobytes() and again[1].tobytes() == result.mask.tobytes()


def test_every_colour_family_is_drawn_and_white_rust_lightens_a_dark_part(foreground):
    families = [name for name, *_ in CorrosionConfig().colour_families]
    drawn = {sample_corrosion_params(np.random.default_rng(seed), foreground)["colour_family"]
             for seed in range(200)}
    assert drawn == set(families)
    dark = np.full((SIZE, SIZE, 3), 50, dtype=np.uint8)
    seed = next(seed for seed in range(200)
                if sample_corrosion_params(np.random.default_rng([seed, 0]), foreground)["colour_family"]
                == "white_rust")
    sample = synthesize("corrosion", dark, foreground, seed)
    assert sample.params["colour_family"] == "white_rust"
    assert sample.image[sample.mask].mean() > 50 + 40  # pale oxide on a dark part, not another shadow
