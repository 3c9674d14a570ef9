"""Rendering of the demo's normal (defect-free) images.

Two kinds of categories, all 512x512 uint8 RGB:

* **photographs shipped inside scikit-image** (``skimage.data``): the
  grayscale textures ``brick``, ``grass`` and ``gravel`` (whole image is
  foreground) and the objects ``coffee`` and ``coins``. Each image is a
  deterministic variation of the one photo: square crop, flip, small
  rotation, brightness/colour jitter.
* **procedurally rendered industrial objects** with exact foreground masks:
  ``nut`` (hex nut with a threaded hole), ``bottle_cap`` (round cap with a
  knurled rim), ``capsule`` (two-coloured pill) and ``pcb`` (green board with
  traces, pads, chips and mounting holes). Pose, size and colour vary per
  image. They get a soft drop shadow where the renderer asks for one, a
  shared camera white balance and sensor noise cut from one fixed field.

:func:`_render_normal` is the entry point: (category, variant) -> image,
foreground and the noisy backdrop (which :mod:`.defects` shows through a
missing piece). Also here: the sub-pixel drawing, shading and noise helpers
the defects reuse.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from maphc2f_data.sources.demo.constants import (
    _CATEGORY_ORDER,
    IMAGE_SIZE,
    PHOTO_CATEGORIES,
    TEXTURE_CATEGORIES,
)


# ---------------------------------------------------------------------------
# Shared drawing helpers
# ---------------------------------------------------------------------------
_SUBPIXEL_SHIFT = 4  # cv2 drawing with 1/16-pixel coordinates
_SUBPIXEL = 1 << _SUBPIXEL_SHIFT


@functools.lru_cache(maxsize=None)
def _pixel_grid(step: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (ys, xs) of a grid with ``step``-pixel spacing.

    Coordinates are in full-resolution pixels, float32 (512/step, 512/step),
    read-only; the centres match what ``cv2.resize`` (linear) assumes when it
    upsamples such a grid back to 512x512.
    """
    count = IMAGE_SIZE // step
    centres = np.arange(count, dtype=np.float32) * step + np.float32((step - 1) / 2)
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def _upsample(array: np.ndarray) -> np.ndarray:
    """A coarse grid (see :func:`_pixel_grid`) resized to 512x512, bilinear."""
    return cv2.resize(array, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float (N, 2) xy points as int32 1/16-pixel coordinates for cv2."""
    return np.round(np.asarray(points, dtype=np.float64) * _SUBPIXEL).astype(np.int32).reshape(-1, 1, 2)


def _fill_polygon(points: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], float32 (512, 512), of a filled polygon."""
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    cv2.fillPoly(canvas, [_fixed(points)], 255, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    return canvas.astype(np.float32) * np.float32(1 / 255)


def _disc(cx: float, cy: float, radius: float, step: int = 1) -> np.ndarray:
    """Anti-aliased coverage of a disc (analytic edge) on the ``step`` grid, float32."""
    dist, _, _ = _radial(cx, cy, step)
    return np.clip((np.float32(radius) - dist) / np.float32(step) + np.float32(0.5), 0.0, 1.0)


def _radial(cx: float, cy: float, step: int = 1) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance to (cx, cy) and the unit direction (ux, uy) away from it, on the ``step`` grid."""
    ys, xs = _pixel_grid(step)
    dx = xs - np.float32(cx)
    dy = ys - np.float32(cy)
    r = np.sqrt(dx * dx + dy * dy)
    safe = np.maximum(r, np.float32(1e-3))
    return r, dx / safe, dy / safe


def _jitter_colour(rng: np.random.Generator, rgb, spread: float = 12.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-spread, spread, 3).astype(np.float32), 0, 255)


#: Standard deviation of the sensor noise of rendered images (grey levels).
_NOISE_SIGMA = 2.0


@functools.lru_cache(maxsize=1)
def _noise_field() -> np.ndarray:
    """A fixed field of rounded Gaussian sensor noise, int16 (1024, 1024), read-only.

    Each image takes a seeded window of it: drawing fresh Gaussian noise costs
    several milliseconds per image, a slice costs nothing.
    """
    field = np.random.default_rng(20240611).standard_normal((2 * IMAGE_SIZE, 2 * IMAGE_SIZE), dtype=np.float32)
    field = np.round(field * np.float32(_NOISE_SIGMA)).astype(np.int16)
    field.setflags(write=False)
    return field


def _add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """uint8 RGB plus int16 (H, W) noise on every channel, saturated to uint8."""
    return cv2.add(image, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)


def _to_full_uint8(colour: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``colour`` times the per-channel ``gain`` (3,) as rounded uint8 (512, 512, 3).

    ``colour`` is uint8 at full resolution, or float RGB on any grid of
    :func:`_pixel_grid` (quantised, then upsampled: the full-resolution work
    stays in 8 bits).
    """
    if colour.dtype == np.uint8:
        return cv2.multiply(colour, (float(gain[0]), float(gain[1]), float(gain[2]), 0.0))
    out = cv2.convertScaleAbs(np.maximum(colour * gain, np.float32(0)))
    return out if out.shape[0] == IMAGE_SIZE else _upsample(out)


def _shadow_light(alpha: np.ndarray, shadow: float) -> np.ndarray:
    """Fraction of light, float32 (512, 512), left by a soft drop shadow of ``alpha``."""
    # Offset, wide blur of the coverage; ~10x cheaper at quarter resolution.
    small = cv2.resize(alpha, (IMAGE_SIZE // 4, IMAGE_SIZE // 4), interpolation=cv2.INTER_AREA)
    shift = np.float32([[1, 0, 7 / 4], [0, 1, 9 / 4]])
    small = cv2.warpAffine(small, shift, small.shape[::-1], borderMode=cv2.BORDER_CONSTANT)
    return _upsample(1 - np.float32(shadow) * cv2.GaussianBlur(small, (0, 0), 9 / 4))


def _backdrop(rng: np.random.Generator, base_rgb, spread: float) -> np.ndarray:
    """Smooth lit backdrop: jittered colour with a linear light gradient.

    float32 (64, 64, 3) on the 8-pixel grid: a linear ramp upsamples exactly.
    """
    ys, xs = _pixel_grid(8)
    colour = _jitter_colour(rng, base_rgb, spread)
    angle = rng.uniform(0, 2 * np.pi)
    cos, sin = np.float32(np.cos(angle) / IMAGE_SIZE), np.float32(np.sin(angle) / IMAGE_SIZE)
    ramp = cos * xs + sin * ys - np.float32(0.5 * (np.cos(angle) + np.sin(angle)))
    light = 1 + np.float32(rng.uniform(0.05, 0.15)) * ramp
    return light[:, :, None] * colour


# ---------------------------------------------------------------------------
# Rendered objects. Each renderer returns (object colour, coverage, backdrop
# colour, shadow strength): colours are float32 (n, n, 3) RGB on a grid of
# :func:`_pixel_grid` (upsampled later) or uint8 (512, 512, 3); coverage is
# float32 (512, 512) in [0, 1]. Edges are anti-aliased at full resolution;
# smooth shading is computed on a half-resolution grid (4x cheaper).
# ---------------------------------------------------------------------------
_SHADING_STEP = 2
_METALS = ((172, 174, 180), (196, 194, 176), (182, 152, 84), (150, 152, 160))
_CAP_COLOURS = ((196, 32, 38), (34, 76, 172), (206, 164, 52), (226, 226, 220), (40, 138, 64))
_CAPSULE_PAIRS = (
    ((190, 40, 40), (236, 232, 222)),
    ((40, 80, 170), (238, 200, 60)),
    ((226, 120, 40), (150, 150, 156)),
    ((40, 130, 90), (236, 232, 222)),
    ((120, 60, 140), (230, 190, 200)),
)
_LIGHT = np.array([-0.6, -0.8], np.float32)  # light from the upper left (x, y)


def _render_nut(rng: np.random.Generator):
    cx, cy = IMAGE_SIZE / 2 + rng.uniform(-24, 24, 2)
    circumradius = rng.uniform(150, 185)
    phase = rng.uniform(0, np.pi / 3)
    angles = phase + np.arange(6) * np.pi / 3
    hexagon = np.stack([cx + circumradius * np.cos(angles), cy + circumradius * np.sin(angles)], axis=1)
    hole_radius = circumradius * rng.uniform(0.38, 0.46)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)  # cv2 anti-aliases 8-bit images only
    cv2.fillPoly(canvas, [_fixed(hexagon)], 255, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    centre = tuple(int(v) for v in _fixed([cx, cy]).reshape(2))
    cv2.circle(canvas, centre, int(round(hole_radius * _SUBPIXEL)), 0, -1, cv2.LINE_AA, _SUBPIXEL_SHIFT)
    coverage = canvas.astype(np.float32) * np.float32(1 / 255)

    step = _SHADING_STEP
    r, ux, uy = _radial(cx, cy, step)
    facing = ux * _LIGHT[0] + uy * _LIGHT[1]
    metal = _jitter_colour(rng, _METALS[rng.integers(len(_METALS))], 10)
    # Flat top face with a gentle light gradient; the corners outside the
    # chamfer circle slope away and catch light by their facing.
    face_radius = circumradius * np.cos(np.pi / 6) * rng.uniform(0.94, 0.99)
    top = 1.0 + np.float32(0.10 / circumradius) * facing * r
    chamfer = 0.78 + 0.22 * facing
    in_face = _disc(cx, cy, face_radius, step)
    brightness = chamfer + (top - chamfer) * in_face
    # Threads: a darker ring around the hole with a fine radial ripple.
    in_threads = np.clip((np.float32(hole_radius * 1.22) - r) / np.float32(3.0), 0.0, 1.0)
    ripple = 0.62 + 0.08 * np.cos(r * np.float32(2 * np.pi / 8.0)) - 0.15 * facing
    brightness += (ripple - brightness) * in_threads
    return brightness[:, :, None] * metal, coverage, _backdrop(rng, (34, 36, 42), 8), 0.0


def _render_bottle_cap(rng: np.random.Generator):
    cx, cy = IMAGE_SIZE / 2 + rng.uniform(-24, 24, 2)
    radius = rng.uniform(140, 175)
    teeth = int(rng.integers(48, 80))
    depth = rng.uniform(4, 7)
    phase = rng.uniform(0, 2 * np.pi)
    angles = phase + np.arange(2 * teeth) * np.pi / teeth
    radii = np.where(np.arange(2 * teeth) % 2 == 0, radius, radius - depth)
    coverage = _fill_polygon(np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1))

    step = _SHADING_STEP
    r, ux, uy = _radial(cx, cy, step)
    facing = ux * _LIGHT[0] + uy * _LIGHT[1]
    colour = _jitter_colour(rng, _CAP_COLOURS[rng.integers(len(_CAP_COLOURS))], 14)
    top_radius = radius * rng.uniform(0.82, 0.88)
    in_top = _disc(cx, cy, top_radius, step)
    # Knurled skirt: brightness ripples with the teeth and slopes away from the light.
    phi = np.arctan2(uy, ux)
    knurl = 0.80 + 0.16 * facing + 0.10 * np.cos(np.float32(teeth) * (phi - np.float32(phase)))
    dome = 1.02 + np.float32(0.10 / top_radius) * facing * r
    brightness = knurl + (dome - knurl) * in_top
    # A dark groove between the top and the skirt.
    brightness *= 1 - 0.35 * np.exp(-((r - np.float32(top_radius)) ** 2) / np.float32(2 * 2.0**2))
    obj = brightness[:, :, None] * colour
    # Specular highlight toward the light.
    ys, xs = _pixel_grid(step)
    hx = np.float32(cx + _LIGHT[0] * radius * 0.45)
    hy = np.float32(cy + _LIGHT[1] * radius * 0.45)
    spot = np.exp(-((xs - hx) ** 2 + (ys - hy) ** 2) / np.float32(2 * (radius * 0.18) ** 2))
    obj += (np.float32(0.45) * spot)[:, :, None] * (255 - colour)
    return obj, coverage, _backdrop(rng, (206, 206, 210), 10), 0.35


def _render_capsule(rng: np.random.Generator):
    cx, cy = IMAGE_SIZE / 2 + rng.uniform(-20, 20, 2)
    length = rng.uniform(320, 380)
    width = rng.uniform(110, 135)
    angle = np.deg2rad(rng.uniform(-25, 25))
    axis = np.array([np.cos(angle), np.sin(angle)])
    half_body = (length - width) / 2
    # A thick line with round caps is exactly the stadium outline.
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    ends = _fixed(np.array([[cx, cy] - half_body * axis, [cx, cy] + half_body * axis])).reshape(2, 2)
    cv2.line(canvas, tuple(int(v) for v in ends[0]), tuple(int(v) for v in ends[1]), 255,
             int(round(width)), cv2.LINE_AA, _SUBPIXEL_SHIFT)
    coverage = canvas.astype(np.float32) * np.float32(1 / 255)

    ys, xs = _pixel_grid(_SHADING_STEP)
    dx = xs - np.float32(cx)
    dy = ys - np.float32(cy)
    u = dx * np.float32(axis[0]) + dy * np.float32(axis[1])  # along the capsule
    v = dy * np.float32(axis[0]) - dx * np.float32(axis[1])  # across it
    along = u - np.clip(u, -np.float32(half_body), np.float32(half_body))
    dist = np.sqrt(along * along + v * v)  # distance to the axis segment
    half_width = np.float32(width / 2)

    pair = _CAPSULE_PAIRS[rng.integers(len(_CAPSULE_PAIRS))]
    first, second = (_jitter_colour(rng, c, 10) for c in (pair if rng.random() < 0.5 else pair[::-1]))
    seam = np.float32(rng.uniform(-0.08, 0.08) * length)
    side = np.clip((u - seam) / np.float32(_SHADING_STEP) + np.float32(0.5), 0.0, 1.0)[:, :, None]
    colour = first + (second - first) * side
    # Cylinder/sphere shading from the surface normal's z component, plus a
    # specular stripe offset toward the light and a dark seam line.
    nz = np.sqrt(np.clip(1 - (dist / half_width) ** 2, 0.0, 1.0))
    stripe = np.exp(-((v + np.float32(0.35) * half_width) ** 2) / np.float32(2 * (0.09 * width) ** 2)) * nz
    brightness = (0.55 + 0.45 * nz) * (1 - 0.25 * np.exp(-((u - seam) ** 2) / np.float32(2 * 2.0**2)))
    obj = brightness[:, :, None] * colour + (np.float32(0.5) * stripe)[:, :, None] * (255 - colour)
    return obj, coverage, _backdrop(rng, (26, 28, 30), 6), 0.0


def _render_pcb(rng: np.random.Generator):
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    coverage = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    x0, y0 = rng.integers(36, 64, 2)
    x1, y1 = IMAGE_SIZE - rng.integers(36, 64, 2)
    green = tuple(int(c) for c in _jitter_colour(rng, (28, 104, 52), 10))
    corner = 14
    # Rounded rectangle: two rectangles plus four corner discs.
    for target, value in ((canvas, green), (coverage, 255)):
        cv2.rectangle(target, (int(x0 + corner), int(y0)), (int(x1 - corner), int(y1)), value, -1)
        cv2.rectangle(target, (int(x0), int(y0 + corner)), (int(x1), int(y1 - corner)), value, -1)
        for px, py in ((x0 + corner, y0 + corner), (x1 - corner, y0 + corner), (x0 + corner, y1 - corner), (x1 - corner, y1 - corner)):
            cv2.circle(target, (int(px), int(py)), corner, value, -1, cv2.LINE_AA)
    trace_colour = tuple(int(c) for c in np.clip(np.array(green) * 1.0 + (30, 60, 24), 0, 255))
    gold = (206, 170, 84)
    pitch = 8
    # Copper traces under the solder mask: Manhattan/45-degree polylines ending in pads.
    directions = np.array([(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)])
    for _ in range(int(rng.integers(16, 26))):
        point = np.array([rng.integers(x0 + 20, x1 - 20), rng.integers(y0 + 20, y1 - 20)]) // pitch * pitch
        points = [point]
        for _ in range(int(rng.integers(2, 5))):
            step = directions[rng.integers(8)] * int(rng.integers(3, 12)) * pitch
            point = np.clip(point + step, (x0 + 14, y0 + 14), (x1 - 14, y1 - 14))
            points.append(point)
        thickness = int(rng.integers(2, 5))
        cv2.polylines(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], False, trace_colour, thickness, cv2.LINE_AA)
        for end in (points[0], points[-1]):
            cv2.circle(canvas, (int(end[0]), int(end[1])), thickness + 3, gold, -1, cv2.LINE_AA)
    # An IC with pins on two or four sides and a pin-1 dot.
    w, h = rng.integers(80, 140), rng.integers(60, 110)
    ix = int(rng.integers(x0 + 40, max(x0 + 41, x1 - 40 - w)))
    iy = int(rng.integers(y0 + 40, max(y0 + 41, y1 - 40 - h)))
    pins_all_sides = rng.random() < 0.5
    for k in range(8, int(w) - 4, 10):
        for py in (iy - 8, iy + int(h)):
            cv2.rectangle(canvas, (ix + k - 2, py), (ix + k + 2, py + 8), (190, 190, 196), -1)
    if pins_all_sides:
        for k in range(8, int(h) - 4, 10):
            for px in (ix - 8, ix + int(w)):
                cv2.rectangle(canvas, (px, iy + k - 2), (px + 8, iy + k + 2), (190, 190, 196), -1)
    cv2.rectangle(canvas, (ix, iy), (ix + int(w), iy + int(h)), (32, 32, 36), -1)
    cv2.circle(canvas, (ix + 10, iy + 10), 4, (70, 70, 74), -1, cv2.LINE_AA)
    cv2.putText(canvas, "U1", (ix, iy - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 230), 1, cv2.LINE_AA)
    # Small two-terminal parts (resistors black, capacitors tan) with silk outlines.
    for index in range(int(rng.integers(4, 9))):
        px = int(rng.integers(x0 + 24, x1 - 50))
        py = int(rng.integers(y0 + 24, y1 - 30))
        body = (30, 30, 30) if rng.random() < 0.5 else (184, 140, 92)
        horizontal = rng.random() < 0.5
        pw, ph = (26, 12) if horizontal else (12, 26)
        cv2.rectangle(canvas, (px - 3, py - 3), (px + pw + 3, py + ph + 3), (230, 230, 224), 1)
        cv2.rectangle(canvas, (px, py), (px + pw, py + ph), body, -1)
        ends = ((px, py, px + 5, py + ph), (px + pw - 5, py, px + pw, py + ph)) if horizontal else (
            (px, py, px + pw, py + 5), (px, py + ph - 5, px + pw, py + ph))
        for ex0, ey0, ex1, ey1 in ends:
            cv2.rectangle(canvas, (ex0, ey0), (ex1, ey1), (200, 200, 204), -1)
        label = ("R" if body[0] < 100 else "C") + str(index + 1)
        cv2.putText(canvas, label, (px, py - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (235, 235, 230), 1, cv2.LINE_AA)
    # Plated mounting holes: the backdrop shows through.
    for px, py in ((x0 + 22, y0 + 22), (x1 - 22, y0 + 22), (x0 + 22, y1 - 22), (x1 - 22, y1 - 22)):
        cv2.circle(canvas, (int(px), int(py)), 12, gold, -1, cv2.LINE_AA)
        cv2.circle(coverage, (int(px), int(py)), 7, 0, -1, cv2.LINE_AA)
    # Slight pose change of the whole board.
    angle = rng.uniform(-4, 4)
    shift = rng.uniform(-10, 10, 2)
    pose = cv2.getRotationMatrix2D((IMAGE_SIZE / 2, IMAGE_SIZE / 2), angle, 1.0)
    pose[:, 2] += shift
    size = (IMAGE_SIZE, IMAGE_SIZE)
    obj = cv2.warpAffine(canvas, pose, size, flags=cv2.INTER_LINEAR)  # uint8: sharp detail at full resolution
    cover = cv2.warpAffine(coverage, pose, size, flags=cv2.INTER_LINEAR).astype(np.float32) * np.float32(1 / 255)
    return obj, cover, _backdrop(rng, (58, 58, 62), 8), 0.45


_RENDERERS: Dict[str, Callable] = {
    "nut": _render_nut,
    "bottle_cap": _render_bottle_cap,
    "capsule": _render_capsule,
    "pcb": _render_pcb,
}


# ---------------------------------------------------------------------------
# Photographs
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _photo(category: str) -> np.ndarray:
    """The decoded scikit-image photo of ``category`` as uint8 RGB (read-only)."""
    import skimage.data

    photo = np.asarray(getattr(skimage.data, PHOTO_CATEGORIES[category])())
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    photo = np.ascontiguousarray(photo[:, :, :3], dtype=np.uint8)
    photo.setflags(write=False)
    return photo


def _render_photo(category: str, rng: np.random.Generator) -> np.ndarray:
    """A deterministic crop/flip/rotation/jitter variation of the photo, uint8 RGB."""
    photo = _photo(category)
    height, width = photo.shape[:2]
    side = min(height, width) * rng.uniform(0.78, 1.0)
    # Objects stay near the middle; textures may be cropped anywhere.
    slack_x, slack_y = width - side, height - side
    if category in TEXTURE_CATEGORIES:
        cx = side / 2 + rng.uniform(0, slack_x)
        cy = side / 2 + rng.uniform(0, slack_y)
    else:
        cx = width / 2 + rng.uniform(-0.25, 0.25) * slack_x
        cy = height / 2 + rng.uniform(-0.25, 0.25) * slack_y
    angle = rng.uniform(-6, 6)
    # Zoom so the rotated square crop still covers the whole output.
    cover = abs(np.cos(np.deg2rad(angle))) + abs(np.sin(np.deg2rad(angle)))
    scale = IMAGE_SIZE / side * cover
    warp = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), float(scale))
    warp[:, 2] += (IMAGE_SIZE / 2 - cx, IMAGE_SIZE / 2 - cy)
    image = cv2.warpAffine(
        np.ascontiguousarray(photo), warp, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if category in TEXTURE_CATEGORIES:
        if rng.random() < 0.5:
            image = image[::-1]
        image = np.rot90(image, int(rng.integers(4)))
    gain = np.float32(rng.uniform(0.9, 1.1)) * (1 + rng.uniform(-0.04, 0.04, 3)).astype(np.float32)
    return np.clip(image.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Normal images
# ---------------------------------------------------------------------------
def _category_index(category: str) -> int:
    return _CATEGORY_ORDER.index(category)


@functools.lru_cache(maxsize=16)
def _render_normal(category: str, variant: int) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """(image, foreground or None, backdrop or None) of one normal image (read-only arrays)."""
    rng = np.random.default_rng([_category_index(category), variant])
    if category in PHOTO_CATEGORIES:
        image = _render_photo(category, rng)
        foreground = backdrop = None
    else:
        obj, coverage, backdrop_colour, shadow = _RENDERERS[category](rng)
        # One colour gain for object and backdrop (a camera's white balance).
        gain = np.float32(rng.uniform(0.92, 1.08)) * (1 + rng.uniform(-0.03, 0.03, 3)).astype(np.float32)
        obj = _to_full_uint8(obj, gain)
        backdrop = _to_full_uint8(backdrop_colour, gain)
        if shadow > 0:
            light = _shadow_light(coverage, shadow)
            backdrop = cv2.blendLinear(backdrop, np.zeros_like(backdrop), light, 1 - light)
        composite = cv2.blendLinear(obj, backdrop, coverage, 1 - coverage)
        # The backdrop gets the same noise as the image, so a missing piece
        # shows seamless background.
        oy, ox = rng.integers(0, IMAGE_SIZE, 2)
        noise = _noise_field()[oy : oy + IMAGE_SIZE, ox : ox + IMAGE_SIZE]
        image = _add_noise(composite, noise)
        backdrop = _add_noise(backdrop, noise)
        foreground = coverage >= 0.5
    for array in (image, foreground, backdrop):
        if array is not None:
            array.setflags(write=False)
    return image, foreground, backdrop
