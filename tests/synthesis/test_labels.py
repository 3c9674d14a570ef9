"""Label truthfulness for every anomaly type, and dent-label statistics (issue 10)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from maphc2f_data.sources.demo import RENDERED_CATEGORIES, render_demo_image
from maphc2f_data.synthesis import ANOMALY_TYPES, synthesize

SIZE = 192
SEEDS = range(4)
#: Visible change: the largest channel moved by more than this (uint8 grey levels).
VISIBLE = 12


def _demo_scene(category: str):
    rendered = render_demo_image(category, "train", "good", 0)
    image = cv2.resize(rendered.image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    foreground = cv2.resize(rendered.foreground.astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    return image, foreground.astype(bool)


def round_bottle_from_above(size: int = 256, seed: int = 0):
    """A round bottle seen from above: shaded concentric rings around a dark mouth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    radius = np.hypot(yy - size / 2, xx - size / 2) / (0.42 * size)  # 1 at the outer rim
    grey = 70 + 150 * np.clip(1.0 - radius, 0, 1) ** 0.3  # glass brightening inwards
    grey += 40 * np.cos(radius * 9 * np.pi) * (radius < 1)  # rings of the shoulder and neck
    grey[radius < 0.3] = 35  # the mouth
    grey += cv2.GaussianBlur(rng.normal(0, 14, (size, size)).astype(np.float32), (0, 0), 1.2)
    image = np.clip(np.stack([grey, grey * 0.97, grey * 0.9], axis=2), 0, 255).astype(np.uint8)
    return image, radius < 1.0


SCENES = {name: _demo_scene(name) for name in RENDERED_CATEGORIES}
SCENES["round_bottle"] = round_bottle_from_above()


def _visible(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2) > VISIBLE


@pytest.mark.parametrize("kind", sorted(ANOMALY_TYPES))
def test_at_most_one_percent_of_visible_change_is_unlabelled(kind):
    # Every registered type, so a future one inherits the rule.
    changed = unlabelled = 0
    for name, (image, foreground) in SCENES.items():
        for seed in SEEDS:
            result = synthesize(kind, image, foreground, seed=seed)
            visible = _visible(image, result.image)
            changed += int(visible.sum())
            unlabelled += int((visible & ~result.mask).sum())
    assert changed > 0
    assert unlabelled <= 0.01 * changed, f"{kind}: {unlabelled} of {changed} visible pixels unlabelled"


def _solidity(mask: np.ndarray) -> float:
    hull = cv2.convexHull(cv2.findNonZero(mask.astype(np.uint8)))
    hull_mask = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(hull_mask, [hull], 1)
    return float(mask.sum() / hull_mask.sum())


@pytest.mark.parametrize("name", sorted(SCENES))
def test_dent_labels_are_small_solid_blobs_that_visibly_change(name):
    image, foreground = SCENES[name]
    for seed in SEEDS:
        result = synthesize("deformation", image, foreground, seed=seed)
        mask = result.mask
        assert result.params["partial"]
        assert 0.003 <= mask.mean() <= 0.10, f"seed {seed}: area {mask.mean():.4f}"
        assert _solidity(mask) >= 0.7
        assert ndimage.label(mask, np.ones((3, 3)))[1] <= 3
        change = np.abs(image.astype(np.int16) - result.image.astype(np.int16)).max(axis=2)
        assert change[mask].mean() >= 8.0
        # Most of the dent is on the object.
        assert foreground[mask].mean() >= 0.7
