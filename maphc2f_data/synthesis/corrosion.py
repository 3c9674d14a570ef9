"""Corrosion anomalies: grown polygon patches with Perlin-eaten edges.

The mask follows the paper's Algorithm 4 / eq. (7) (Sec. 3.2.1 and 7.2):

(A) ``k`` random polygons with radially jittered vertices are centred inside
    the foreground, filled, clipped to the foreground and combined into one
    mask (:func:`corrosion_polygons`);
(B) ``N`` rounds of stochastic boundary growth turn each 4-neighbour boundary
    pixel on with probability ``p_grow`` (:func:`grow_boundary`);
(C) a closing with a 3x3 square joins the pieces;
(D) boundary pixels where Perlin noise exceeds ``rho`` are removed
    (:func:`perlin_erode_boundary`).

The paper's "overlap or union" choice is vacuous as written (a union *is* a
bitwise OR), so we give "overlap" a visible meaning: an overlapping polygon is
combined by symmetric difference (XOR), so where it covers corrosion that is
already there, that corrosion flakes off and the bare surface shows through,
leaving rings and pits inside the patch; a non-overlapping polygon is a plain
union. Growth and closing then partly re-fill small pits, big ones survive.

Appearance model (the paper is silent; :func:`apply_corrosion`). Corrosion
products (rust, oxide scale, patina, dried stains) are an opaque layer *on*
the surface, so the patch is pulled towards a sampled oxide colour rather than
tinted: ``target = colour * (1 - darken) * substrate ** detail * texture``,
where ``substrate`` is the local luminance relative to the patch mean (a
little of the underlying structure shows through, as it does under thin
rust), and ``texture`` is ``1 + amplitude * Perlin + grain`` (rust is
blotchy and granular, not flat). The result is ``image + alpha * (target - image)`` with ``alpha`` the
mask blurred by a ~1 px Gaussian times a sampled strength, which feathers the
edge the way a real stain fades. The fade lies *inside* the mask: alpha is
zero outside it, so every pixel outside the label keeps its exact bytes (a
feather reaching 2 px outside used to change 6-9 % of the visibly changed
pixels without labelling them). Colour families are
orange-brown rust, dark oxide, greenish patina, yellow-brown stains
(MVTec's "oil" / "color" defects) and pale "white rust" (zinc and aluminium
oxides), so corrosion is not always darker than the part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple

import cv2
import numpy as np

from maphc2f_data.synthesis.base import AnomalyType, PlacementError, check_inputs, register_anomaly
from maphc2f_data.synthesis.perlin import perlin_grid

#: Side length (pixels) the default ranges of :class:`CorrosionConfig` are for.
REFERENCE_SIZE = 512

#: How far (pixels, Chebyshev) feathering may reach outside the mask: none,
#: so the label covers every changed pixel.
FEATHER_REACH_PX = 0

_CROSS_3X3 = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE_3X3 = np.ones((3, 3), dtype=np.uint8)
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Perlin values from ``perlin_grid`` lie roughly in [-0.4, 0.4] (std ~0.175).
_PERLIN_HALF_RANGE = 0.4


@dataclass(frozen=True)
class CorrosionConfig:
    """Sampling ranges for :func:`sample_corrosion_params`.

    Ranges are inclusive ``(low, high)`` pairs. Lengths are in pixels for a
    512x512 image and are multiplied by ``min(H, W) / 512`` when sampling;
    probabilities, colours and noise octaves (cells per image side) are
    resolution-free.

    Attributes
    ----------
    n_polygons : (int, int)
        Number ``k`` of seed polygons, default 1-4.
    radius : (float, float)
        Mean polygon radius, default 16-64 px. The upper bound is further capped
        at ``max_radius_fraction`` times the foreground's equivalent-disc
        radius so a patch stays smaller than a small object.
    max_radius_fraction : float
        See ``radius``; default 0.5.
    vertex_count : (int, int)
        Polygon vertices, default 6-14.
    jitter : (float, float)
        Per-vertex radial jitter: vertex radius is ``r * (1 + jitter * u)`` with
        ``u ~ U(-1, 1)``; default 0.15-0.45 (deformed, never self-collapsing).
    cluster_spread : float
        Polygons after the first are centred within ``cluster_spread`` times
        the first radius of the first centre (aggregated patches, and overlaps
        actually happen); default 1.5.
    p_overlap : float
        Probability that a polygon after the first is combined by XOR
        ("overlap", flaking) instead of union; default 0.3.
    growth_iterations : (int, int)
        Boundary-growth rounds ``N`` (a length: each round grows <= 1 px);
        default 5-20; at least 1 after scaling.
    grow_prob : (float, float)
        Probability ``p_grow`` that a boundary pixel turns on per round;
        default 0.2-0.6.
    erosion_octaves : (int, int)
        Perlin cells per image side for edge erosion (eq. 7); default 8-16.
    erosion_rho : (float, float)
        Erosion threshold ``rho``; boundary pixels with noise > rho are removed.
        Noise has std ~0.175, so the default 0.0-0.2 removes ~12-50% of the
        boundary per pass.
    erosion_passes : (int, int)
        Erosion passes (eq. 7 applied repeatedly with the same noise eats
        deeper where noise is high: the "eaten-away" edge); default 1-3.
    colour_families : tuple of (name, (r, g, b), jitter, weight)
        Oxide colour families (RGB base colour, per-channel uniform integer
        jitter, sampling weight); default rust, dark oxide, patina, stain and
        white rust (the pale zinc/aluminium oxide of galvanised and light-alloy
        parts; the only family lighter than most surfaces).
    colour_brightness : (float, float)
        Factor on the whole base colour before the per-channel jitter (keeps
        the hue, varies lightness); default 0.8-1.2.
    strength : (float, float)
        Peak blend weight of the oxide layer; default 0.55-0.95.
    darken : (float, float)
        Extra darkening of the oxide colour; default 0.0-0.35.
    substrate_detail : (float, float)
        Exponent of the substrate luminance that shows through; default 0.2-0.6.
    texture_octaves : (int, int)
        Perlin cells per image side of the blotch texture; default 10-20.
    texture_amplitude : (float, float)
        Relative intensity modulation of the blotch texture; default 0.15-0.45.
    grain_amplitude : (float, float)
        Std of the per-pixel relative grain (granular oxide), default 0.03-0.12.
    feather_sigma : (float, float)
        Gaussian sigma (px, not scaled) of the soft edge; default 0.6-1.2.
    min_area : float
        Smallest accepted mask (px at 512x512, scaled by area, at least 4);
        a smaller mask raises :class:`PlacementError`. Default 256.
    """

    n_polygons: Tuple[int, int] = (1, 4)
    radius: Tuple[float, float] = (16.0, 64.0)
    max_radius_fraction: float = 0.5
    vertex_count: Tuple[int, int] = (6, 14)
    jitter: Tuple[float, float] = (0.15, 0.45)
    cluster_spread: float = 1.5
    p_overlap: float = 0.3
    growth_iterations: Tuple[int, int] = (5, 20)
    grow_prob: Tuple[float, float] = (0.2, 0.6)
    erosion_octaves: Tuple[int, int] = (8, 16)
    erosion_rho: Tuple[float, float] = (0.0, 0.2)
    erosion_passes: Tuple[int, int] = (1, 3)
    colour_families: Tuple[Tuple[str, Tuple[int, int, int], int, float], ...] = (
        ("rust", (155, 80, 35), 12, 0.45),
        ("dark_oxide", (70, 55, 45), 6, 0.25),
        ("patina", (85, 140, 115), 10, 0.15),
        ("stain", (165, 130, 75), 10, 0.15),
        ("white_rust", (208, 205, 196), 8, 0.15),
    )
    colour_brightness: Tuple[float, float] = (0.8, 1.2)
    strength: Tuple[float, float] = (0.55, 0.95)
    darken: Tuple[float, float] = (0.0, 0.35)
    substrate_detail: Tuple[float, float] = (0.2, 0.6)
    texture_octaves: Tuple[int, int] = (10, 20)
    texture_amplitude: Tuple[float, float] = (0.15, 0.45)
    grain_amplitude: Tuple[float, float] = (0.03, 0.12)
    feather_sigma: Tuple[float, float] = (0.6, 1.2)
    min_area: float = 256.0


def _check_mask(name: str, mask: np.ndarray, shape: "Tuple[int, int] | None" = None) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"{name} must be a bool array, got {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {mask.shape}")
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"{name} shape {mask.shape} does not match {tuple(shape)}")
    return mask


def _bbox(mask: np.ndarray, margin: int) -> "Tuple[slice, slice] | None":
    """Bounding box of ``mask`` grown by ``margin`` px, clipped to the array."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)),
    )


def corrosion_polygons(
    foreground: np.ndarray,
    *,
    centers: Sequence[Sequence[float]],
    radii: Sequence[float],
    vertex_counts: Sequence[int],
    jitter: float,
    overlap_flags: Sequence[bool],
    polygon_seed: int,
) -> np.ndarray:
    """Step (A): fill deformed polygons, clip them to the foreground, combine.

    Polygon ``i`` has ``vertex_counts[i]`` vertices at sorted angles
    ``~ U(0, 2 pi)`` and radii ``radii[i] * (1 + jitter * U(-1, 1))`` around
    ``centers[i]``; angles and radial factors come from
    ``np.random.default_rng(polygon_seed)``. Filling uses ``cv2.fillPoly`` with
    4 bits of sub-pixel precision. Polygon ``i`` is combined by XOR (pits where
    it overlaps what is there) when ``overlap_flags[i]`` is true, else by union.

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)
    centers : sequence of (y, x)
        Polygon centres in pixels.
    radii : sequence of float
        Mean radii in pixels (> 0).
    vertex_counts : sequence of int
        Vertices per polygon (>= 3).
    jitter : float
        Radial jitter in [0, 1).
    overlap_flags : sequence of bool
        Combine polygon ``i`` by XOR instead of union.
    polygon_seed : int
        Seed of the vertex angles and radial factors.

    Returns
    -------
    ndarray of bool, shape (H, W)
        The combined polygon mask, inside ``foreground``.
    """
    foreground = _check_mask("foreground", foreground)
    n_polygons = len(centers)
    if not (len(radii) == len(vertex_counts) == len(overlap_flags) == n_polygons):
        raise ValueError(
            "centers, radii, vertex_counts and overlap_flags must have the same length, got "
            f"{n_polygons}, {len(radii)}, {len(vertex_counts)}, {len(overlap_flags)}"
        )
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    rng = np.random.default_rng(int(polygon_seed))
    height, width = foreground.shape
    combined = np.zeros((height, width), dtype=bool)
    polygon = np.zeros((height, width), dtype=np.uint8)
    for (cy, cx), radius, n_vertices, overlap in zip(centers, radii, vertex_counts, overlap_flags):
        if int(n_vertices) < 3 or not radius > 0:
            raise ValueError(f"need >= 3 vertices and a positive radius, got {n_vertices}, {radius}")
        angles = np.sort(rng.uniform(0.0, 2.0 * np.pi, int(n_vertices)))
        vertex_radii = float(radius) * (1.0 + jitter * rng.uniform(-1.0, 1.0, int(n_vertices)))
        # cv2 wants (x, y) points; shift=4 keeps 1/16 px of the float vertices.
        points = np.stack(
            [float(cx) + vertex_radii * np.cos(angles), float(cy) + vertex_radii * np.sin(angles)], axis=1
        )
        polygon[:] = 0
        cv2.fillPoly(polygon, [np.rint(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        clipped = polygon.view(bool) & foreground
        if overlap:
            combined ^= clipped
        else:
            combined |= clipped
    return combined


def grow_boundary(
    mask: np.ndarray, foreground: np.ndarray, *, iterations: int, grow_prob: float, seed: int
) -> np.ndarray:
    """Step (B): stochastic growth into the 4-neighbour boundary.

    Each round, ``boundary = dilate(mask, cross) & ~mask & foreground`` and
    each boundary pixel turns on with probability ``grow_prob`` (draws from
    ``np.random.default_rng(seed)``, one per boundary pixel in row-major
    order). Work is confined to the mask's bounding box grown by
    ``iterations`` px, which cannot change the result.

    Parameters
    ----------
    mask, foreground : ndarray of bool, shape (H, W)
    iterations : int
        Growth rounds (>= 0).
    grow_prob : float
        Per-pixel, per-round probability in [0, 1].
    seed : int

    Returns
    -------
    ndarray of bool, shape (H, W)
        A superset of ``mask`` whose new pixels are inside ``foreground`` and
        within ``iterations`` 4-neighbour steps of ``mask``.
    """
    mask = _check_mask("mask", mask)
    foreground = _check_mask("foreground", foreground, mask.shape)
    if int(iterations) < 0 or not 0.0 <= grow_prob <= 1.0:
        raise ValueError(f"need iterations >= 0 and grow_prob in [0, 1], got {iterations}, {grow_prob}")
    rng = np.random.default_rng(int(seed))
    grown = mask.copy()
    window = _bbox(mask, int(iterations) + 1)
    if window is None or iterations == 0:
        return grown
    crop = grown[window].astype(np.uint8)
    allowed = foreground[window]
    flat = crop.reshape(-1)
    for _ in range(int(iterations)):
        boundary = (cv2.dilate(crop, _CROSS_3X3) > crop) & allowed
        candidates = np.flatnonzero(boundary)
        flat[candidates[rng.random(candidates.size) < grow_prob]] = 1
    grown[window] = crop.view(bool)
    return grown


def perlin_erode_boundary(mask: np.ndarray, noise: np.ndarray, *, rho: float, passes: int = 1) -> np.ndarray:
    """Step (D), eq. (7): remove boundary pixels where ``noise > rho``.

    A boundary pixel is a mask pixel with a 4-neighbour off the mask (pixels
    past the image border do not count as off). Each pass recomputes the
    boundary, so later passes eat deeper only where the noise stays high.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    noise : ndarray of float, shape (H, W)
        E.g. ``perlin_grid(H, W, octaves, seed)``.
    rho : float
        Threshold.
    passes : int
        Number of passes (>= 0); 1 is exactly eq. (7).

    Returns
    -------
    ndarray of bool, shape (H, W)
        A subset of ``mask``.
    """
    mask = _check_mask("mask", mask)
    noise = np.asarray(noise)
    if noise.shape != mask.shape:
        raise ValueError(f"noise shape {noise.shape} does not match mask shape {mask.shape}")
    eroded = mask.copy()
    window = _bbox(mask, 1)
    if window is None:
        return eroded
    crop = eroded[window].astype(np.uint8)
    removable = noise[window] > rho
    for _ in range(int(passes)):
        boundary = (cv2.erode(crop, _CROSS_3X3) < crop) & removable
        crop[boundary] = 0
    eroded[window] = crop.view(bool)
    return eroded


def corrosion_mask(foreground: np.ndarray, params: Dict[str, Any]) -> np.ndarray:
    """Algorithm 4: the corrosion mask for ``params`` (see :func:`sample_corrosion_params`).

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)
    params : dict

    Returns
    -------
    ndarray of bool, shape (H, W)
        Inside ``foreground``; may be empty.
    """
    foreground = _check_mask("foreground", foreground)
    height, width = foreground.shape
    mask = corrosion_polygons(
        foreground,
        centers=params["centers"],
        radii=params["radii"],
        vertex_counts=params["vertex_counts"],
        jitter=params["jitter"],
        overlap_flags=params["overlap_flags"],
        polygon_seed=params["polygon_seed"],
    )
    mask = grow_boundary(
        mask,
        foreground,
        iterations=params["growth_iterations"],
        grow_prob=params["grow_prob"],
        seed=params["growth_seed"],
    )
    mask = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_CLOSE, _SQUARE_3X3).view(bool)
    if params["erosion_passes"] > 0:
        noise = perlin_grid(height, width, params["erosion_octaves"], params["erosion_seed"])
        mask = perlin_erode_boundary(mask, noise, rho=params["erosion_rho"], passes=params["erosion_passes"])
    return mask & foreground


def apply_corrosion(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    colour: Sequence[float],
    strength: float,
    darken: float,
    substrate_detail: float,
    texture_octaves: float,
    texture_amplitude: float,
    texture_seed: int,
    grain_amplitude: float,
    feather_sigma: float,
) -> np.ndarray:
    """Paint an oxide layer on ``image`` under ``mask`` (see the module docstring).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    mask : ndarray of bool, shape (H, W)
        Corrosion mask.
    colour : (r, g, b)
        Oxide colour, 0-255.
    strength : float
        Peak blend weight in [0, 1].
    darken : float
        Colour darkening in [0, 1).
    substrate_detail : float
        Exponent (>= 0) of the relative substrate luminance that shows through.
    texture_octaves : float
        Perlin cells per image side of the blotch texture.
    texture_amplitude : float
        Relative intensity modulation by the texture.
    texture_seed : int
        Perlin seed (>= 1), also seeds the grain.
    grain_amplitude : float
        Std of the per-pixel relative grain (lightly blurred Gaussian noise).
    feather_sigma : float
        Gaussian sigma (px) of the soft edge (> 0).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new image; pixels farther than ``FEATHER_REACH_PX`` (Chebyshev) from
        ``mask`` are byte-identical to ``image``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
    mask = _check_mask("mask", mask, image.shape[:2])
    out = image.copy()
    margin = FEATHER_REACH_PX + int(math.ceil(3 * feather_sigma)) + 1
    window = _bbox(mask, margin)
    if window is None:
        return out
    height, width = mask.shape
    patch = image[window].astype(np.float32)
    patch_mask = mask[window]

    luminance = patch @ _LUMA_RGB
    relative = np.clip(luminance / max(float(luminance[patch_mask].mean()), 8.0), 0.4, 1.6)
    texture = perlin_grid(height, width, texture_octaves, texture_seed)[window].astype(np.float32)
    texture = np.clip(texture / _PERLIN_HALF_RANGE, -1.0, 1.0)
    grain = np.random.default_rng(int(texture_seed)).standard_normal(patch_mask.shape, dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * np.float32(grain_amplitude / 0.41)  # blurred std ~0.41
    shade = (1.0 - darken) * relative**substrate_detail * (1.0 + texture_amplitude * texture + grain)
    target = shade[..., None] * np.asarray(colour, dtype=np.float32)

    alpha = cv2.GaussianBlur(patch_mask.astype(np.float32), (0, 0), feather_sigma)
    reach_kernel = np.ones((2 * FEATHER_REACH_PX + 1,) * 2, np.uint8)
    reach = cv2.dilate(np.ascontiguousarray(patch_mask).view(np.uint8), reach_kernel)
    # Mask pixels keep at least half weight where the blur thins them (thin
    # strands stay visible); zero weight beyond the reach keeps bytes exact.
    alpha = strength * np.where(patch_mask, np.maximum(alpha, 0.5), alpha) * reach
    blended = patch + alpha[..., None] * (target - patch)
    painted = np.clip(np.rint(blended), 0, 255)
    out[window] = np.where(reach.view(bool)[..., None], painted, patch).astype(np.uint8)
    return out


def sample_corrosion_params(
    rng: np.random.Generator, foreground: np.ndarray, config: CorrosionConfig = CorrosionConfig()
) -> Dict[str, Any]:
    """Draw every random choice of one corrosion anomaly.

    Parameters
    ----------
    rng : np.random.Generator
    foreground : ndarray of bool, shape (H, W)
        Non-empty object mask.
    config : CorrosionConfig

    Returns
    -------
    dict
        Plain ints, floats, bools, strings and lists (JSON-serialisable):
        ``centers`` ([y, x] per polygon), ``radii``, ``vertex_counts``,
        ``overlap_flags``, ``jitter``, ``polygon_seed``, ``growth_iterations``,
        ``grow_prob``, ``growth_seed``, ``erosion_octaves``, ``erosion_rho``,
        ``erosion_passes``, ``erosion_seed``, ``colour_family``, ``colour``,
        ``strength``, ``darken``, ``substrate_detail``, ``texture_octaves``,
        ``texture_amplitude``, ``texture_seed``, ``grain_amplitude``,
        ``feather_sigma``,
        ``min_area``. Sub-seeds are ints >= 1.
    """
    foreground = _check_mask("foreground", foreground)
    fg_index = np.flatnonzero(foreground)
    if fg_index.size == 0:
        raise ValueError("foreground is empty: there is no object to place an anomaly on")
    height, width = foreground.shape
    scale = min(height, width) / REFERENCE_SIZE

    def uniform(bounds: Tuple[float, float]) -> float:
        return float(rng.uniform(bounds[0], bounds[1]))

    def integer(bounds: Tuple[int, int]) -> int:
        return int(rng.integers(bounds[0], bounds[1] + 1))

    def sub_seed() -> int:
        return int(rng.integers(1, 2**31 - 1))

    n_polygons = integer(config.n_polygons)
    radius_low = max(config.radius[0] * scale, 1.5)
    equivalent_radius = math.sqrt(fg_index.size / math.pi)
    radius_cap = config.max_radius_fraction * equivalent_radius
    radius_high = max(radius_low, min(config.radius[1] * scale, radius_cap))
    radii = [float(rng.uniform(radius_low, radius_high)) for _ in range(n_polygons)]
    vertex_counts = [integer(config.vertex_count) for _ in range(n_polygons)]

    first_y, first_x = divmod(int(fg_index[rng.integers(fg_index.size)]), width)
    centers = [[first_y, first_x]]
    # Later centres: foreground pixels within a disc around the first one.
    spread = max(int(config.cluster_spread * radii[0]), 1)
    rows = slice(max(first_y - spread, 0), min(first_y + spread + 1, height))
    cols = slice(max(first_x - spread, 0), min(first_x + spread + 1, width))
    yy, xx = np.ogrid[rows, cols]
    near = foreground[rows, cols] & ((yy - first_y) ** 2 + (xx - first_x) ** 2 <= spread**2)
    near_index = np.flatnonzero(near)  # contains the first centre, so never empty
    near_width = cols.stop - cols.start
    for _ in range(n_polygons - 1):
        dy, dx = divmod(int(near_index[rng.integers(near_index.size)]), near_width)
        centers.append([rows.start + dy, cols.start + dx])
    overlap_flags = [False] + [bool(rng.random() < config.p_overlap) for _ in range(n_polygons - 1)]

    families = config.colour_families
    weights = np.array([family[3] for family in families], dtype=np.float64)
    family_index = int(rng.choice(len(families), p=weights / weights.sum()))
    family_name, base_colour, colour_jitter, _ = families[family_index]
    brightness = uniform(config.colour_brightness)
    colour = [
        int(np.clip(round(c * brightness) + rng.integers(-colour_jitter, colour_jitter + 1), 0, 255))
        for c in base_colour
    ]

    return {
        "centers": centers,
        "radii": radii,
        "vertex_counts": vertex_counts,
        "overlap_flags": overlap_flags,
        "jitter": uniform(config.jitter),
        "polygon_seed": sub_seed(),
        "growth_iterations": max(1, int(round(integer(config.growth_iterations) * scale))),
        "grow_prob": uniform(config.grow_prob),
        "growth_seed": sub_seed(),
        "erosion_octaves": integer(config.erosion_octaves),
        "erosion_rho": uniform(config.erosion_rho),
        "erosion_passes": integer(config.erosion_passes),
        "erosion_seed": sub_seed(),
        "colour_family": family_name,
        "colour": colour,
        "strength": uniform(config.strength),
        "darken": uniform(config.darken),
        "substrate_detail": uniform(config.substrate_detail),
        "texture_octaves": integer(config.texture_octaves),
        "texture_amplitude": uniform(config.texture_amplitude),
        "texture_seed": sub_seed(),
        "grain_amplitude": uniform(config.grain_amplitude),
        "feather_sigma": uniform(config.feather_sigma),
        "min_area": max(4, int(round(config.min_area * scale * scale))),
    }


def render_corrosion(
    image: np.ndarray, foreground: np.ndarray, params: Dict[str, Any]
) -> "Tuple[np.ndarray, np.ndarray]":
    """Render the corrosion described by ``params`` (deterministic).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    foreground : ndarray of bool, shape (H, W)
    params : dict
        From :func:`sample_corrosion_params`.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
        Inside ``foreground``, at least ``params["min_area"]`` pixels.

    Raises
    ------
    PlacementError
        The mask has fewer than ``params["min_area"]`` pixels.
    """
    image, foreground = check_inputs(image, foreground)
    mask = corrosion_mask(foreground, params)
    area = int(np.count_nonzero(mask))
    if area < params["min_area"]:
        raise PlacementError(f"corrosion mask has {area} px, fewer than min_area={params['min_area']}")
    out = apply_corrosion(
        image,
        mask,
        colour=params["colour"],
        strength=params["strength"],
        darken=params["darken"],
        substrate_detail=params["substrate_detail"],
        texture_octaves=params["texture_octaves"],
        texture_amplitude=params["texture_amplitude"],
        texture_seed=params["texture_seed"],
        grain_amplitude=params["grain_amplitude"],
        feather_sigma=params["feather_sigma"],
    )
    return out, mask


CORROSION = register_anomaly(AnomalyType("corrosion", sample_corrosion_params, render_corrosion))
