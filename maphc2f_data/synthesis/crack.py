"""Crack anomalies: a branching skeleton grown inside the foreground (Algorithm 1),
thickened by a distance/Perlin threshold (Algorithm 2, eqs. 1-6), then darkened
into the image (Algorithm 3) or, for a share of cracks, lightened (see
``CrackConfig.bright_prob``).

``sample_crack_params`` draws every random choice into a JSON-serialisable dict;
``render_crack`` turns (image, foreground, params) into the cracked image and its
mask deterministically. Importing this module registers the ``"crack"`` type.

Lengths are in pixels. The default :class:`CrackConfig` ranges are chosen for
512x512 images; crack length scales with ``min(H, W) / 512`` and crack widths
scale up (never down) with it, because the paper's 3x3 opening erases anything
thinner than 3 px.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple

import cv2
import numpy as np

from maphc2f_data.synthesis.base import (
    AnomalyType,
    PlacementError,
    check_inputs,
    register_anomaly,
)
from maphc2f_data.synthesis.perlin import perlin_grid

#: Upper bound on frontier pops per skeleton. Branches spawn branches, so the
#: growth loop is capped to keep one skeleton at a few milliseconds of Python.
MAX_FRONTIER_POPS = 20_000

#: ``|PerlinNoise(...)| <= 2`` everywhere: the value is a convex combination
#: (fade weights sum to 1) of dot products of a gradient in [-1, 1]^2 with an
#: offset in [-1, 1]^2. Used to bound how far the crack mask can reach.
_PERLIN_ABS_BOUND = 2.0

#: Gaussian smoothing of Algorithm 2 (sigma = 1.0). Radius 4 and reflect border
#: match ``scipy.ndimage.gaussian_filter(sigma=1.0)`` (truncate=4, mode="reflect").
_BLUR_SIGMA = 1.0
_BLUR_RADIUS = 4
_BLUR_THRESHOLD = 0.3

#: Uniform draws fetched from the generator at a time by the growth loop
#: (scalar ``Generator.random()`` calls cost ~0.6 us each).
_UNIFORM_BLOCK = 1024


@dataclass(frozen=True)
class CrackConfig:
    """Sampling ranges for crack parameters (all ranges are inclusive ``(low, high)``).

    Lengths are pixels at ``reference_size`` x ``reference_size``. With
    ``scale = min(H, W) / reference_size``, ``max_steps`` is multiplied by
    ``scale`` (crack length = ``max_steps * step_size`` scales linearly), and the
    width-like lengths ``w0``, ``eps``, ``noise_scale``, ``edge_fade`` by
    ``width_scale = max(1, scale)`` (``alpha``, in 1/px, is divided by it):
    widths grow on large images but never shrink below what survives the
    ``morph_kernel_size`` opening.

    Attributes
    ----------
    reference_size : int
        Image side (px) the ranges below are chosen for.
    n_start_points : (int, int)
        Number of crack seeds (Sec. 7.1: 1-3).
    max_steps : (int, int)
        Step budget per seed at ``reference_size``; scaled by ``scale`` and
        floored at ``min_max_steps``.
    min_max_steps : int
        Lower bound on the scaled ``max_steps``.
    step_size : (float, float)
        Pixels advanced per step (not scaled: it is a discretisation step).
    branch_prob : (float, float)
        Per-step probability of spawning a branch.
    stop_prob : (float, float)
        Per-step probability that a frontier stops early.
    w0 : (float, float)
        Eq. 4 thickness amplitude, px (crack half-width is about ``w0 + eps``
        for small ``alpha``).
    alpha : (float, float)
        Eq. 4 decay rate of the thickness with distance, 1/px.
    eps : (float, float)
        Eq. 4 thickness floor, px.
    noise_scale : (float, float)
        Eq. 5 Perlin amplitude, px; makes the width vary and breaks the crack.
    noise_octaves : (int, int)
        Eq. 5 Perlin lattice cells across the image.
    morph_kernel_size : int
        Side of the square kernel for the closing and opening (Algorithm 2).
    base_alpha : (float, float)
        Algorithm 3 blend weight of the darkened crack over the original.
    max_darken : (float, float)
        Algorithm 3 intensity factor at full crack strength (0 = black, 1 = no
        darkening).
    max_color_shift : (float, float)
        Algorithm 3 additive shift, drawn independently per RGB channel, in
        0-255 intensity units; biased negative so cracks read as dark
        shadow rather than a coloured tint.
    edge_fade : (float, float)
        Algorithm 3 fade distance, px (see :func:`apply_crack` Notes).
    bright_prob : float
        Probability that a crack is rendered *lighter* than the surface
        (``bright=True``: pixels move towards white by ``1 - max_darken``).
        Algorithm 3 only darkens, but a fracture or scratch on a coated,
        anodised or polished part exposes lighter substrate or catches the
        light at its edges, and on a dark surface a darkened crack is nearly
        invisible. 0 restores the paper's dark-only cracks. Drawn after every
        other parameter, so dark cracks are unchanged by it.
    min_skeleton_pixels : int
        Fewer skeleton pixels is a failed placement (a dot, not a crack).
    min_mask_pixels : int
        Fewer mask pixels (after the foreground AND) is a failed placement.
    """

    reference_size: int = 512
    n_start_points: Tuple[int, int] = (1, 3)
    max_steps: Tuple[int, int] = (30, 120)
    min_max_steps: int = 8
    step_size: Tuple[float, float] = (1.0, 3.0)
    branch_prob: Tuple[float, float] = (0.02, 0.1)
    stop_prob: Tuple[float, float] = (0.001, 0.01)
    w0: Tuple[float, float] = (2.0, 5.0)
    alpha: Tuple[float, float] = (0.1, 0.5)
    eps: Tuple[float, float] = (0.5, 1.0)
    noise_scale: Tuple[float, float] = (0.5, 1.5)
    noise_octaves: Tuple[int, int] = (2, 8)
    morph_kernel_size: int = 3
    base_alpha: Tuple[float, float] = (0.7, 1.0)
    max_darken: Tuple[float, float] = (0.15, 0.45)
    max_color_shift: Tuple[float, float] = (-12.0, 3.0)
    edge_fade: Tuple[float, float] = (1.0, 4.0)
    bright_prob: float = 0.4
    min_skeleton_pixels: int = 5
    min_mask_pixels: int = 20


def _check_mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {mask.shape}")
    if mask.dtype != np.bool_:
        raise ValueError(f"{name} must be bool, got {mask.dtype}")
    return mask


def _uniform_stream(rng: np.random.Generator):
    """Endless Uniform[0, 1) floats drawn from ``rng`` in blocks (deterministic)."""
    while True:
        yield from rng.random(_UNIFORM_BLOCK).tolist()


def crack_skeleton(
    foreground: np.ndarray,
    start_points: Sequence[Sequence[int]],
    *,
    max_steps: int,
    step_size: float,
    branch_prob: float,
    stop_prob: float,
    rng: np.random.Generator,
    max_pops: int = MAX_FRONTIER_POPS,
) -> np.ndarray:
    """Grow a branching crack skeleton inside ``foreground`` (Algorithm 1, eqs. 1-2).

    Each start point gets a direction ``Uniform(0, 2 pi)`` and ``max_steps``
    steps. A frontier advances ``step_size`` px, stops if the new (rounded)
    pixel is off the image or off the foreground, marks it, spends a step,
    stops with probability ``stop_prob``, and otherwise continues; with
    probability ``branch_prob`` it also spawns a branch rotated by
    ``Uniform(-pi/4, pi/4)`` with ``floor(steps / 2)`` steps.

    Two choices the paper leaves open:

    * The frontiers are a FIFO queue (the paper says "queue" but writes
      ``pop()``); the growth order only changes which random draw goes where.
    * Consecutive rounded points are joined by an 8-connected line so the
      skeleton is connected when ``step_size > 1``. A step whose line leaves
      the foreground ends the frontier, like an end point off the foreground
      (with ``step_size <= 1`` the two rules agree).

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)
        Where the crack may grow.
    start_points : sequence of (int, int)
        ``(row, col)`` seeds, each inside ``foreground``.
    max_steps : int
        Step budget of each seed (>= 0).
    step_size : float
        Pixels per step (> 0).
    branch_prob, stop_prob : float
        Per-step probabilities in [0, 1].
    rng : numpy.random.Generator
        Source of every random draw (directions, stops, branches).
    max_pops : int, optional
        Cap on frontier pops, bounding the run time of heavily branching
        parameters (default :data:`MAX_FRONTIER_POPS`).

    Returns
    -------
    ndarray of bool, shape (H, W)
        Skeleton pixels; a subset of ``foreground`` in which every pixel is
        8-connected to a start point, and no pixel is farther than
        ``max_steps * step_size + 1`` px from its start point.

    Examples
    --------
    >>> foreground = np.ones((32, 32), dtype=bool)
    >>> skeleton = crack_skeleton(foreground, [(16, 16)], max_steps=10, step_size=1.0,
    ...                           branch_prob=0.0, stop_prob=0.0,
    ...                           rng=np.random.default_rng(0))
    >>> bool(skeleton[16, 16]), int(skeleton.sum()) <= 11
    (True, True)
    """
    foreground = _check_mask(foreground, "foreground")
    height, width = foreground.shape
    if int(max_steps) != max_steps or max_steps < 0:
        raise ValueError(f"max_steps must be a non-negative integer, got {max_steps}")
    if not step_size > 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    for name, prob in (("branch_prob", branch_prob), ("stop_prob", stop_prob)):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {prob}")
    seeds = []
    for point in start_points:
        if len(point) != 2:
            raise ValueError(f"start points must be (row, col) pairs, got {point!r}")
        row, col = int(point[0]), int(point[1])
        if not (0 <= row < height and 0 <= col < width) or not foreground[row, col]:
            raise ValueError(f"start point ({row}, {col}) is not inside the foreground")
        seeds.append((row, col))

    max_steps, step_size = int(max_steps), float(step_size)
    rows, cols = [], []  # marked pixels; the loop never reads the skeleton back
    frontiers: deque = deque()
    for row, col in seeds:
        angle = rng.uniform(0.0, 2.0 * math.pi)
        frontiers.append((float(row), float(col), math.sin(angle), math.cos(angle), max_steps))
        rows.append(row)
        cols.append(col)

    uniform = _uniform_stream(rng)
    inside = foreground.item  # scalar lookup without building a 0-d array
    pops = 0
    while frontiers and pops < max_pops:
        y, x, dy, dx, steps = frontiers.popleft()
        pops += 1
        if steps <= 0:
            continue
        y_new = y + dy * step_size
        x_new = x + dx * step_size
        row_new, col_new = round(y_new), round(x_new)
        if not (0 <= row_new < height and 0 <= col_new < width) or not inside(row_new, col_new):
            continue
        # The 8-connected line from the previous marked pixel; its interior
        # must stay on the foreground too.
        row_old, col_old = round(y), round(x)
        d_row, d_col = row_new - row_old, col_new - col_old
        n_segments = max(abs(d_row), abs(d_col))
        line = [
            (row_old + round(k * d_row / n_segments), col_old + round(k * d_col / n_segments))
            for k in range(1, n_segments)
        ]
        if not all(inside(r, c) for r, c in line):  # in range: between two in-range pixels
            continue
        for r, c in line:
            rows.append(r)
            cols.append(c)
        rows.append(row_new)
        cols.append(col_new)
        steps -= 1
        if next(uniform) < stop_prob:
            continue
        frontiers.append((y_new, x_new, dy, dx, steps))
        if next(uniform) < branch_prob:
            branch_angle = -math.pi / 4 + next(uniform) * (math.pi / 2)
            cos_b, sin_b = math.cos(branch_angle), math.sin(branch_angle)
            frontiers.append(
                (y_new, x_new, dy * cos_b - dx * sin_b, dy * sin_b + dx * cos_b, steps // 2)
            )

    skeleton = np.zeros((height, width), dtype=bool)
    skeleton[rows, cols] = True
    return skeleton


def crack_mask(
    skeleton: np.ndarray,
    *,
    w0: float,
    alpha: float,
    eps: float,
    noise_scale: float,
    noise_octaves: float,
    noise_seed: int,
    morph_kernel_size: int,
) -> np.ndarray:
    """Thicken a skeleton into a crack mask (Algorithm 2, eqs. 3-6).

    ``dist`` is the Euclidean distance to the nearest skeleton pixel (eq. 3),
    ``w_t = w0 exp(-alpha dist) + eps`` (eq. 4), ``noise`` is
    ``PerlinNoise(noise_octaves, noise_seed)([y / H, x / W]) * noise_scale``
    (eq. 5), and a pixel is in the mask when ``dist + noise < w_t`` (eq. 6).
    The mask is then closed and opened with a square kernel, blurred with a
    Gaussian (sigma 1) and thresholded at 0.3.

    Only the skeleton's bounding box plus a margin is computed: since
    ``|PerlinNoise| <= 2``, eq. 6 fails wherever
    ``dist >= w0 + eps + 2 noise_scale``, and the margin also covers the
    reach of the morphology and the blur, so the result equals the
    full-image computation exactly (the noise is still evaluated at
    full-image coordinates ``y / H, x / W``).

    Parameters
    ----------
    skeleton : ndarray of bool, shape (H, W)
        Crack skeleton (eq. 1).
    w0, alpha, eps : float
        Eq. 4 parameters (px, 1/px, px); all > 0.
    noise_scale : float
        Eq. 5 amplitude, px (>= 0).
    noise_octaves : float
        Perlin lattice cells across the image (> 0).
    noise_seed : int
        Perlin seed (>= 1), as ``perlin_noise.PerlinNoise`` takes it.
    morph_kernel_size : int
        Side of the square closing/opening kernel (>= 1).

    Returns
    -------
    ndarray of bool, shape (H, W)
        The crack mask (not yet restricted to any foreground).
    """
    skeleton = _check_mask(skeleton, "skeleton")
    for name, value in (("w0", w0), ("alpha", alpha), ("eps", eps)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not noise_scale >= 0:
        raise ValueError(f"noise_scale must be non-negative, got {noise_scale}")
    if int(morph_kernel_size) != morph_kernel_size or morph_kernel_size < 1:
        raise ValueError(f"morph_kernel_size must be a positive integer, got {morph_kernel_size}")
    height, width = skeleton.shape
    mask = np.zeros((height, width), dtype=bool)
    occupied_rows = np.flatnonzero(skeleton.any(axis=1))
    if occupied_rows.size == 0:
        return mask
    occupied_cols = np.flatnonzero(skeleton.any(axis=0))

    # Eq. 6 reach, then closing (dilation by r, erosion needs another r of
    # zeros) and the blur (its window plus the reflected border): +2 slack.
    kernel_radius = int(morph_kernel_size) // 2
    reach = math.ceil(w0 + eps + _PERLIN_ABS_BOUND * noise_scale)
    margin = reach + 2 * kernel_radius + 2 * _BLUR_RADIUS + 2
    top = max(int(occupied_rows[0]) - margin, 0)
    bottom = min(int(occupied_rows[-1]) + margin + 1, height)
    left = max(int(occupied_cols[0]) - margin, 0)
    right = min(int(occupied_cols[-1]) + margin + 1, width)
    box = (slice(top, bottom), slice(left, right))

    off_skeleton = (~skeleton[box]).astype(np.uint8)
    dist = cv2.distanceTransform(off_skeleton, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
    thickness = w0 * np.exp(-alpha * dist) + eps
    noise = perlin_grid(height, width, noise_octaves, noise_seed)[box] * noise_scale
    crack = (dist + noise < thickness).astype(np.uint8)

    kernel = np.ones((int(morph_kernel_size),) * 2, dtype=np.uint8)
    crack = cv2.morphologyEx(crack, cv2.MORPH_CLOSE, kernel)
    crack = cv2.morphologyEx(crack, cv2.MORPH_OPEN, kernel)
    blur_size = 2 * _BLUR_RADIUS + 1
    blurred = cv2.GaussianBlur(
        crack.astype(np.float64),
        (blur_size, blur_size),
        sigmaX=_BLUR_SIGMA,
        sigmaY=_BLUR_SIGMA,
        borderType=cv2.BORDER_REFLECT,
    )
    mask[box] = blurred > _BLUR_THRESHOLD
    return mask


def apply_crack(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    base_alpha: float,
    max_darken: float,
    max_color_shift: Sequence[float],
    edge_fade: float,
    bright: bool = False,
) -> np.ndarray:
    """Darken and tint the crack pixels of an RGB image (Algorithm 3).

    ``strength = clip(1 - dist / edge_fade, 0, 1)`` with ``dist`` the distance
    transform of ``1 - mask``; on mask pixels the image is multiplied by
    ``1 - (1 - max_darken) strength``, shifted by ``max_color_shift *
    strength``, and blended as ``(1 - base_alpha) orig + base_alpha out``;
    the result is clipped and cast to uint8 (truncating, as ``astype`` does).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image (the paper's is BGR; ``max_color_shift`` is per channel in
        the image's own order, here R, G, B).
    mask : ndarray of bool, shape (H, W)
        Crack pixels.
    base_alpha : float
        Blend weight in [0, 1].
    max_darken : float
        Intensity factor at full strength, in [0, 1].
    max_color_shift : sequence of 3 floats
        Additive per-channel shift at full strength (0-255 units).
    edge_fade : float
        Fade distance in px (> 0).
    bright : bool
        Lighten instead of darken: ``out = orig + (255 - orig) (1 -
        max_darken) strength`` (the mirror image of the darkening, so the
        same ``max_darken`` gives the same contrast against white as against
        black); the colour shift and blend are applied as for dark cracks.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        New image; pixels outside ``mask`` are bit-identical to ``image``.

    Notes
    -----
    As the paper writes it, ``dist`` is 0 on every mask pixel (it is the
    distance *to* the mask), so ``strength`` is 1 wherever it is used: every
    crack pixel is scaled by exactly ``max_darken`` and ``edge_fade`` has no
    effect. We keep the algorithm verbatim. Pixels outside the mask are never
    touched (the paper blends them with themselves, which in float32 can lose
    one grey level to truncation; skipping them is the exact intent).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
    mask = _check_mask(mask, "mask")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    if not 0.0 <= base_alpha <= 1.0:
        raise ValueError(f"base_alpha must be in [0, 1], got {base_alpha}")
    if not 0.0 <= max_darken <= 1.0:
        raise ValueError(f"max_darken must be in [0, 1], got {max_darken}")
    if not edge_fade > 0:
        raise ValueError(f"edge_fade must be positive, got {edge_fade}")
    color_shift = np.asarray(max_color_shift, dtype=np.float32)
    if color_shift.shape != (3,):
        raise ValueError(f"max_color_shift must have 3 values, got {list(np.ravel(max_color_shift))}")

    out = image.copy()
    occupied_rows = np.flatnonzero(mask.any(axis=1))
    if occupied_rows.size == 0:
        return out
    occupied_cols = np.flatnonzero(mask.any(axis=0))
    # Only mask pixels are read below, so the bounding box suffices.
    box = (
        slice(int(occupied_rows[0]), int(occupied_rows[-1]) + 1),
        slice(int(occupied_cols[0]), int(occupied_cols[-1]) + 1),
    )
    in_crack = mask[box]
    dist = cv2.distanceTransform((~in_crack).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    strength = np.clip(1.0 - dist / np.float32(edge_fade), 0.0, 1.0)[in_crack][:, None]
    original = image[box][in_crack].astype(np.float32)  # (N, 3)
    if bright:
        cracked = original + (255.0 - original) * ((1.0 - np.float32(max_darken)) * strength)
        cracked += color_shift * strength
    else:
        darken = 1.0 - (1.0 - np.float32(max_darken)) * strength
        cracked = original * darken + color_shift * strength
    alpha = np.float32(base_alpha)
    blended = (1 - alpha) * original + alpha * cracked
    out[box][in_crack] = np.clip(blended, 0, 255).astype(np.uint8)
    return out


def _scales(shape: Tuple[int, int], config: CrackConfig) -> Tuple[float, float]:
    """``(length_scale, width_scale)`` of an image, see :class:`CrackConfig`."""
    length_scale = min(shape) / config.reference_size
    return length_scale, max(1.0, length_scale)


def sample_crack_params(
    rng: np.random.Generator, foreground: np.ndarray, config: CrackConfig = CrackConfig()
) -> Dict[str, Any]:
    """Draw every random choice of one crack.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    foreground : ndarray of bool, shape (H, W)
        Non-empty object mask; start points are drawn uniformly from it.
    config : CrackConfig
        Sampling ranges.

    Returns
    -------
    dict
        Plain ints, floats and lists (JSON-serialisable): ``start_points``
        (list of [row, col]), ``skeleton_seed`` (growth-loop seed),
        ``max_steps``, ``step_size``, ``branch_prob``, ``stop_prob``, ``w0``,
        ``alpha``, ``eps``, ``noise_scale``, ``noise_octaves``, ``noise_seed``
        (>= 1), ``morph_kernel_size``, ``base_alpha``, ``max_darken``,
        ``max_color_shift`` ([R, G, B]), ``edge_fade`` and ``bright``
        (lighter than the surface; drawn last, so the others do not depend
        on ``bright_prob``).
    """
    foreground = _check_mask(foreground, "foreground")
    candidates = np.flatnonzero(foreground)
    if candidates.size == 0:
        raise ValueError("foreground is empty: there is no object to place a crack on")
    length_scale, width_scale = _scales(foreground.shape, config)

    def uniform(bounds: Tuple[float, float], scale: float = 1.0) -> float:
        return float(rng.uniform(bounds[0], bounds[1])) * scale

    def integer(bounds: Tuple[int, int]) -> int:
        return int(rng.integers(bounds[0], bounds[1], endpoint=True))

    n_points = integer(config.n_start_points)
    picks = candidates[rng.integers(0, candidates.size, size=n_points)]
    rows, cols = np.unravel_index(picks, foreground.shape)
    params = {
        "start_points": [[int(r), int(c)] for r, c in zip(rows, cols)],
        "skeleton_seed": int(rng.integers(0, 2**31 - 1)),
        "max_steps": max(config.min_max_steps, round(integer(config.max_steps) * length_scale)),
        "step_size": uniform(config.step_size),
        "branch_prob": uniform(config.branch_prob),
        "stop_prob": uniform(config.stop_prob),
        "w0": uniform(config.w0, width_scale),
        "alpha": uniform(config.alpha, 1.0 / width_scale),
        "eps": uniform(config.eps, width_scale),
        "noise_scale": uniform(config.noise_scale, width_scale),
        "noise_octaves": integer(config.noise_octaves),
        "noise_seed": int(rng.integers(1, 2**31 - 1)),
        "morph_kernel_size": int(config.morph_kernel_size),
        "base_alpha": uniform(config.base_alpha),
        "max_darken": uniform(config.max_darken),
        "max_color_shift": [uniform(config.max_color_shift) for _ in range(3)],
        "edge_fade": uniform(config.edge_fade, width_scale),
    }
    params["bright"] = bool(rng.random() < config.bright_prob)
    return params


def render_crack(
    image: np.ndarray,
    foreground: np.ndarray,
    params: Dict[str, Any],
    config: CrackConfig = CrackConfig(),
) -> "tuple[np.ndarray, np.ndarray]":
    """Draw the crack described by ``params`` (deterministic).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    foreground : ndarray of bool, shape (H, W)
        Object mask; the crack mask is restricted to it.
    params : dict
        As returned by :func:`sample_crack_params`.
    config : CrackConfig
        Supplies the minimum skeleton and mask sizes.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
        Crack pixels, a subset of ``foreground``.

    Raises
    ------
    PlacementError
        A start point is off the foreground, or the skeleton or mask is too
        small to be a crack.
    """
    image, foreground = check_inputs(image, foreground)
    height, width = foreground.shape
    for row, col in params["start_points"]:
        if not (0 <= row < height and 0 <= col < width and foreground[row, col]):
            raise PlacementError(f"crack start point ({row}, {col}) is not on the foreground")
    skeleton = crack_skeleton(
        foreground,
        params["start_points"],
        max_steps=params["max_steps"],
        step_size=params["step_size"],
        branch_prob=params["branch_prob"],
        stop_prob=params["stop_prob"],
        rng=np.random.default_rng(params["skeleton_seed"]),
    )
    n_skeleton = int(np.count_nonzero(skeleton))
    if n_skeleton < config.min_skeleton_pixels:
        raise PlacementError(
            f"crack skeleton has {n_skeleton} pixel(s), fewer than {config.min_skeleton_pixels}"
            " (foreground too small or too thin)"
        )
    mask = crack_mask(
        skeleton,
        w0=params["w0"],
        alpha=params["alpha"],
        eps=params["eps"],
        noise_scale=params["noise_scale"],
        noise_octaves=params["noise_octaves"],
        noise_seed=params["noise_seed"],
        morph_kernel_size=params["morph_kernel_size"],
    )
    mask &= foreground
    n_mask = int(np.count_nonzero(mask))
    if n_mask < config.min_mask_pixels:
        raise PlacementError(
            f"crack mask has {n_mask} pixel(s) on the foreground, fewer than {config.min_mask_pixels}"
        )
    cracked = apply_crack(
        image,
        mask,
        base_alpha=params["base_alpha"],
        max_darken=params["max_darken"],
        max_color_shift=params["max_color_shift"],
        edge_fade=params["edge_fade"],
        # Params recorded before bright cracks existed are dark ones.
        bright=bool(params.get("bright", False)),
    )
    return cracked, mask


CRACK = register_anomaly(AnomalyType("crack", sample_crack_params, render_crack))
