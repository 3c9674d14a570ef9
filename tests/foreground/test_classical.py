"""The classical foreground fallback, measured on objects with known masks.

``render_scene`` draws an object (ellipse, hex nut with a bore, rounded
rectangle, capsule) on a lit, textured, noisy backdrop with 4x supersampled
edges, so its exact mask is known; ``scripts/bench_foreground.py`` reuses it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import data as skdata

from maphc2f_data.foreground.classical import (
    DEFAULT_CONFIG,
    MIN_IMAGE_SIDE,
    ClassicalConfig,
    ClassicalForeground,
    background_distance,
    classical_foreground,
    frame_contact,
    tidy_mask,
)

SCENE_KINDS = ("ellipse", "nut", "rounded_rect", "capsule")
# (backdrop RGB, object RGB); each scene may swap them.
COLOUR_PAIRS = (
    ((200, 200, 195), (70, 60, 50)),
    ((30, 30, 35), (190, 180, 160)),
    ((120, 125, 130), (170, 90, 40)),
    ((60, 90, 60), (220, 210, 80)),
    ((230, 230, 235), (150, 160, 175)),
    ((45, 40, 70), (120, 170, 200)),
    ((140, 140, 140), (95, 95, 105)),
)
_SUPERSAMPLE = 4


def _coverage(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Fraction of each pixel the object covers, float (size, size)."""
    n = size * _SUPERSAMPLE
    ys, xs = (np.mgrid[0:n, 0:n].astype(np.float64) + 0.5) / _SUPERSAMPLE
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    angle = rng.uniform(0, np.pi)
    u = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
    v = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
    if kind == "ellipse":
        a, b = rng.uniform(0.25, 0.35) * size, rng.uniform(0.18, 0.28) * size
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1
    elif kind == "nut":  # hexagon with a bore that shows the backdrop
        radius = rng.uniform(0.28, 0.36) * size
        support = np.max([np.abs(u * np.cos(k * np.pi / 3) + v * np.sin(k * np.pi / 3)) for k in range(3)], axis=0)
        bore = rng.uniform(0.38, 0.45) * radius
        inside = (support <= radius * np.cos(np.pi / 6)) & (u**2 + v**2 > bore**2)
    elif kind == "rounded_rect":
        half_w, half_h = rng.uniform(0.22, 0.34) * size, rng.uniform(0.15, 0.25) * size
        corner = rng.uniform(0.05, 0.1) * size
        qx, qy = np.abs(u) - (half_w - corner), np.abs(v) - (half_h - corner)
        inside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) <= corner
    elif kind == "capsule":
        half_length, radius = rng.uniform(0.18, 0.26) * size, rng.uniform(0.09, 0.14) * size
        inside = np.hypot(np.maximum(np.abs(u) - half_length, 0), v) <= radius
    else:
        raise ValueError(kind)
    return inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float, amplitude: float) -> np.ndarray:
    field = ndi.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return field / (field.std() + 1e-12) * amplitude


def render_scene(kind: str, rng: np.random.Generator, size: int = 128):
    """One object on a textured backdrop and its exact mask.

    Parameters
    ----------
    kind : {"ellipse", "nut", "rounded_rect", "capsule"}
    rng : np.random.Generator
    size : int

    Returns
    -------
    image : ndarray of uint8, shape (size, size, 3)
    mask : ndarray of bool, shape (size, size)
        Pixels at least half covered by the object.
    """
    coverage = _coverage(kind, size, rng)
    backdrop_rgb, object_rgb = COLOUR_PAIRS[rng.integers(len(COLOUR_PAIRS))]
    if rng.random() < 0.5:
        backdrop_rgb, object_rgb = object_rgb, backdrop_rgb
    ys, xs = np.mgrid[0:size, 0:size] / size
    light = (rng.uniform(-1, 1) * (xs - 0.5) + rng.uniform(-1, 1) * (ys - 0.5)) * 30
    frequency, direction = rng.uniform(0.15, 0.4), rng.uniform(0, np.pi)
    weave = 6 * np.sin(2 * np.pi * frequency * size * (xs * np.cos(direction) + ys * np.sin(direction)))
    backdrop = np.array(backdrop_rgb, float) + (light + weave + _smooth_noise(rng, size, 8, 6))[..., None]
    highlight = 25 * np.exp(-((xs - 0.45) ** 2 + (ys - 0.4) ** 2) / 0.02)
    surface = np.array(object_rgb, float) + (_smooth_noise(rng, size, 3, 10) + highlight)[..., None]
    image = backdrop * (1 - coverage[..., None]) + surface * coverage[..., None]
    image += rng.normal(0, 5, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), coverage >= 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


# ---------------------------------------------------------------------------
# Accuracy on rendered objects with known masks
# ---------------------------------------------------------------------------
def test_mean_iou_on_rendered_objects_is_at_least_0_9():
    rng = np.random.default_rng(20240601)
    scores = {kind: [] for kind in SCENE_KINDS}
    for index in range(16):
        kind = SCENE_KINDS[index % len(SCENE_KINDS)]
        image, truth = render_scene(kind, rng)
        scores[kind].append(iou(classical_foreground(image), truth))
    everything = np.concatenate([np.array(v) for v in scores.values()])
    assert everything.mean() >= 0.9, scores
    assert everything.min() >= 0.8, scores


def test_bore_of_a_nut_stays_open_but_object_is_solid():
    image, truth = render_scene("nut", np.random.default_rng(3))
    mask = classical_foreground(image)
    bore = ndi.binary_fill_holes(truth) & ~truth
    assert bore.sum() > 100
    assert mask[bore].mean() < 0.2
    assert mask[ndi.binary_erosion(truth, iterations=2)].mean() > 0.97


def test_downscaled_work_resolution_keeps_shape_and_accuracy():
    # 384x320 > work_size: computed at 192 px long side, upsampled back.
    rng = np.random.default_rng(9)
    image, truth = render_scene("ellipse", rng, size=384)
    image = np.ascontiguousarray(image[32:352])
    truth = truth[32:352]
    mask = classical_foreground(image)
    assert mask.shape == (320, 384) and mask.dtype == np.bool_
    assert iou(mask, truth) >= 0.9


@pytest.mark.parametrize("category", ["nut", "bottle_cap", "capsule", "pcb"])
def test_rendered_demo_objects(category):
    from maphc2f_data.sources.demo import DemoSource

    source = DemoSource()
    item = source.train_images(category)[0]
    truth = source.known_foreground(item)
    assert iou(classical_foreground(source.load_image(item)), truth) >= 0.85


# ---------------------------------------------------------------------------
# Photographs: non-trivial, never the whole frame
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["coffee", "coins"])
def test_photographs_give_a_non_trivial_foreground(name):
    image = _rgb(getattr(skdata, name)())
    image = cv2.resize(image, (192, 128), interpolation=cv2.INTER_AREA)
    mask = classical_foreground(image)
    assert 0.05 <= mask.mean() <= 0.95


def test_coins_keeps_many_coins():
    image = _rgb(skdata.coins())
    mask = classical_foreground(image)
    _, count = ndi.label(mask)
    assert count >= 10  # several components of similar size all survive


# ---------------------------------------------------------------------------
# Giving up, determinism, validation
# ---------------------------------------------------------------------------
def test_plain_image_gives_the_whole_image():
    image = np.random.default_rng(0).normal(120, 3, (64, 80, 3)).clip(0, 255).astype(np.uint8)
    assert classical_foreground(image).all()


def test_image_below_minimum_side_gives_the_whole_image():
    image = np.zeros((MIN_IMAGE_SIDE - 1, 40, 3), np.uint8)
    image[5:9, 10:20] = 255
    mask = classical_foreground(image)
    assert mask.shape == image.shape[:2] and mask.all()


def test_same_image_gives_identical_mask_even_after_other_opencv_randomness():
    rng = np.random.default_rng(5)
    image, _ = render_scene("capsule", rng)
    other, _ = render_scene("nut", rng)
    first = classical_foreground(image)
    classical_foreground(other)  # GrabCut on another image moves OpenCV's RNG
    cv2.randu(np.zeros((8, 8), np.float32), 0, 1)
    assert np.array_equal(first, classical_foreground(image))


def test_grabcut_off_still_finds_the_object():
    image, truth = render_scene("rounded_rect", np.random.default_rng(11))
    mask = classical_foreground(image, config=ClassicalConfig(grabcut_iterations=0))
    assert iou(mask, truth) >= 0.85


@pytest.mark.parametrize(
    "image",
    [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8), np.zeros((32, 32, 4), np.uint8)],
    ids=["float", "gray", "rgba"],
)
def test_rejects_non_rgb_uint8(image):
    with pytest.raises(ValueError, match="image must"):
        classical_foreground(image)


def test_extractor_records_method_and_keys_cache_by_settings():
    extractor = ClassicalForeground()
    assert extractor.method == "classical"
    assert extractor.cache_key.startswith("classical-")
    assert ClassicalForeground().cache_key == extractor.cache_key
    assert ClassicalForeground(ClassicalConfig(grabcut_iterations=0)).cache_key != extractor.cache_key
    image, _ = render_scene("ellipse", np.random.default_rng(1))
    assert np.array_equal(extractor(image), classical_foreground(image))


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------
def test_background_distance_is_small_on_backdrop_and_large_on_object():
    image, truth = render_scene("ellipse", np.random.default_rng(2))
    distance = background_distance(image)
    assert distance.dtype == np.float32 and distance.shape == truth.shape
    core = ndi.binary_erosion(truth, iterations=3)
    backdrop = ~ndi.binary_dilation(truth, iterations=3)
    assert np.median(distance[backdrop]) < 2.5
    assert np.median(distance[core]) > 4 * np.median(distance[backdrop])


def test_background_distance_ignores_a_light_gradient():
    ys, xs = np.mgrid[0:96, 0:96]
    ramp = (60 + 80 * xs / 95 + 20 * (ys / 95) ** 2)[..., None] * np.ones(3)
    noise = np.random.default_rng(0).normal(0, 2, ramp.shape)
    image = np.clip(ramp + noise, 0, 255).astype(np.uint8)
    assert np.percentile(background_distance(image), 99) < 5


def test_tidy_mask_rules():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 20:80] = True
    mask[45:47, 45:47] = False  # small hole: filled
    mask[28:42, 60:74] = False  # large hole (196 px > 1% of 10000): kept
    mask[90, 5] = True  # speck: removed by opening
    mask[0:100, 0:2] = True  # strip along the left edge: < half the frame, but small
    out = tidy_mask(mask, DEFAULT_CONFIG)
    assert out[46, 46]
    assert not out[35, 67]
    assert not out[90, 5]
    # The 2-px strip is far smaller than keep_ratio x the square -> dropped.
    assert not out[50, 1]
    frame_hog = np.ones((50, 50), bool)
    frame_hog[10:40, 10:40] = False
    assert frame_contact(frame_hog) == 1.0
    assert not tidy_mask(frame_hog).any()
