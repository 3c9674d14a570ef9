"""Crack anomalies: skeleton growth (Alg. 1), mask (Alg. 2), application (Alg. 3)."""

import json
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data

from maphc2f_data.synthesis import ANOMALY_TYPES, PlacementError, SynthesisError, synthesize
from maphc2f_data.synthesis.crack import (
    CrackConfig,
    apply_crack,
    crack_mask,
    crack_skeleton,
    render_crack,
    sample_crack_params,
)
from maphc2f_data.synthesis.perlin import perlin_grid

SIZE = 112
IMAGE = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _disc_union(shape, discs):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for row, col, radius in discs:
        mask |= (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
    return mask


FOREGROUND = _disc_union((SIZE, SIZE), [(56, 56, 40), (30, 85, 18)])


def _components_8(mask):
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return count - 1, labels


def _assert_skeleton_connected_to_starts(skeleton, start_points):
    count, labels = _components_8(skeleton)
    start_labels = {labels[r, c] for r, c in start_points}
    assert 0 not in start_labels, "every start point is marked"
    assert start_labels == set(range(1, count + 1)), "every component holds a start point"


# --- Algorithm 1 -------------------------------------------------------------------


@pytest.mark.parametrize("step_size", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("porous", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_skeleton_inside_foreground_and_connected_per_start(seed, step_size, porous):
    # A thin, non-convex foreground so frontiers keep hitting its boundary.
    foreground = _disc_union((SIZE, SIZE), [(40, 40, 30), (75, 75, 25)])
    foreground &= ~_disc_union((SIZE, SIZE), [(50, 50, 18)])
    rng = np.random.default_rng(seed)
    if porous:
        # Single-pixel holes: a step longer than a pixel must not jump them.
        foreground &= rng.random(foreground.shape) > 0.05
    candidates = np.argwhere(foreground)
    starts = [tuple(int(v) for v in p) for p in candidates[rng.integers(0, len(candidates), 3)]]
    skeleton = crack_skeleton(
        foreground, starts, max_steps=80, step_size=step_size, branch_prob=0.1,
        stop_prob=0.005, rng=rng,
    )
    assert skeleton.dtype == np.bool_ and skeleton.shape == foreground.shape
    assert not np.any(skeleton & ~foreground)
    assert skeleton.sum() > len(starts)
    _assert_skeleton_connected_to_starts(skeleton, starts)


@pytest.mark.parametrize("step_size", [1.0, 1.5, 2.5])
def test_skeleton_uses_exactly_its_step_budget(step_size):
    foreground = np.ones((SIZE, SIZE), dtype=bool)
    max_steps = 20
    for seed in range(5):
        skeleton = crack_skeleton(
            foreground, [(56, 56)], max_steps=max_steps, step_size=step_size,
            branch_prob=0.0, stop_prob=0.0, rng=np.random.default_rng(seed),
        )
        rows, cols = np.nonzero(skeleton)
        reach = np.hypot(rows - 56, cols - 56).max()
        budget = max_steps * step_size
        # A straight unbranched crack ends at the budget, up to pixel rounding.
        assert budget - 1.5 <= reach <= budget + 1.5
        _assert_skeleton_connected_to_starts(skeleton, [(56, 56)])


def test_skeleton_never_exceeds_step_budget_when_branching():
    foreground = np.ones((SIZE, SIZE), dtype=bool)
    starts = [(30, 30), (80, 70)]
    for seed in range(5):
        skeleton = crack_skeleton(
            foreground, starts, max_steps=15, step_size=2.0, branch_prob=0.5,
            stop_prob=0.0, rng=np.random.default_rng(seed),
        )
        rows, cols = np.nonzero(skeleton)
        nearest = np.min([np.hypot(rows - r, cols - c) for r, c in starts], axis=0)
        assert nearest.max() <= 15 * 2.0 + 1.5


def test_skeleton_edge_budgets():
    foreground = np.ones((40, 40), dtype=bool)
    kwargs = dict(step_size=1.0, branch_prob=0.0, rng=np.random.default_rng(0))
    no_steps = crack_skeleton(foreground, [(20, 20)], max_steps=0, stop_prob=0.0, **kwargs)
    assert np.argwhere(no_steps).tolist() == [[20, 20]]
    one_step = crack_skeleton(foreground, [(20, 20)], max_steps=50, stop_prob=1.0, **kwargs)
    assert 2 <= one_step.sum() <= 3  # start, the one step (and at most one gap pixel)


def test_skeleton_is_deterministic_given_generator_seed():
    kwargs = dict(max_steps=60, step_size=2.0, branch_prob=0.1, stop_prob=0.01)
    first = crack_skeleton(FOREGROUND, [(56, 56)], rng=np.random.default_rng(3), **kwargs)
    again = crack_skeleton(FOREGROUND, [(56, 56)], rng=np.random.default_rng(3), **kwargs)
    other = crack_skeleton(FOREGROUND, [(56, 56)], rng=np.random.default_rng(4), **kwargs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_skeleton_rejects_bad_input():
    rng = np.random.default_rng(0)
    kwargs = dict(max_steps=5, step_size=1.0, branch_prob=0.0, stop_prob=0.0, rng=rng)
    with pytest.raises(ValueError, match="bool"):
        crack_skeleton(FOREGROUND.astype(np.uint8), [(56, 56)], **kwargs)
    with pytest.raises(ValueError, match="shape"):
        crack_skeleton(FOREGROUND[None], [(56, 56)], **kwargs)
    with pytest.raises(ValueError, match="not inside the foreground"):
        crack_skeleton(FOREGROUND, [(0, 0)], **kwargs)
    with pytest.raises(ValueError, match="not inside the foreground"):
        crack_skeleton(FOREGROUND, [(56, SIZE)], **kwargs)
    with pytest.raises(ValueError, match="step_size"):
        crack_skeleton(FOREGROUND, [(56, 56)], **{**kwargs, "step_size": 0.0})
    with pytest.raises(ValueError, match="stop_prob"):
        crack_skeleton(FOREGROUND, [(56, 56)], **{**kwargs, "stop_prob": 1.5})


# --- Algorithm 2 -------------------------------------------------------------------

MASK_PARAMS = dict(w0=3.0, alpha=0.3, eps=0.7, noise_scale=1.2, noise_octaves=5,
                   noise_seed=17, morph_kernel_size=3)


def _reference_crack_mask(skeleton, *, w0, alpha, eps, noise_scale, noise_octaves,
                          noise_seed, morph_kernel_size):
    """Algorithm 2 on the whole image, with scipy/skimage as the paper's toolbox."""
    from scipy import ndimage
    from skimage import morphology

    height, width = skeleton.shape
    dist = ndimage.distance_transform_edt(~skeleton)
    thickness = w0 * np.exp(-alpha * dist) + eps
    noise = perlin_grid(height, width, noise_octaves, noise_seed) * noise_scale
    mask = dist + noise < thickness
    footprint = np.ones((morph_kernel_size, morph_kernel_size), dtype=bool)
    mask = morphology.opening(morphology.closing(mask, footprint), footprint)
    return ndimage.gaussian_filter(mask.astype(np.float64), sigma=1.0) > 0.3


@pytest.mark.parametrize("seed", range(6))
def test_crack_mask_equals_full_image_reference(seed):
    # Skeletons near the image border too, where the cropped computation must
    # agree with the full-image one.
    rng = np.random.default_rng(seed)
    foreground = np.ones((96, 128), dtype=bool)
    starts = [(int(rng.integers(0, 96)), int(rng.integers(0, 128))) for _ in range(2)]
    skeleton = crack_skeleton(foreground, starts, max_steps=40, step_size=2.0,
                              branch_prob=0.1, stop_prob=0.01, rng=rng)
    params = dict(MASK_PARAMS, noise_seed=seed + 1, w0=float(rng.uniform(1, 5)))
    mask = crack_mask(skeleton, **params)
    assert mask.dtype == np.bool_ and mask.shape == skeleton.shape
    assert mask.any()
    assert np.array_equal(mask, _reference_crack_mask(skeleton, **params))


def test_crack_mask_follows_the_skeleton():
    skeleton = np.zeros((96, 96), dtype=bool)
    skeleton[48, 20:76] = True
    mask = crack_mask(skeleton, **dict(MASK_PARAMS, noise_scale=0.0))
    rows, cols = np.nonzero(mask)
    # Without noise the width is set by eq. 4 alone: dist < 3 exp(-0.3 dist) + 0.7
    # holds for dist <= 2, fails for dist >= 3 (plus <= 1 px of blur growth).
    assert mask[46:51, 22:74].all()
    assert np.abs(rows - 48).max() <= 3
    assert cols.min() >= 20 - 3 and cols.max() <= 75 + 3


def test_crack_mask_of_empty_skeleton_is_empty():
    assert not crack_mask(np.zeros((32, 32), dtype=bool), **MASK_PARAMS).any()


def test_crack_mask_rejects_bad_input():
    skeleton = np.zeros((32, 32), dtype=bool)
    with pytest.raises(ValueError, match="bool"):
        crack_mask(skeleton.astype(np.float32), **MASK_PARAMS)
    with pytest.raises(ValueError, match="w0"):
        crack_mask(skeleton, **dict(MASK_PARAMS, w0=0.0))
    with pytest.raises(ValueError, match="morph_kernel_size"):
        crack_mask(skeleton, **dict(MASK_PARAMS, morph_kernel_size=0))


# --- Algorithm 3 -------------------------------------------------------------------


def test_apply_crack_darkens_and_shifts_mask_pixels_only():
    image = np.full((32, 32, 3), 100, dtype=np.uint8)
    image[..., 1] = 200
    mask = np.zeros((32, 32), dtype=bool)
    mask[10:14, 5:25] = True
    out = apply_crack(image, mask, base_alpha=0.8, max_darken=0.5,
                      max_color_shift=[10.0, -4.0, 0.0], edge_fade=2.0)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    # 0.2 * orig + 0.8 * (0.5 * orig + shift), per RGB channel, truncated.
    expected = [
        math.floor(0.2 * 100 + 0.8 * (50 + 10)),
        math.floor(0.2 * 200 + 0.8 * (100 - 4)),
        math.floor(0.2 * 100 + 0.8 * 50),
    ]
    assert np.abs(out[mask].astype(int) - expected).max() <= 1


def test_apply_crack_clips_to_uint8_range():
    image = np.full((16, 16, 3), 250, dtype=np.uint8)
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:8, 4:8] = True
    out = apply_crack(image, mask, base_alpha=1.0, max_darken=1.0,
                      max_color_shift=[50.0, -300.0, 0.0], edge_fade=1.0)
    assert out[mask].tolist() == [[255, 0, 250]] * 16


def test_bright_crack_lightens_mask_pixels_only():
    image = np.full((32, 32, 3), 40, dtype=np.uint8)
    mask = np.zeros((32, 32), dtype=bool)
    mask[10:14, 5:25] = True
    out = apply_crack(image, mask, base_alpha=0.8, max_darken=0.5,
                      max_color_shift=[0.0, 0.0, 0.0], edge_fade=2.0, bright=True)
    assert np.array_equal(out[~mask], image[~mask])
    # 0.2 * 40 + 0.8 * (40 + (255 - 40) * 0.5): the mirror image of darkening.
    assert np.abs(out[mask].astype(int) - math.floor(0.2 * 40 + 0.8 * (40 + 215 * 0.5))).max() <= 1
    dark = apply_crack(image, mask, base_alpha=0.8, max_darken=0.5,
                       max_color_shift=[0.0, 0.0, 0.0], edge_fade=2.0)
    assert dark[mask].max() < 40 < out[mask].min()


def test_bright_share_follows_config_and_leaves_dark_cracks_unchanged():
    foreground = np.ones((96, 96), dtype=bool)
    default = [sample_crack_params(np.random.default_rng(seed), foreground) for seed in range(200)]
    share = np.mean([params["bright"] for params in default])
    assert abs(share - CrackConfig().bright_prob) < 0.1
    dark_only = [sample_crack_params(np.random.default_rng(seed), foreground, CrackConfig(bright_prob=0.0))
                 for seed in range(200)]
    assert not any(params["bright"] for params in dark_only)
    # The flag is drawn last: every other parameter is the same with or without it.
    for with_flag, without in zip(default, dark_only):
        assert {k: v for k, v in with_flag.items() if k != "bright"} == \
            {k: v for k, v in without.items() if k != "bright"}


def test_params_recorded_before_bright_cracks_render_dark():
    params = dict(sample_crack_params(np.random.default_rng(5), FOREGROUND), bright=False)
    dark_image, dark_mask = render_crack(IMAGE, FOREGROUND, params)
    legacy = {k: v for k, v in params.items() if k != "bright"}
    image, mask = render_crack(IMAGE, FOREGROUND, legacy)
    assert np.array_equal(image, dark_image) and np.array_equal(mask, dark_mask)
    bright_image, bright_mask = render_crack(IMAGE, FOREGROUND, dict(params, bright=True))
    assert np.array_equal(bright_mask, dark_mask)
    luma = np.array([0.299, 0.587, 0.114])
    assert (bright_image[dark_mask] @ luma).mean() > (IMAGE[dark_mask] @ luma).mean() > \
        (dark_image[dark_mask] @ luma).mean()


def test_apply_crack_rejects_bad_input():
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), dtype=bool)
    kwargs = dict(base_alpha=0.8, max_darken=0.5, max_color_shift=[0, 0, 0], edge_fade=2.0)
    with pytest.raises(ValueError, match="uint8"):
        apply_crack(image.astype(np.float32), mask, **kwargs)
    with pytest.raises(ValueError, match="does not match"):
        apply_crack(image, mask[:8], **kwargs)
    with pytest.raises(ValueError, match="max_color_shift"):
        apply_crack(image, mask, **dict(kwargs, max_color_shift=[1, 2]))
    with pytest.raises(ValueError, match="base_alpha"):
        apply_crack(image, mask, **dict(kwargs, base_alpha=1.5))


# --- sampling, rendering and the registry --------------------------------------------


def test_crack_is_registered():
    assert ANOMALY_TYPES["crack"].render is render_crack
    assert ANOMALY_TYPES["crack"].sample_params is sample_crack_params


def test_sampled_params_are_plain_and_in_range():
    config = CrackConfig()
    foreground = np.zeros((512, 512), dtype=bool)
    foreground[100:400, 150:300] = True
    for seed in range(10):
        params = sample_crack_params(np.random.default_rng(seed), foreground)
        assert json.loads(json.dumps(params)) == params
        assert 1 <= len(params["start_points"]) <= 3
        assert all(foreground[r, c] for r, c in params["start_points"])
        assert params["noise_seed"] >= 1
        assert config.max_steps[0] <= params["max_steps"] <= config.max_steps[1]
        for name in ("step_size", "branch_prob", "stop_prob", "w0", "alpha", "eps",
                     "noise_scale", "base_alpha", "max_darken", "edge_fade"):
            low, high = getattr(config, name)
            assert low <= params[name] <= high, name
        assert all(config.max_color_shift[0] <= v <= config.max_color_shift[1]
                   for v in params["max_color_shift"])


def test_sampled_lengths_scale_with_image_size():
    config = CrackConfig()
    for seed in range(5):
        small = sample_crack_params(np.random.default_rng(seed), np.ones((128, 128), dtype=bool))
        large = sample_crack_params(np.random.default_rng(seed), np.ones((1024, 1024), dtype=bool))
        # Crack length: max_steps scales by min(H, W) / 512 (floored at min_max_steps).
        assert config.min_max_steps <= small["max_steps"] <= round(config.max_steps[1] / 4)
        assert 2 * config.max_steps[0] <= large["max_steps"] <= 2 * config.max_steps[1]
        # Widths grow with large images but never shrink below the 512 ranges.
        assert config.w0[0] <= small["w0"] <= config.w0[1]
        assert 2 * config.w0[0] <= large["w0"] <= 2 * config.w0[1]
        assert config.alpha[0] / 2 <= large["alpha"] <= config.alpha[1] / 2


@pytest.mark.parametrize("seed", range(6))
def test_synthesize_crack_mask_in_foreground_and_image_unchanged_outside(seed):
    result = synthesize("crack", IMAGE, FOREGROUND, seed=seed)
    assert result.image.dtype == np.uint8 and result.image.shape == IMAGE.shape
    assert result.mask.dtype == np.bool_ and result.mask.shape == FOREGROUND.shape
    assert result.mask.sum() >= CrackConfig().min_mask_pixels
    assert not np.any(result.mask & ~FOREGROUND)
    near_mask = cv2.dilate(result.mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert np.array_equal(result.image[~near_mask], IMAGE[~near_mask])
    assert np.array_equal(result.image[~result.mask], IMAGE[~result.mask])
    assert not np.array_equal(result.image[result.mask], IMAGE[result.mask])


def test_synthesize_crack_is_deterministic():
    first = synthesize("crack", IMAGE, FOREGROUND, seed=11)
    again = synthesize("crack", IMAGE, FOREGROUND, seed=11)
    other = synthesize("crack", IMAGE, FOREGROUND, seed=12)
    assert first.image.tobytes() == again.image.tobytes()
    assert first.mask.tobytes() == again.mask.tobytes()
    assert first.params == again.params
    assert first.mask.tobytes() != other.mask.tobytes()
    assert first.params != other.params


@pytest.mark.parametrize("seed", [0, 5])
def test_params_recreate_the_sample(seed):
    first = synthesize("crack", IMAGE, FOREGROUND, seed=seed)
    params = json.loads(json.dumps(first.params))
    again = synthesize("crack", IMAGE, FOREGROUND, seed=seed + 1000, **params)
    assert again.image.tobytes() == first.image.tobytes()
    assert again.mask.tobytes() == first.mask.tobytes()


def test_tiny_foreground_raises_synthesis_error():
    foreground = np.zeros((SIZE, SIZE), dtype=bool)
    foreground[50:52, 60:62] = True
    with pytest.raises(SynthesisError, match="crack"):
        synthesize("crack", IMAGE, foreground, seed=0)


def test_render_rejects_start_point_off_foreground():
    params = synthesize("crack", IMAGE, FOREGROUND, seed=0).params
    params = dict(params, start_points=[[0, 0]])
    with pytest.raises(PlacementError, match="start point"):
        render_crack(IMAGE, FOREGROUND, params)


@pytest.mark.parametrize(
    "image, foreground, match",
    [
        (IMAGE, np.zeros((SIZE, SIZE), dtype=bool), "empty"),
        (IMAGE.astype(np.float32), FOREGROUND, "uint8"),
        (IMAGE[..., 0], FOREGROUND, "shape"),
        (IMAGE, FOREGROUND[:50], "does not match"),
    ],
)
def test_synthesize_crack_rejects_bad_input(image, foreground, match):
    with pytest.raises(ValueError, match=match):
        synthesize("crack", image, foreground, seed=0)


blobs = st.lists(
    st.tuples(st.integers(12, 84), st.integers(12, 84), st.integers(10, 30)),
    min_size=1, max_size=4,
)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), discs=blobs)
def test_crack_properties_over_random_blobs(seed, discs):
    foreground = _disc_union((96, 96), discs)
    image = IMAGE[:96, :96]
    result = synthesize("crack", image, foreground, seed=seed)
    assert result.mask.any()
    assert not np.any(result.mask & ~foreground)
    assert np.array_equal(result.image[~result.mask], image[~result.mask])
    again = synthesize("crack", image, foreground, seed=seed, **result.params)
    assert again.image.tobytes() == result.image.tobytes()
