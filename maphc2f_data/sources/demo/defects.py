"""The demo's held-out test defects.

The test defects are made by processes that are deliberately *different*
from the three MaPhC2F generators (crack, corrosion, deformation), so a
detector trained on MaPhC2F data can be evaluated on defects it has not seen:

============  ==============================================================
defect        how it is made
============  ==============================================================
scratch       thin anti-aliased polyline, lighter or darker than the surface
dent          local height bump rendered as directional shading + occlusion
stain         blurred union of colour ellipses blended over the surface
missing       irregular chunk cut from the object edge, background shows
              through (photos: a dark hole)
cut_paste     patch cut from another category's image and pasted in
============  ==============================================================

Every maker in :data:`_DEFECT_MAKERS` is called as
``maker(image, foreground, backdrop, category, rng)`` on a normal image from
:func:`~maphc2f_data.sources.demo.scenes._render_normal` and returns
``(defective image, defect mask, foreground after the defect)``.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from maphc2f_data.sources.demo.constants import CATEGORIES, IMAGE_SIZE, TRAIN_PER_CATEGORY
from maphc2f_data.sources.demo.scenes import (
    _LIGHT,
    _SUBPIXEL,
    _SUBPIXEL_SHIFT,
    _fill_polygon,
    _fixed,
    _pixel_grid,
    _render_normal,
)

_MIN_DEFECT_PIXELS = 30
_DEFECT_TRIES = 12


def _placement_region(foreground: Optional[np.ndarray]) -> np.ndarray:
    """Where a defect may be centred: the object, or the middle of a photo."""
    if foreground is not None:
        return foreground
    region = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
    margin = IMAGE_SIZE // 5
    region[margin:-margin, margin:-margin] = True
    return region


def _pick_point(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """A random (x, y) pixel of ``region``."""
    flat = np.flatnonzero(region)
    index = int(flat[rng.integers(flat.size)])
    return np.array([index % IMAGE_SIZE, index // IMAGE_SIZE], np.float64)


def _contrasting_tone(image: np.ndarray, point: np.ndarray) -> float:
    """Dark on bright surfaces, bright on dark ones."""
    x, y = int(point[0]), int(point[1])
    patch = image[max(0, y - 8) : y + 9, max(0, x - 8) : x + 9]
    return 35.0 if patch.mean() > 120 else 235.0


def _blend(image: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """``colour`` over ``image`` with coverage ``alpha`` (float (H, W)); uint8 copy.

    Only the bounding box of ``alpha > 0`` is touched (defects are small).
    """
    out = image.copy()
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    if w == 0:
        return out
    box = (slice(y, y + h), slice(x, x + w))
    a = alpha[box][:, :, None]
    blended = image[box] * (1 - a) + np.asarray(colour, np.float32) * a
    out[box] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


def _clip(alpha: np.ndarray, foreground: Optional[np.ndarray]) -> np.ndarray:
    return alpha if foreground is None else alpha * foreground


def _scratch(image, foreground, backdrop, category, rng):
    start = _pick_point(rng, _placement_region(foreground))
    heading = rng.uniform(0, 2 * np.pi)
    segments = int(rng.integers(1, 4))
    step = rng.uniform(90, 200) / segments
    points = [start]
    for _ in range(segments):
        heading += rng.uniform(-0.35, 0.35)
        points.append(points[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    thickness = int(rng.integers(1, 3))
    cv2.polylines(canvas, [_fixed(np.array(points))], False, 255, thickness, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    alpha = _clip(canvas.astype(np.float32) / 255.0, foreground) * np.float32(rng.uniform(0.65, 0.9))
    tone = _contrasting_tone(image, start)
    mask = cv2.dilate((alpha > 0.1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if foreground is not None:
        mask &= foreground
    return _blend(image, alpha, (tone, tone, tone)), mask, foreground


def _dent(image, foreground, backdrop, category, rng):
    centre = _pick_point(rng, _placement_region(foreground))
    sx, sy = rng.uniform(9, 22, 2)
    theta = rng.uniform(0, np.pi)
    depth = np.float32(rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 0.7))
    occlusion = np.float32(rng.uniform(0.15, 0.25))
    # The bump is negligible beyond 4 sigma: shade only that window.
    reach = int(np.ceil(4 * max(sx, sy)))
    x, y = int(centre[0]), int(centre[1])
    window = (slice(max(0, y - reach), y + reach + 1), slice(max(0, x - reach), x + reach + 1))
    ys, xs = _pixel_grid()
    dx = xs[window] - np.float32(centre[0])
    dy = ys[window] - np.float32(centre[1])
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    a = (c * dx + s * dy) / np.float32(sx)
    b = (c * dy - s * dx) / np.float32(sy)
    height = np.exp(-0.5 * (a * a + b * b))
    # Gradient of the bump (chain rule through the rotation), dotted with the
    # light, gives the directional shading; the occlusion term darkens the pit.
    da = -a * height / np.float32(sx)
    db = -b * height / np.float32(sy)
    slope = ((c * da - s * db) * _LIGHT[0] + (s * da + c * db) * _LIGHT[1]) * np.float32((sx + sy) / 2)
    shade = 1 + depth * slope - occlusion * height
    # Where the bump has fallen to 3% the shading changes by under ~5%: the
    # label covers everything visibly dented.
    mask_window = height > 0.03
    if foreground is not None:
        shade = np.where(foreground[window], shade, np.float32(1))
        mask_window &= foreground[window]
    out = image.copy()
    out[window] = np.clip(image[window] * shade[:, :, None] + 0.5, 0, 255).astype(np.uint8)
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
    mask[window] = mask_window
    return out, mask, foreground


_STAIN_COLOURS = {"dark": ((92, 60, 32), (36, 32, 28), (60, 66, 40)), "light": ((232, 226, 208), (214, 200, 160))}


def _stain(image, foreground, backdrop, category, rng):
    centre = _pick_point(rng, _placement_region(foreground))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        offset = rng.uniform(-22, 22, 2)
        axes = rng.uniform(8, 28, 2)
        cv2.ellipse(
            canvas,
            tuple(int(v) for v in _fixed(centre + offset).reshape(2)),
            tuple(int(v) for v in np.round(axes * _SUBPIXEL)),
            float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA, _SUBPIXEL_SHIFT,
        )
    alpha = cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), float(rng.uniform(3, 7)))
    alpha = _clip(alpha, foreground) * np.float32(rng.uniform(0.5, 0.8))
    palette = _STAIN_COLOURS["dark" if _contrasting_tone(image, centre) < 128 else "light"]
    colour = palette[rng.integers(len(palette))]
    mask = alpha > 0.05
    return _blend(image, alpha, colour), mask, foreground


def _irregular_polygon(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    count = int(rng.integers(7, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(0.6, 1.0, count)
    return centre + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _missing(image, foreground, backdrop, category, rng):
    if foreground is not None:
        # A chunk broken off the edge of the object.
        edge = foreground & ~(cv2.erode(foreground.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
        centre = _pick_point(rng, edge)
    else:
        centre = _pick_point(rng, _placement_region(None))
    region = _fill_polygon(_irregular_polygon(rng, centre, rng.uniform(22, 50))) >= 0.5
    out = image.copy()
    if foreground is not None:
        mask = region & foreground
        out[mask] = backdrop[mask]
        return out, mask, foreground & ~mask
    # Photos: a hole through the material, dark with a soft inner shadow.
    alpha = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 1.5)
    tone = rng.uniform(14, 40)
    return _blend(image, alpha, (tone, tone * 0.95, tone * 0.9)), alpha > 0.05, None


def _cut_paste(image, foreground, backdrop, category, rng):
    donors = [c for c in CATEGORIES if c != category]
    donor = donors[rng.integers(len(donors))]
    donor_image, donor_fg, _ = _render_normal(donor, int(rng.integers(TRAIN_PER_CATEGORY)))
    source = _pick_point(rng, _placement_region(donor_fg))
    target = _pick_point(rng, _placement_region(foreground))
    move = np.float32([[1, 0, target[0] - source[0]], [0, 1, target[1] - source[1]]])
    shifted = cv2.warpAffine(np.ascontiguousarray(donor_image), move, (IMAGE_SIZE, IMAGE_SIZE), borderMode=cv2.BORDER_REFLECT_101)
    region = _fill_polygon(_irregular_polygon(rng, target, rng.uniform(26, 60)))
    alpha = _clip(region, foreground)
    out = image.copy()
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    box = (slice(y, y + h), slice(x, x + w))
    a = alpha[box][:, :, None]
    out[box] = np.clip(image[box] * (1 - a) + shifted[box] * a + 0.5, 0, 255).astype(np.uint8)
    return out, alpha >= 0.5, foreground


_DEFECT_MAKERS = {
    "scratch": _scratch,
    "dent": _dent,
    "stain": _stain,
    "missing": _missing,
    "cut_paste": _cut_paste,
}
