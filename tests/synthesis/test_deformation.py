"""Deformation anomalies: TPS field (eq. 8), warp, inpainting, Algorithm 5, registry contract."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import data

from maphc2f_data.synthesis import ANOMALY_TYPES, SynthesisError, synthesize
from maphc2f_data.synthesis.base import PlacementError
from maphc2f_data.synthesis.deformation import (
    DEFORMATION,
    DeformationConfig,
    border_taper,
    circle_anchors,
    deformation_label,
    image_light_angle,
    inpaint_uncovered,
    radial_taper,
    render_deformation,
    roi_border_anchors,
    sample_deformation_params,
    tps_displacement,
    visible_change_mask,
    warp_roi,
)

SIZE = 112
BACKGROUND = np.array([70, 110, 90], np.uint8)
OBJECT = np.array([200, 120, 50], np.uint8)


def object_scene(size: int = SIZE, seed: int = 0) -> "tuple[np.ndarray, np.ndarray]":
    """A textured ellipse (the object) on a differently textured background."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.integers(0, 60, (size, size, 3), dtype=np.uint8), (0, 0), 1.0)
    foreground = np.zeros((size, size), np.uint8)
    cv2.ellipse(foreground, (size // 2, size // 2), (size // 3, size // 4), 20.0, 0, 360, 1, -1)
    foreground = foreground.astype(bool)
    colour = np.where(foreground[..., None], OBJECT, BACKGROUND)
    image = (colour - 30 + noise).astype(np.uint8)
    return image, foreground


OBJECT_IMAGE, OBJECT_FOREGROUND = object_scene()
# A photo with the whole image as foreground, i.e. a texture image.
PHOTO = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
PHOTO_FOREGROUND = np.ones((SIZE, SIZE), dtype=bool)
SCENES = {"object": (OBJECT_IMAGE, OBJECT_FOREGROUND), "photo": (PHOTO, PHOTO_FOREGROUND)}


def largest_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)


def assert_valid_sample(image, foreground, result) -> None:
    params = result.params
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape
    assert result.mask.dtype == np.bool_ and result.mask.shape == foreground.shape
    # Byte-identical outside the label's paste_reach dilation.
    reach = params["paste_reach"]
    near = cv2.dilate(result.mask.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) > 0
    assert np.array_equal(result.image[~near], image[~near])
    # No visible change outside the label; a visible one inside it.
    change = largest_change(image, result.image)
    assert not (change[~result.mask] > params["diff_threshold"]).any()
    assert change[result.mask].mean() >= params["min_mean_change"]
    assert result.mask.sum() >= params["min_label_pixels"]
    if params["partial"]:
        # A dent stays inside its disc (plus the closing) and its points too.
        cy, cx = params["centre"]
        ys, xs = np.nonzero(result.mask)
        reach_px = params["radius"] + params["closing_radius"] + params["paste_reach"] + 1
        assert np.hypot(ys - cy, xs - cx).max() <= reach_px
        assert foreground[cy, cx]
    json.dumps(params)


# --------------------------------------------------------------------------
# Field helpers
# --------------------------------------------------------------------------


def realistic_points(rng, shape, count, max_offset):
    """Control points kept 2*max_offset from the border and from each other, as sampled."""
    height, width = shape
    inset, spacing = 2 * max_offset, 2 * max_offset
    points = []
    while len(points) < count:
        candidate = rng.integers([inset, inset], [height - inset, width - inset])
        if all(np.hypot(*(candidate - p)) >= spacing for p in points):
            points.append(candidate)
    src = np.array(points, dtype=np.float64)
    angles = rng.uniform(0, 2 * np.pi, count)
    lengths = rng.uniform(0.4, 1.0, count) * max_offset
    dst = np.round(src + np.column_stack([lengths * np.sin(angles), lengths * np.cos(angles)]))
    return src, dst


def test_tps_interpolates_control_points_and_keeps_anchors_fixed():
    shape = (90, 120)
    src, dst = realistic_points(np.random.default_rng(3), shape, count=4, max_offset=9)
    anchors = roi_border_anchors(shape, spacing=8)
    all_src, all_dst = np.vstack([src, anchors]), np.vstack([dst, anchors])
    rows, cols = dst[:, 0].astype(int), dst[:, 1].astype(int)
    anchor_rows, anchor_cols = anchors[:, 0].astype(int), anchors[:, 1].astype(int)

    dense_dy, dense_dx = tps_displacement(all_src, all_dst, shape, grid_step=1)
    assert dense_dy.dtype == np.float32 and dense_dy.shape == shape
    np.testing.assert_allclose(dense_dy[rows, cols], (dst - src)[:, 0], atol=1e-3)
    np.testing.assert_allclose(dense_dx[rows, cols], (dst - src)[:, 1], atol=1e-3)
    # Exact up to the conditioning of the spline system (pixel units).
    assert np.abs(dense_dy[anchor_rows, anchor_cols]).max() < 1e-2
    assert np.abs(dense_dx[anchor_rows, anchor_cols]).max() < 1e-2

    coarse_dy, coarse_dx = tps_displacement(all_src, all_dst, shape, grid_step=4)
    np.testing.assert_allclose(coarse_dy[rows, cols], (dst - src)[:, 0], atol=0.5)
    np.testing.assert_allclose(coarse_dx[rows, cols], (dst - src)[:, 1], atol=0.5)
    assert np.abs(coarse_dy[anchor_rows, anchor_cols]).max() < 0.25
    assert np.abs(coarse_dx[anchor_rows, anchor_cols]).max() < 0.25
    # The map p - d(p) sends dst to src: the control point moves src -> dst.
    moved_to = dst - np.column_stack([dense_dy[rows, cols], dense_dx[rows, cols]])
    np.testing.assert_allclose(moved_to, src, atol=1e-3)


def test_tps_displacement_rejects_bad_arguments():
    points = np.array([[1.0, 1.0], [5.0, 1.0], [1.0, 5.0]])
    with pytest.raises(ValueError, match="shape"):
        tps_displacement(points, points[:2], (8, 8))
    with pytest.raises(ValueError, match="grid_step"):
        tps_displacement(points, points, (8, 8), grid_step=0)
    with pytest.raises(ValueError, match="shape must be positive"):
        tps_displacement(points, points, (0, 8))


def test_roi_border_anchors_cover_the_border():
    anchors = roi_border_anchors((30, 50), spacing=8)
    on_border = np.isin(anchors[:, 0], [0, 29]) | np.isin(anchors[:, 1], [0, 49])
    assert on_border.all()
    assert len(np.unique(anchors, axis=0)) == len(anchors)
    for corner in ([0, 0], [0, 49], [29, 0], [29, 49]):
        assert (anchors == corner).all(axis=1).any()
    top = np.sort(anchors[anchors[:, 0] == 0][:, 1])
    assert np.diff(top).max() <= 8
    with pytest.raises(ValueError):
        roi_border_anchors((1, 10), spacing=4)


def test_border_taper_is_zero_on_the_border_and_one_inside():
    taper = border_taper((20, 30), width=5.0)
    assert taper.dtype == np.float32
    assert not taper[[0, -1]].any() and not taper[:, [0, -1]].any()
    assert np.all(taper[5:-5, 5:-5] == 1.0)
    assert np.all(np.diff(taper[10, :15]) >= 0)
    with pytest.raises(ValueError):
        border_taper((5, 5), width=0.0)


def test_warp_roi_zero_field_is_identity_and_shift_moves_content():
    image, mask = OBJECT_IMAGE[20:80, 10:90], OBJECT_FOREGROUND[20:80, 10:90]
    zero = np.zeros(mask.shape, np.float32)
    warped, warped_mask = warp_roi(image, mask, zero, zero)
    assert np.array_equal(warped, image) and np.array_equal(warped_mask, mask)
    # A constant field d = (0, 3): output pixel p shows input pixel p - (0, 3).
    warped, warped_mask = warp_roi(image, mask, zero, zero + 3)
    assert np.array_equal(warped[:, 3:], image[:, :-3])
    assert np.array_equal(warped_mask[:, 3:], mask[:, :-3])
    with pytest.raises(ValueError, match="shape mismatch"):
        warp_roi(image, mask, zero[1:], zero)


# --------------------------------------------------------------------------
# Inpainting and the label
# --------------------------------------------------------------------------


@pytest.mark.parametrize("max_side", [256, 24])  # full resolution and the reduced-resolution path
def test_inpaint_uncovered_fills_with_background_not_object(max_side):
    image = np.empty((60, 60, 3), np.uint8)
    image[:] = BACKGROUND
    roi_mask = np.zeros((60, 60), bool)
    roi_mask[15:45, 15:45] = True
    image[roi_mask] = OBJECT
    uncovered = np.zeros_like(roi_mask)
    uncovered[15:45, 40:45] = True  # the object's right edge retreated by 5 px
    band = 5 + 2 * 2.0 + 1  # hole width + 2 * radius + 1, as render_deformation picks it
    filled = inpaint_uncovered(image, roi_mask, uncovered, radius=2.0, band=band, max_side=max_side)
    to_background = np.abs(filled[uncovered].astype(int) - BACKGROUND).max()
    assert to_background <= 10
    assert np.array_equal(filled[~roi_mask], image[~roi_mask])
    # Object pixels beyond the band are left alone.
    assert np.array_equal(filled[15:45, 15:25], image[15:45, 15:25])
    nothing = np.zeros_like(roi_mask)
    untouched = inpaint_uncovered(image, roi_mask, nothing, radius=2.0, band=4, max_side=max_side)
    assert np.array_equal(untouched, image)


def test_visible_change_mask_thresholds_and_drops_small_pieces():
    before = np.full((20, 20, 3), 100, np.uint8)
    after = before.copy()
    after[2:8, 2:8, 1] = 130  # visible blob
    after[12:18, 12:18, 0] = 110  # change of 10 <= threshold 12
    after[15, 3:6, 2] = 250  # a 3-pixel speck
    after[10:12, 10:14, 2] = 250  # an 8-pixel piece: kept
    change = visible_change_mask(before, after, 12, min_speck=8)
    expected = np.zeros((20, 20), bool)
    expected[2:8, 2:8] = True
    expected[10:12, 10:14] = True
    assert np.array_equal(change, expected)


def test_radial_taper_and_circle_anchors():
    taper = radial_taper((41, 41), (20, 20), 20.0, 0.5)
    assert taper.dtype == np.float32 and taper[20, 20] == 1.0
    assert taper[20, 30] == 1.0 and taper[20, 40] == 0.0 and taper[0, 0] == 0.0
    assert np.all(np.diff(taper[20, 20:]) <= 0)
    anchors = circle_anchors((5.0, 7.0), 10.0, 4.0)
    np.testing.assert_allclose(np.hypot(anchors[:, 0] - 5, anchors[:, 1] - 7), 10.0)
    assert len(anchors) == 16
    with pytest.raises(ValueError):
        radial_taper((5, 5), (2, 2), 2.0, 0.0)


def test_deformation_label_closes_fills_and_labels_nearby_change():
    before = np.zeros((30, 30, 3), np.uint8)
    after = before.copy()
    moved = np.zeros((30, 30), bool)
    moved[10:20, 10:20] = True
    moved[14:16, 14:16] = False  # a hole: filled
    moved[12:18, 15] = False  # a slit: closed
    after[9, 15] = 60  # visible, right next to the region: labelled
    after[25, 25] = 60  # visible but far away: not kept
    label, keep = deformation_label(moved, before, after, closing_radius=1, paste_reach=1, diff_threshold=12)
    expected = np.zeros((30, 30), bool)
    expected[10:20, 10:20] = True
    expected[9, 15] = True
    assert np.array_equal(label, expected)
    assert keep[9:21, 9:21].all() and not keep[25, 25]


# --------------------------------------------------------------------------
# Sampling and rendering (Algorithm 5) through the registry
# --------------------------------------------------------------------------


def test_registered_under_its_name():
    assert ANOMALY_TYPES["deformation"] is DEFORMATION
    assert DEFORMATION.render is render_deformation


@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthesize_gives_a_valid_local_sample(scene, seed):
    image, foreground = SCENES[scene]
    result = synthesize("deformation", image, foreground, seed=seed)
    assert_valid_sample(image, foreground, result)


def test_dent_is_the_default_and_the_whole_object_variant_is_explicit():
    flags = {
        sample_deformation_params(np.random.default_rng(seed), OBJECT_FOREGROUND)["partial"]
        for seed in range(12)
    }
    assert flags == {True}
    whole = synthesize("deformation", OBJECT_IMAGE, OBJECT_FOREGROUND, seed=3, partial=False)
    assert_valid_sample(OBJECT_IMAGE, OBJECT_FOREGROUND, whole)
    dent = synthesize("deformation", OBJECT_IMAGE, OBJECT_FOREGROUND, seed=3)
    # The whole object bends: a larger label than a dent's.
    assert whole.mask.sum() > dent.mask.sum()
    config = DeformationConfig(partial=False)
    assert not sample_deformation_params(np.random.default_rng(0), OBJECT_FOREGROUND, config)["partial"]


def test_same_seed_same_sample_and_seeds_differ():
    first = synthesize("deformation", PHOTO, PHOTO_FOREGROUND, seed=7)
    second = synthesize("deformation", PHOTO, PHOTO_FOREGROUND, seed=7)
    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.mask, second.mask)
    assert first.params == second.params
    other = synthesize("deformation", PHOTO, PHOTO_FOREGROUND, seed=8)
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_params_round_trip_through_json(scene):
    image, foreground = SCENES[scene]
    result = synthesize("deformation", image, foreground, seed=11)
    params = json.loads(json.dumps(result.params))
    again = synthesize("deformation", image, foreground, seed=999, **params)
    assert np.array_equal(again.image, result.image)
    assert np.array_equal(again.mask, result.mask)


def test_overriding_max_offset_rescales_the_push():
    result = synthesize("deformation", OBJECT_IMAGE, OBJECT_FOREGROUND, seed=2)
    params = dict(result.params, max_offset=result.params["max_offset"] * 1.5)
    stronger = synthesize("deformation", OBJECT_IMAGE, OBJECT_FOREGROUND, seed=2, **params)
    # The label is the shaded disc either way; the stronger push changes more.
    assert stronger.mask.sum() >= result.mask.sum()
    stronger_change = largest_change(OBJECT_IMAGE, stronger.image).sum()
    assert stronger_change > largest_change(OBJECT_IMAGE, result.image).sum()
    with pytest.raises(SynthesisError, match="too faint|moved only"):
        synthesize("deformation", OBJECT_IMAGE, OBJECT_FOREGROUND, seed=2, max_offset=0.0, shading=0.0)


def test_bad_inputs_raise_value_error():
    empty = np.zeros((SIZE, SIZE), bool)
    with pytest.raises(ValueError, match="empty"):
        synthesize("deformation", OBJECT_IMAGE, empty, seed=0)
    with pytest.raises(ValueError, match="empty"):
        sample_deformation_params(np.random.default_rng(0), empty)
    with pytest.raises(ValueError, match="uint8"):
        synthesize("deformation", OBJECT_IMAGE.astype(np.float32), OBJECT_FOREGROUND, seed=0)
    with pytest.raises(ValueError, match="bool or integer"):
        sample_deformation_params(np.random.default_rng(0), OBJECT_FOREGROUND.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        sample_deformation_params(np.random.default_rng(0), OBJECT_FOREGROUND[..., None])


def test_malformed_params_raise_value_error_and_no_points_placement_error():
    params = sample_deformation_params(np.random.default_rng(0), OBJECT_FOREGROUND)
    with pytest.raises(ValueError, match="centre"):
        render_deformation(OBJECT_IMAGE, OBJECT_FOREGROUND, dict(params, centre=[SIZE + 5, 10]))
    far = [[params["centre"][0], params["centre"][1] + int(params["radius"]) + 3]]
    with pytest.raises(ValueError, match="src_points"):
        render_deformation(OBJECT_IMAGE, OBJECT_FOREGROUND, dict(params, src_points=far, offsets=[[0.0, 1.0]]))
    with pytest.raises(ValueError, match="offsets"):
        render_deformation(OBJECT_IMAGE, OBJECT_FOREGROUND, dict(params, offsets=[]))
    with pytest.raises(PlacementError, match="no control point"):
        render_deformation(OBJECT_IMAGE, OBJECT_FOREGROUND, dict(params, src_points=[], offsets=[]))


def test_tiny_foreground_raises_synthesis_error():
    # A few pixels cannot show min_label_pixels of visible change: every
    # sub-seed fails to place, which is a SynthesisError (documented).
    tiny = np.zeros((SIZE, SIZE), bool)
    tiny[50:52, 60:62] = True
    with pytest.raises(SynthesisError, match="deformation"):
        synthesize("deformation", OBJECT_IMAGE, tiny, seed=0)


def test_config_is_frozen_and_validated():
    config = DeformationConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.margin = 3.0
    with pytest.raises(ValueError, match="dent_taper"):
        DeformationConfig(dent_taper=0.0)
    with pytest.raises(ValueError, match="dent_radius_fraction"):
        DeformationConfig(dent_radius_fraction=(0.3, 0.1))
    with pytest.raises(ValueError, match="num_ctrl_points"):
        DeformationConfig(num_ctrl_points=(5, 2))
    with pytest.raises(ValueError, match="max_offset"):
        DeformationConfig(max_offset=(0.0, 3.0))
    with pytest.raises(ValueError, match="ctrl_border_inset"):
        DeformationConfig(ctrl_border_inset=1.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), scene=st.sampled_from(sorted(SCENES)))
def test_any_seed_gives_a_valid_sample(seed, scene):
    image, foreground = SCENES[scene]
    result = synthesize("deformation", image, foreground, seed=seed)
    assert_valid_sample(image, foreground, result)
    assert len(result.params["src_points"]) == len(result.params["offsets"]) >= 1
    assert all(np.hypot(*offset) <= 1.0 + 1e-9 for offset in result.params["offsets"])


def test_image_light_angle_points_to_the_brighter_side_and_falls_back_on_flat_light():
    ramp = np.tile(np.linspace(40, 220, 64, dtype=np.float32), (64, 1))
    rightwards = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)
    assert image_light_angle(rightwards, (32, 32), 8.0, fallback=2.0) == pytest.approx(0.0, abs=1e-6)
    downwards = np.ascontiguousarray(rightwards.transpose(1, 0, 2))
    assert image_light_angle(downwards, (32, 32), 8.0, fallback=2.0) == pytest.approx(np.pi / 2, abs=1e-6)
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert image_light_angle(flat, (32, 32), 8.0, fallback=2.0) == 2.0


def test_light_from_image_lights_the_dent_from_the_parts_own_light():
    ramp = np.tile(np.linspace(60, 200, SIZE, dtype=np.float32), (SIZE, 1))
    image = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)
    foreground = np.ones((SIZE, SIZE), bool)
    config = DeformationConfig(light_from_image=True, dent_shading=(0.25, 0.25))
    params = sample_deformation_params(np.random.default_rng(5), foreground, config)
    assert params["light_from_image"] is True
    assert "light_from_image" not in sample_deformation_params(np.random.default_rng(5), foreground)
    lit, lit_mask = render_deformation(image, foreground, params)
    # The same dent with the image's light direction (0: from the right) given as the angle.
    fixed = {k: v for k, v in params.items() if k != "light_from_image"}
    same, same_mask = render_deformation(image, foreground, {**fixed, "light_angle": 0.0})
    assert np.array_equal(lit, same) and np.array_equal(lit_mask, same_mask)
    # The dent's wall facing the light (its left flank, inward slope towards +x) brightens.
    cy, cx = params["centre"]
    r = int(params["radius"])
    change = lit.astype(int).mean(axis=2) - image.astype(int).mean(axis=2)
    left = change[cy - r // 3: cy + r // 3 + 1, max(cx - r, 0): cx - r // 3]
    right = change[cy - r // 3: cy + r // 3 + 1, cx + r // 3 + 1: cx + r + 1]
    assert left.mean() > right.mean()
