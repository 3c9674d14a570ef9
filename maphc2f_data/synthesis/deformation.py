"""Deformation anomalies: a local thin-plate-spline dent in the object.

Paper section 3.2.1 (eq. 8), supplementary 7.3 and Algorithm 5
(TPS_DEFORM_LOCAL_INPAINT, with the TPS_DEFORM_LOCAL_INPAINT_PARTIAL variant).
The paper describes deformation as *local* warping or bending (dents) inside a
region of the foreground; PARTIAL samples a sub-region so only part of the
object bends. That is the default here for objects and textures alike.

**Variants** (``params["partial"]``):

- ``partial=True`` (default): a **dent**. A disc of radius
  ``r = U(dent_radius_fraction) * D`` (``D = sqrt(4 * area / pi)``, the
  foreground's equivalent diameter; ``r`` is clamped to
  ``[min_dent_radius, max_dent_radius * min(H, W)]``) is centred on a
  foreground pixel at least ``dent_centre_inset * r`` inside the object. One
  to three control points within ``dent_ctrl_reach * r`` of the centre move
  by up to ``max_offset = U(dent_offset) * r`` pixels; a thin-plate spline
  through them, pinned to zero on the disc's rim, is multiplied by a radial
  smoothstep taper (1 up to ``(1 - dent_taper) * r``, 0 from ``r`` on), so
  the displacement is smooth and exactly zero outside the disc. A warp that
  would fold (Jacobian determinant of the backward map below
  ``min_jacobian``) raises :class:`PlacementError`.
- ``partial=False`` (explicit only, e.g. ``synthesize(..., partial=False)``):
  the **whole object** bends. The ROI is the foreground's bounding box grown
  by ``margin``; ``m`` control points of the object move by up to
  ``max_offset`` (the whole-object ranges of :class:`DeformationConfig`),
  with zero-displacement anchors on the ROI border and a border taper. Its
  ROI, points and offsets are drawn in :func:`render_deformation` from
  ``params["whole_object_seed"]``, so every sample's params can be switched
  to this variant by the override alone.

**Warp** (Algorithm 5 steps 4-9, both variants). The TPS
(``scipy.interpolate.RBFInterpolator``, ``kernel="thin_plate_spline"``)
interpolates ``dst - src`` at the destination points; the backward map is
eq. 8, ``(x', y') = (x, y) - Rbf(x, y)``, so a control point moves from
``src`` to ``dst``. It is evaluated on a coarse grid (every ``grid_step`` px)
and upsampled bicubically (see :func:`tps_displacement`). The object (and its
mask) is remapped; object pixels the warped object no longer covers show the
background, inpainted there (``cv2.inpaint``, Telea; see
:func:`inpaint_uncovered`), and the warped object is pasted over it.
Deviation from the paper's pseudocode: its step 7 remaps the *inpainted* ROI,
which would paste background over the object; we remap the original ROI so
that the object itself moves.

**Label rule** (the returned mask; Algorithm 5 step 10 "the deformed region
carried through the same TPS map"):

1. *moved*: pixels whose displacement ``|d|`` is at least
   ``move_threshold`` (1 px) after the taper and that show the object before
   or after the warp (the field is a backward map, so this is the
   destination of every moved object pixel), plus the pixels the object
   vacated (its source side, now inpainted background);
2. closed with a disc of radius ``closing_radius`` and hole-filled: one (or a
   few) solid blobs, not edge speckle;
3. every pixel within ``paste_reach`` px of that region whose largest channel
   changed by more than ``diff_threshold`` (12 grey levels) is added, and
   holes are filled again;
4. the output is the source image, byte for byte, everywhere outside the
   ``paste_reach`` dilation of the region of step 2; inside it the warped
   image is kept. So no pixel outside the label changes by more than
   ``diff_threshold``, and none outside the dilation changes at all.

The label is *not* intersected with the foreground: a dent on the rim can
push the object's edge outward, and the background pixels it then covers did
change. Dent centres lie ``dent_centre_inset * r`` inside the object, so most
of the label is on the foreground.

**Visibility.** A sample whose label has fewer than ``min_label_pixels``
pixels, or whose mean largest-channel change inside the label is below
``min_mean_change`` (8 grey levels), raises :class:`PlacementError`, and
:func:`~maphc2f_data.synthesis.base.synthesize` retries with another
sub-seed (a dent on a flat, texture-less patch does not show). A foreground
too small or too flat to show one ends in
:class:`~maphc2f_data.synthesis.base.SynthesisError`.

Every random choice is drawn by :func:`sample_deformation_params` into plain
JSON values; :func:`render_deformation` is deterministic from them. Lengths in
:class:`DeformationConfig` are for 512x512 images and are scaled by
``min(H, W) / 512``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from scipy import ndimage
from scipy.interpolate import RBFInterpolator

from maphc2f_data.synthesis.base import (
    AnomalyType,
    as_bool_mask,
    PlacementError,
    check_inputs,
    register_anomaly,
)

#: Image side (pixels) that the lengths of :class:`DeformationConfig` are for.
REFERENCE_SIZE = 512


@dataclass(frozen=True)
class DeformationConfig:
    """Sampling ranges of a deformation anomaly (lengths for 512x512 images).

    Lengths are multiplied by ``min(H, W) / 512`` when sampling, so an
    anomaly covers the same fraction of a smaller or larger image.

    Attributes
    ----------
    partial : bool
        Variant written into the params: ``True`` (a dent, the default) or
        ``False`` (the whole object bends).
    dent_radius_fraction : tuple of float
        Range of the dent radius as a fraction of the foreground's
        equivalent diameter.
    min_dent_radius : float
        Smallest dent radius, pixels (scaled; at least 4 px): smaller dents
        move too few pixels to show.
    max_dent_radius : float
        Largest dent radius as a fraction of ``min(H, W)``: on textures (the
        whole image is foreground) it keeps a dent below ~7 % of the image.
    dent_centre_inset : float
        The centre lies at least this many radii inside the foreground (or
        as deep as the foreground allows): most of the dent is on the object.
    dent_ctrl_points : tuple of int
        Inclusive range of the number of dent control points.
    dent_ctrl_reach : float
        Dent control points lie within this many radii of the centre, on the
        taper's plateau.
    dent_offset : tuple of float
        Range of the dent's ``max_offset`` as a fraction of its radius.
    dent_taper : float
        Width of the radial taper as a fraction of the radius (0 < x <= 1).
    dent_shading : tuple of float
        Range of the dent's peak relative brightness change from its slope
        catching the light differently (see the module docstring).
    shading_threshold : float
        Relative brightness changes of at least this count as changed for
        the label (2 % is at most 5 grey levels, below ``diff_threshold``).
    light_from_image : bool
        Light the dent from the direction the part itself is lit from (the
        smoothed luminance gradient around the dent) instead of the random
        ``light_angle``; off by default (tried on validation, see README).
    min_jacobian : float
        Smallest Jacobian determinant of the dent's backward map; a smaller
        one means the warp (nearly) folds the image, :class:`PlacementError`.
    num_ctrl_points : tuple of int
        Whole-object variant: inclusive range of the number of control points
        requested (``m`` in Algorithm 5).
    max_offset : tuple of float
        Whole-object variant: range of the largest control-point
        displacement, pixels.
    offset_fraction : tuple of float
        Each control point moves ``u * max_offset`` pixels in a uniformly
        random direction, ``u`` drawn from this range (both variants; the
        lower bound keeps every point pushing visibly).
    margin : float
        Whole-object variant: margin around the foreground bounding box,
        pixels.
    ctrl_border_inset : float
        Whole-object variant: control points keep ``ctrl_border_inset *
        max_offset`` pixels from the ROI border. Must exceed 1: the border
        taper is ``(ctrl_border_inset - 1) * max_offset`` wide.
    ctrl_min_spacing : float
        Control points keep ``ctrl_min_spacing * max_offset`` pixels from one
        another (nearby points pushed apart would fold the image).
    inpaint_radius : float
        ``cv2.inpaint`` neighbourhood radius, pixels (at least 1 once scaled).
    inpaint_max_side : int
        The crop around the uncovered pixels is inpainted at a resolution
        where its long side is at most this (not scaled: it bounds the cost).
    grid_step : float
        Node spacing of the coarse grid the spline is evaluated on, pixels
        (at least 2 once scaled).
    anchor_spacing : float
        Spacing of the zero-displacement anchors on the ROI border or the
        dent's rim, pixels (at least 4 once scaled).
    move_threshold : float
        A pixel has moved when its displacement is at least this, pixels (not
        scaled: a pixel is a pixel at any size).
    closing_radius : float
        Radius of the disc the moved region is closed with, pixels (scaled,
        at least 1).
    paste_reach : int
        Pixels within this Chebyshev distance of the closed region keep the
        warp (and visible changes there are labelled); farther ones are the
        source's bytes (not scaled).
    diff_threshold : int
        A channel change of more than this many grey levels is visible.
    min_mean_change : float
        Smallest mean largest-channel change inside the label, grey levels.
    min_label_pixels : float
        Fewest labelled pixels for a visible sample (scaled by the *area*
        ratio, at least 16).
    """

    partial: bool = True
    dent_radius_fraction: Tuple[float, float] = (0.08, 0.2)
    min_dent_radius: float = 24.0
    max_dent_radius: float = 0.15
    dent_centre_inset: float = 0.5
    dent_ctrl_points: Tuple[int, int] = (1, 3)
    dent_ctrl_reach: float = 0.4
    dent_offset: Tuple[float, float] = (0.2, 0.4)
    dent_taper: float = 0.5
    dent_shading: Tuple[float, float] = (0.1, 0.25)
    shading_threshold: float = 0.02
    light_from_image: bool = False
    min_jacobian: float = 0.2
    num_ctrl_points: Tuple[int, int] = (4, 10)
    max_offset: Tuple[float, float] = (10.0, 30.0)
    offset_fraction: Tuple[float, float] = (0.5, 1.0)
    margin: float = 32.0
    ctrl_border_inset: float = 2.0
    ctrl_min_spacing: float = 2.0
    inpaint_radius: float = 3.0
    inpaint_max_side: int = 128
    grid_step: float = 6.0
    anchor_spacing: float = 24.0
    move_threshold: float = 1.0
    closing_radius: float = 3.0
    paste_reach: int = 2
    diff_threshold: int = 12
    min_mean_change: float = 8.0
    min_label_pixels: float = 64.0

    def __post_init__(self) -> None:
        for name in ("num_ctrl_points", "dent_ctrl_points"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must satisfy 1 <= low <= high, got {(low, high)}")
        for name in ("max_offset", "offset_fraction", "dent_radius_fraction", "dent_offset", "dent_shading"):
            low_f, high_f = getattr(self, name)
            if not 0 < low_f <= high_f:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(low_f, high_f)}")
        if self.offset_fraction[1] > 1.0:
            raise ValueError(f"offset_fraction must not exceed 1, got {self.offset_fraction}")
        if not 0.0 < self.dent_taper <= 1.0:
            raise ValueError(f"dent_taper must be in (0, 1], got {self.dent_taper}")
        if not 0.0 <= self.dent_ctrl_reach < 1.0 - self.dent_taper + 1e-9:
            raise ValueError(
                f"dent_ctrl_reach must be in [0, 1 - dent_taper], got {self.dent_ctrl_reach}"
            )
        if self.ctrl_border_inset <= 1.0:
            raise ValueError(f"ctrl_border_inset must exceed 1, got {self.ctrl_border_inset}")


DEFAULT_CONFIG = DeformationConfig()


# --------------------------------------------------------------------------
# Displacement field
# --------------------------------------------------------------------------


def tps_displacement(
    src_points: np.ndarray,
    dst_points: np.ndarray,
    shape: Tuple[int, int],
    *,
    grid_step: int = 1,
) -> Tuple[np.ndarray, np.ndarray]:
    """Backward displacement field of the thin-plate spline taking src to dst.

    The field ``d`` interpolates ``dst_i - src_i`` at ``dst_i`` with a
    thin-plate-spline RBF; the backward map of eq. 8 is ``p - d(p)``, which
    sends every ``dst_i`` to ``src_i``. Points with ``src == dst`` are fixed
    anchors.

    Parameters
    ----------
    src_points, dst_points : array_like of float, shape (N, 2)
        Matching ``(y, x)`` points in pixel coordinates of the field;
        ``dst_points`` must be distinct.
    shape : tuple of int
        ``(height, width)`` of the field.
    grid_step : int, optional
        1 evaluates the spline at every pixel. Larger values evaluate it on
        nodes ``grid_step`` pixels apart (two spare nodes beyond every side)
        and upsample bicubically with ``cv2.resize``. The spline peaks
        sharply at its centres, which bilinear upsampling cuts off (up to
        2 px at step 8). Bicubic at step 6, the default for 512x512 images,
        stayed within 0.92 px of the dense field (median of the per-field
        maxima 0.25 px) over 125 sampled fields with points moved up to
        30 px.

    Returns
    -------
    dy, dx : ndarray of float32, shape (height, width)
        Row and column displacement; ``map_y = y - dy``, ``map_x = x - dx``.

    Raises
    ------
    ValueError
        Mismatched point arrays, a non-positive shape or ``grid_step``.
    numpy.linalg.LinAlgError
        Duplicate ``dst_points`` (a singular spline system).

    Examples
    --------
    >>> src = np.array([[10.0, 10.0], [0, 0], [0, 20], [20, 0], [20, 20]])
    >>> dst = src.copy(); dst[0] = [12.0, 10.0]
    >>> dy, dx = tps_displacement(src, dst, (21, 21))
    >>> round(float(dy[12, 10]), 3), round(float(dx[12, 10]), 3)
    (2.0, 0.0)
    """
    src_points = np.asarray(src_points, dtype=np.float64)
    dst_points = np.asarray(dst_points, dtype=np.float64)
    if src_points.ndim != 2 or src_points.shape[1] != 2 or src_points.shape != dst_points.shape:
        raise ValueError(
            "src_points and dst_points must both have shape (N, 2), "
            f"got {src_points.shape} and {dst_points.shape}"
        )
    height, width = (int(v) for v in shape)
    if height < 1 or width < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    step = int(grid_step)
    if step < 1:
        raise ValueError(f"grid_step must be >= 1, got {grid_step}")
    spline = RBFInterpolator(dst_points, dst_points - src_points, kernel="thin_plate_spline")
    if step == 1:
        pixels = np.indices((height, width), dtype=np.float64).reshape(2, -1).T
        dense = spline(pixels).reshape(height, width, 2)
        return dense[..., 0].astype(np.float32), dense[..., 1].astype(np.float32)
    # cv2.resize by an integer factor s reads coarse coordinate (X + 0.5)/s - 0.5
    # for output pixel X. Nodes at (k - pad) * s + (s - 1) / 2 therefore put
    # output pixel X exactly at position X - pad * s: evaluate there, upsample,
    # crop pad * s pixels off the start. pad = 2 gives bicubic its whole 4x4
    # support, so no edge clamping happens inside the field.
    pad = 2
    rows = math.ceil(height / step) + 2 * pad
    cols = math.ceil(width / step) + 2 * pad
    first = (step - 1) / 2.0 - pad * step
    node_y, node_x = np.meshgrid(
        np.arange(rows) * step + first, np.arange(cols) * step + first, indexing="ij"
    )
    coarse = spline(np.column_stack([node_y.ravel(), node_x.ravel()])).reshape(rows, cols, 2)
    fine = cv2.resize(
        coarse.astype(np.float32), (cols * step, rows * step), interpolation=cv2.INTER_CUBIC
    )
    fine = fine[pad * step : pad * step + height, pad * step : pad * step + width]
    return np.ascontiguousarray(fine[..., 0]), np.ascontiguousarray(fine[..., 1])


def roi_border_anchors(shape: Tuple[int, int], spacing: int) -> np.ndarray:
    """Evenly spaced points on the border of a box, corners included.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the box, each >= 2.
    spacing : int
        Largest gap between neighbouring anchors along an edge, pixels (>= 1).

    Returns
    -------
    ndarray of float64, shape (K, 2)
        Distinct ``(y, x)`` positions on rows ``0``/``height - 1`` and columns
        ``0``/``width - 1``.

    Examples
    --------
    >>> roi_border_anchors((3, 3), spacing=2).tolist()
    [[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 2.0]]
    """
    height, width = (int(v) for v in shape)
    if height < 2 or width < 2:
        raise ValueError(f"box must be at least 2x2, got {height}x{width}")
    if spacing < 1:
        raise ValueError(f"spacing must be >= 1, got {spacing}")
    ys = np.linspace(0, height - 1, max(2, math.ceil((height - 1) / spacing) + 1))
    xs = np.linspace(0, width - 1, max(2, math.ceil((width - 1) / spacing) + 1))
    inner_ys = ys[1:-1]
    return np.concatenate(
        [
            np.column_stack([np.zeros_like(xs), xs]),
            np.column_stack([np.full_like(xs, height - 1), xs]),
            np.column_stack([inner_ys, np.zeros_like(inner_ys)]),
            np.column_stack([inner_ys, np.full_like(inner_ys, width - 1)]),
        ]
    )


def border_taper(shape: Tuple[int, int], width: float) -> np.ndarray:
    """Weight that is 0 on a box's border and rises smoothly to 1 inside.

    ``taper(y, x) = s(y) * s(x)`` with ``s`` a smoothstep of the distance to
    the nearer end of its axis over ``width`` pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the box.
    width : float
        Ramp length, pixels (> 0). Pixels at least ``width`` from every edge
        get exactly 1.

    Returns
    -------
    ndarray of float32, shape (height, width)

    Examples
    --------
    >>> border_taper((1, 5), 2.0)[0].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0]
    >>> border_taper((5, 5), 2.0)[2].tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    if not width > 0:
        raise ValueError(f"taper width must be positive, got {width}")

    def ramp(length: int) -> np.ndarray:
        position = np.arange(length, dtype=np.float64)
        t = np.clip(np.minimum(position, length - 1 - position) / width, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    height, width_px = (int(v) for v in shape)
    return np.outer(ramp(height), ramp(width_px)).astype(np.float32)


def warp_roi(
    roi_image: np.ndarray,
    roi_mask: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray]:
    """Apply the backward map ``p - d(p)`` to an ROI image and its object mask.

    Parameters
    ----------
    roi_image : ndarray of uint8, shape (h, w, 3)
    roi_mask : ndarray of bool, shape (h, w)
        Object pixels of the ROI.
    dy, dx : ndarray of float32, shape (h, w)
        Displacement field, e.g. from :func:`tps_displacement`.

    Returns
    -------
    warped_image : ndarray of uint8, shape (h, w, 3)
        Bilinear resampling, reflected at the ROI border.
    warped_mask : ndarray of bool, shape (h, w)
        Nearest-neighbour resampling of ``roi_mask``, reflected likewise.
    """
    height, width = roi_mask.shape
    if roi_image.shape != (height, width, 3) or not dy.shape == dx.shape == roi_mask.shape:
        raise ValueError(
            f"shape mismatch: image {roi_image.shape}, mask {roi_mask.shape}, "
            f"field {dy.shape} and {dx.shape}"
        )
    grid_y, grid_x = np.indices((height, width), dtype=np.float32)
    map_y = grid_y - dy.astype(np.float32, copy=False)
    map_x = grid_x - dx.astype(np.float32, copy=False)
    warped_image = cv2.remap(
        np.ascontiguousarray(roi_image),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    warped_mask = cv2.remap(
        roi_mask.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT
    )
    return warped_image, warped_mask.astype(bool)


def inpaint_uncovered(
    roi_image: np.ndarray,
    roi_mask: np.ndarray,
    uncovered: np.ndarray,
    *,
    radius: float,
    band: float,
    max_side: int,
) -> np.ndarray:
    """Fill in the background behind the object where the object moved away.

    Inpainting the whole object (Algorithm 5 step 3) is right but slow, and
    only the ``uncovered`` pixels are ever shown. So only object pixels
    within ``band`` of them are treated as unknown. The object pixels beyond
    the band stay "known"; with ``band`` at least the hole's width plus twice
    ``radius``, Telea's front reaches every uncovered pixel from the
    surrounding background before any object colour gets near it. A region
    whose bounding box is longer than ``max_side`` is inpainted at reduced
    resolution and upsampled (the filled background is smooth anyway).

    Parameters
    ----------
    roi_image : ndarray of uint8, shape (h, w, 3)
    roi_mask : ndarray of bool, shape (h, w)
        Object pixels before warping.
    uncovered : ndarray of bool, shape (h, w)
        Object pixels the warped object no longer covers.
    radius : float
        ``cv2.inpaint`` (Telea) radius, pixels.
    band : float
        How far around ``uncovered`` object pixels count as unknown, pixels.
    max_side : int
        Longest side inpainted at full resolution.

    Returns
    -------
    ndarray of uint8, shape (h, w, 3)
        A copy of ``roi_image`` with the band (``uncovered`` included)
        inpainted.
    """
    result = roi_image.copy()
    if not uncovered.any():
        return result
    # Only the neighbourhood of the hole matters; a distance transform there
    # instead of a dilation by a disk: O(pixels), not O(pixels * band^2).
    reach = int(math.ceil(band)) + 1
    rows = np.flatnonzero(uncovered.any(axis=1))
    cols = np.flatnonzero(uncovered.any(axis=0))
    near_y0, near_x0 = max(int(rows[0]) - reach, 0), max(int(cols[0]) - reach, 0)
    near_y1 = min(int(rows[-1]) + reach + 1, roi_mask.shape[0])
    near_x1 = min(int(cols[-1]) + reach + 1, roi_mask.shape[1])
    near = (slice(near_y0, near_y1), slice(near_x0, near_x1))
    distance = cv2.distanceTransform(
        (~uncovered[near]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )
    unknown = np.zeros_like(roi_mask)
    unknown[near] = (distance <= band) & (roi_mask[near] | uncovered[near])
    ys, xs = np.nonzero(unknown)
    pad = int(math.ceil(radius)) + 2
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, roi_mask.shape[0])
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, roi_mask.shape[1])
    crop = np.ascontiguousarray(roi_image[y0:y1, x0:x1])
    crop_unknown = unknown[y0:y1, x0:x1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        small_size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, small_size, interpolation=cv2.INTER_AREA)
        # Area-average then > 0: a coarse pixel is unknown if any pixel under
        # it is, so no object colour enters the fill.
        small_unknown = cv2.resize(
            crop_unknown.astype(np.float32), small_size, interpolation=cv2.INTER_AREA
        ) > 0
        filled = cv2.inpaint(
            small, small_unknown.astype(np.uint8), max(1.0, radius * scale), cv2.INPAINT_TELEA
        )
        filled = cv2.resize(filled, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        filled = cv2.inpaint(crop, crop_unknown.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    result[y0:y1, x0:x1][crop_unknown] = filled[crop_unknown]
    return result


def visible_change_mask(
    before: np.ndarray, after: np.ndarray, threshold: int, *, min_speck: int = 8
) -> np.ndarray:
    """Pixels whose largest channel change exceeds ``threshold``, without specks.

    Parameters
    ----------
    before, after : ndarray of uint8, shape (h, w, 3)
    threshold : int
        Grey levels.
    min_speck : int, optional
        8-connected pieces of fewer pixels are dropped (an area opening).

    Returns
    -------
    ndarray of bool, shape (h, w)

    Examples
    --------
    >>> before = np.zeros((6, 6, 3), np.uint8); after = before.copy()
    >>> after[1:4, 1:4, 0] = 40; after[5, 5, 1] = 200  # a blob and a speck
    >>> int(visible_change_mask(before, after, 12, min_speck=4).sum())
    9
    """
    # cv2.split + cv2.max: numpy's max over the channel axis is ~50x slower.
    blue, green, red = cv2.split(cv2.absdiff(before, after))
    change = cv2.max(cv2.max(blue, green), red) > threshold
    _, labels, stats, _ = cv2.connectedComponentsWithStats(change.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_speck
    keep[0] = False  # label 0 is the unchanged background
    return keep[labels]


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def _as_foreground(foreground: np.ndarray) -> np.ndarray:
    foreground = as_bool_mask(foreground, "foreground")
    if not foreground.any():
        raise ValueError("foreground is empty: there is no object to place an anomaly on")
    return foreground


def _whole_object_roi(foreground: np.ndarray, margin: int) -> List[int]:
    """The foreground's bounding box grown by ``margin``, clipped to the image."""
    height, width = foreground.shape
    rows = np.flatnonzero(foreground.any(axis=1))
    cols = np.flatnonzero(foreground.any(axis=0))
    return [
        max(int(rows[0]) - margin, 0),
        min(int(rows[-1]) + 1 + margin, height),
        max(int(cols[0]) - margin, 0),
        min(int(cols[-1]) + 1 + margin, width),
    ]


def _sample_control_points(
    rng: np.random.Generator, roi_mask: np.ndarray, count: int, inset: int, spacing: float
) -> List[List[int]]:
    height, width = roi_mask.shape
    allowed = np.zeros_like(roi_mask)
    if height > 2 * inset and width > 2 * inset:
        interior = (slice(inset, height - inset), slice(inset, width - inset))
        allowed[interior] = roi_mask[interior]
    flat = np.flatnonzero(allowed)
    if len(flat) == 0:
        return []
    chosen: List[List[int]] = []
    # Greedy rejection over a fixed batch of candidates: no unbounded loop.
    for index in rng.integers(len(flat), size=20 * count):
        y, x = divmod(int(flat[index]), width)
        if all((y - cy) ** 2 + (x - cx) ** 2 >= spacing**2 for cy, cx in chosen):
            chosen.append([y, x])
            if len(chosen) == count:
                break
    return chosen


def _random_offsets(rng: np.random.Generator, count: int, fraction: Tuple[float, float]) -> List[List[float]]:
    lengths = rng.uniform(*fraction, size=count)
    angles = rng.uniform(0.0, 2.0 * math.pi, size=count)
    return [[float(r * math.sin(a)), float(r * math.cos(a))] for r, a in zip(lengths, angles)]


def _dent_centre(rng: np.random.Generator, foreground: np.ndarray, inset: float) -> List[int]:
    """A foreground pixel at least ``inset`` px from the background and image border."""
    # Padding with background makes the image border count as an edge, so a
    # dent on a texture image does not hang far outside the image.
    padded = np.pad(foreground, 1).astype(np.uint8)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    # A thin object holds no pixel that deep: take its deepest ones instead.
    allowed = depth >= min(inset, float(depth.max()))
    flat = np.flatnonzero(allowed)
    y, x = divmod(int(flat[rng.integers(len(flat))]), foreground.shape[1])
    return [y, x]


def sample_deformation_params(
    rng: np.random.Generator, foreground: np.ndarray, config: DeformationConfig = DEFAULT_CONFIG
) -> Dict[str, Any]:
    """Draw every random choice of a deformation anomaly.

    Parameters
    ----------
    rng : numpy.random.Generator
    foreground : ndarray of bool, shape (H, W)
        Object mask (non-empty).
    config : DeformationConfig, optional

    Returns
    -------
    dict
        JSON-serialisable parameters of :func:`render_deformation`:

        - ``partial`` (bool): ``config.partial``; ``True`` renders the dent,
          ``False`` the whole-object variant.
        - ``centre`` ([y, x] ints) and ``radius`` (float, pixels): the dent's
          disc.
        - ``src_points`` (list of [y, x] ints): dent control points, image
          coordinates, within ``dent_ctrl_reach * radius`` of the centre.
        - ``offsets`` (list of [dy, dx] floats, norm <= 1): displacement of
          each point in units of ``max_offset``.
        - ``max_offset`` (float): pixels; overriding it rescales every offset.
        - ``dent_taper`` (float): taper width in radii.
        - ``shading`` (float) and ``light_angle`` (radians): the dent's peak
          relative brightness change and the light direction in the image
          plane; ``shading_threshold``: see :class:`DeformationConfig`.
        - ``whole_object_seed`` (int): seeds the whole-object variant's ROI,
          points and offsets (drawn when rendering, see the module
          docstring), so ``partial=False`` alone switches variant.
        - ``num_ctrl_points`` (int), ``whole_max_offset`` (pixels),
          ``margin`` (pixels), ``ctrl_border_inset``, ``ctrl_min_spacing``,
          ``offset_fraction`` ([low, high]): the whole-object variant's
          settings.
        - ``grid_step``, ``anchor_spacing``, ``inpaint_radius``,
          ``inpaint_max_side``, ``min_jacobian``, ``move_threshold``,
          ``closing_radius``, ``paste_reach``, ``diff_threshold``,
          ``min_mean_change``, ``min_label_pixels``: rendering settings
          (pixels, pixel counts or grey levels).

    Raises
    ------
    ValueError
        A foreground of the wrong shape or dtype, or an empty one.
    """
    foreground = _as_foreground(foreground)
    height, width = foreground.shape
    scale = min(height, width) / REFERENCE_SIZE
    diameter = math.sqrt(4.0 * np.count_nonzero(foreground) / math.pi)
    radius = float(rng.uniform(*config.dent_radius_fraction)) * diameter
    radius = min(max(radius, config.min_dent_radius * scale, 4.0), config.max_dent_radius * min(height, width))
    radius = max(radius, 4.0)
    centre = _dent_centre(rng, foreground, config.dent_centre_inset * radius)
    max_offset = float(rng.uniform(*config.dent_offset)) * radius
    count = int(rng.integers(config.dent_ctrl_points[0], config.dent_ctrl_points[1] + 1))
    # Candidates uniform in the inner disc; greedy spacing as for the whole
    # object, but the first point always fits.
    reach = config.dent_ctrl_reach * radius
    spacing = config.ctrl_min_spacing * max_offset
    points: List[List[int]] = []
    for _ in range(20 * count):
        r, a = reach * math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi)
        y = min(max(int(round(centre[0] + r * math.sin(a))), 0), height - 1)
        x = min(max(int(round(centre[1] + r * math.cos(a))), 0), width - 1)
        if all((y - py) ** 2 + (x - px) ** 2 >= spacing**2 for py, px in points):
            points.append([y, x])
            if len(points) == count:
                break
    offsets = _random_offsets(rng, len(points), config.offset_fraction)
    shading = float(rng.uniform(*config.dent_shading))
    light_angle = float(rng.uniform(0.0, 2.0 * math.pi))
    return {
        "partial": bool(config.partial),
        "centre": centre,
        "radius": float(radius),
        "src_points": points,
        "offsets": offsets,
        "max_offset": max_offset,
        "dent_taper": float(config.dent_taper),
        "shading": shading,
        "light_angle": light_angle,
        "shading_threshold": float(config.shading_threshold),
        **({"light_from_image": True} if config.light_from_image else {}),
        "whole_object_seed": int(rng.integers(2**31)),
        "num_ctrl_points": [int(v) for v in config.num_ctrl_points],
        "whole_max_offset": [float(v) * scale for v in config.max_offset],
        "margin": int(round(config.margin * scale)),
        "ctrl_border_inset": float(config.ctrl_border_inset),
        "ctrl_min_spacing": float(config.ctrl_min_spacing),
        "offset_fraction": [float(v) for v in config.offset_fraction],
        "grid_step": max(2, int(round(config.grid_step * scale))),
        "anchor_spacing": max(4, int(round(config.anchor_spacing * scale))),
        "inpaint_radius": max(1.0, float(config.inpaint_radius * scale)),
        "inpaint_max_side": int(config.inpaint_max_side),
        "min_jacobian": float(config.min_jacobian),
        "move_threshold": float(config.move_threshold),
        "closing_radius": max(1, int(round(config.closing_radius * scale))),
        "paste_reach": int(config.paste_reach),
        "diff_threshold": int(config.diff_threshold),
        "min_mean_change": float(config.min_mean_change),
        "min_label_pixels": max(16, int(round(config.min_label_pixels * scale * scale))),
    }


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _points(values: Sequence[Sequence[float]], name: str) -> np.ndarray:
    points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(points)):
        raise ValueError(f"params[{name!r}] must hold finite numbers")
    return points


def radial_taper(shape: Tuple[int, int], centre: Tuple[float, float], radius: float, width: float) -> np.ndarray:
    """Weight that is 1 near a disc's centre and falls smoothly to 0 at its rim.

    ``taper = smoothstep((1 - rho) / width)`` clipped to [0, 1], with ``rho``
    the distance to ``centre`` in radii: 1 for ``rho <= 1 - width``, 0 for
    ``rho >= 1``, with zero slope at both ends (no crease in the warp).

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the field.
    centre : tuple of float
        ``(y, x)`` in the field's pixel coordinates (may lie outside it).
    radius : float
        Disc radius, pixels (> 0).
    width : float
        Ramp width in radii, in (0, 1].

    Returns
    -------
    ndarray of float32, shape (height, width)

    Examples
    --------
    >>> radial_taper((1, 5), (0, 0), 4.0, 0.5)[0].round(3).tolist()
    [1.0, 1.0, 1.0, 0.5, 0.0]
    """
    if not radius > 0 or not 0 < width <= 1:
        raise ValueError(f"radius must be > 0 and width in (0, 1], got {radius}, {width}")
    ys = (np.arange(shape[0], dtype=np.float32) - np.float32(centre[0])) / np.float32(radius)
    xs = (np.arange(shape[1], dtype=np.float32) - np.float32(centre[1])) / np.float32(radius)
    rho = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    t = np.clip((1.0 - rho) / np.float32(width), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def circle_anchors(centre: Tuple[float, float], radius: float, spacing: float) -> np.ndarray:
    """At least 8 evenly spaced ``(y, x)`` points on a circle, float64 (K, 2).

    Examples
    --------
    >>> circle_anchors((0.0, 0.0), 1.0, 10.0).shape
    (8, 2)
    """
    count = max(8, int(math.ceil(2.0 * math.pi * radius / max(spacing, 1e-9))))
    angles = np.arange(count) * (2.0 * math.pi / count)
    return np.column_stack([centre[0] + radius * np.sin(angles), centre[1] + radius * np.cos(angles)])


def _min_jacobian(dy: np.ndarray, dx: np.ndarray) -> float:
    """Smallest determinant of the Jacobian of the backward map ``p - d(p)``."""
    if min(dy.shape) < 2:
        return 1.0
    dyy, dyx = np.gradient(dy)
    dxy, dxx = np.gradient(dx)
    return float(((1.0 - dyy) * (1.0 - dxx) - dyx * dxy).min())


def image_light_angle(image: np.ndarray, centre: Tuple[int, int], radius: float, fallback: float) -> float:
    """Direction (radians, image plane, ``(sin, cos) = (dy, dx)``) towards which the part
    brightens around ``centre``: the luminance gradient smoothed over about the dent's size.

    ``fallback`` where the surface is evenly lit (gradient under 0.05 grey levels per pixel).
    """
    height, width = image.shape[:2]
    cy, cx = int(centre[0]), int(centre[1])
    reach = int(math.ceil(2.0 * radius)) + 1
    y0, y1, x0, x1 = max(cy - reach, 0), min(cy + reach + 1, height), max(cx - reach, 0), min(cx + reach + 1, width)
    grey = image[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
    sigma = max(radius / 2.0, 1.0)
    smooth = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    grad_y, grad_x = np.gradient(smooth)
    gy, gx = float(grad_y[cy - y0, cx - x0]), float(grad_x[cy - y0, cx - x0])
    if math.hypot(gy, gx) < 0.05:
        return float(fallback)
    return math.atan2(gy, gx)


def _dent_field(params: Dict[str, Any], shape: Tuple[int, int], light_angle: Optional[float] = None):
    """ROI and tapered TPS field of the dent in ``params`` (lit from ``light_angle``, default the params')."""
    height, width = shape
    cy, cx = (int(v) for v in params["centre"])
    radius = float(params["radius"])
    if not (0 <= cy < height and 0 <= cx < width) or not radius >= 2.0:
        raise ValueError(
            f"params centre {params['centre']} must lie in the {height}x{width} image "
            f"and radius {radius} be >= 2"
        )
    reach = int(math.ceil(radius)) + 1
    roi = [max(cy - reach, 0), min(cy + reach + 1, height), max(cx - reach, 0), min(cx + reach + 1, width)]
    src = _points(params["src_points"], "src_points")
    offsets = _points(params["offsets"], "offsets")
    if len(offsets) != len(src):
        raise ValueError(f"params has {len(src)} src_points but {len(offsets)} offsets")
    if len(src) == 0:
        raise PlacementError("no control point in the dent")
    if np.any(np.hypot(src[:, 0] - cy, src[:, 1] - cx) > radius):
        raise ValueError("params['src_points'] must lie inside the dent's disc")
    origin = np.array([roi[0], roi[2]], dtype=np.float64)
    src = src - origin
    dst = src + float(params["max_offset"]) * offsets
    local_centre = (cy - roi[0], cx - roi[2])
    anchors = circle_anchors(local_centre, radius, float(params["anchor_spacing"]))
    roi_shape = (roi[1] - roi[0], roi[3] - roi[2])
    try:
        dy, dx = tps_displacement(
            np.vstack([src, anchors]), np.vstack([dst, anchors]), roi_shape, grid_step=int(params["grid_step"])
        )
    except np.linalg.LinAlgError as exc:
        raise PlacementError(f"control points coincide, the spline is singular: {exc}") from exc
    taper = radial_taper(roi_shape, local_centre, radius, float(params["dent_taper"]))
    dy *= taper
    dx *= taper
    jacobian = _min_jacobian(dy, dx)
    if jacobian < float(params["min_jacobian"]):
        raise PlacementError(f"the dent folds the image (Jacobian determinant {jacobian:.2f})")
    # The taper doubles as the dent's height profile: its slope, lit from
    # light_angle, brightens one flank and darkens the other (a dent on a
    # smooth, evenly shaded surface shows mostly through this).
    slope_y, slope_x = np.gradient(taper)
    angle = float(params["light_angle"]) if light_angle is None else float(light_angle)
    light = (math.sin(angle), math.cos(angle))
    steepest = 1.5 / (float(params["dent_taper"]) * radius)  # max slope of the smoothstep
    gain = 1.0 + float(params["shading"]) * (slope_y * light[0] + slope_x * light[1]) / steepest
    return roi, dy, dx, gain.astype(np.float32)


def _whole_object_field(params: Dict[str, Any], foreground: np.ndarray):
    """ROI and field of the whole-object variant, drawn from ``whole_object_seed``."""
    rng = np.random.default_rng(int(params["whole_object_seed"]))
    max_offset = float(rng.uniform(*params["whole_max_offset"]))
    low, high = (int(v) for v in params["num_ctrl_points"])
    count = int(rng.integers(low, high + 1))
    roi = _whole_object_roi(foreground, int(params["margin"]))
    roi_shape = (roi[1] - roi[0], roi[3] - roi[2])
    if min(roi_shape) < 2:
        raise PlacementError("the object's box is too thin to bend")
    inset = int(math.ceil(float(params["ctrl_border_inset"]) * max_offset))
    spacing = float(params["ctrl_min_spacing"]) * max_offset
    roi_mask = foreground[roi[0] : roi[1], roi[2] : roi[3]]
    points = _sample_control_points(rng, roi_mask, count, inset, spacing)
    if not points:
        raise PlacementError("no control point fits inside the deformation ROI")
    src = np.asarray(points, dtype=np.float64)
    dst = src + max_offset * np.asarray(_random_offsets(rng, len(points), params["offset_fraction"]))
    anchors = roi_border_anchors(roi_shape, int(params["anchor_spacing"]))
    try:
        dy, dx = tps_displacement(
            np.vstack([src, anchors]), np.vstack([dst, anchors]), roi_shape, grid_step=int(params["grid_step"])
        )
    except np.linalg.LinAlgError as exc:
        raise PlacementError(f"control points coincide, the spline is singular: {exc}") from exc
    # The spline leaks up to ~0.8 px between border anchors: the taper makes
    # the warp exactly the identity on the ROI border (no seam).
    taper = border_taper(roi_shape, max((float(params["ctrl_border_inset"]) - 1.0) * max_offset, 1.0))
    return roi, dy * taper, dx * taper, None


def _disc_kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def deformation_label(
    moved: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    *,
    closing_radius: int,
    paste_reach: int,
    diff_threshold: int,
) -> Tuple[np.ndarray, np.ndarray]:
    """The label of a warp and the region where the warped image is kept.

    Steps 2-4 of the label rule in the module docstring.

    Parameters
    ----------
    moved : ndarray of bool, shape (h, w)
        Step 1's moved pixels.
    before, after : ndarray of uint8, shape (h, w, 3)
        The source and the warped image.
    closing_radius : int
        Radius of the closing disc, pixels (>= 1).
    paste_reach : int
        Chebyshev reach of the kept region around the closed one, pixels.
    diff_threshold : int
        Grey levels above which a channel change is visible.

    Returns
    -------
    label : ndarray of bool, shape (h, w)
        Closed, hole-filled moved region plus the visible change near it.
    keep : ndarray of bool, shape (h, w)
        Where ``after`` is used; elsewhere the output is ``before``.

    Examples
    --------
    >>> before = np.zeros((9, 9, 3), np.uint8); after = before.copy()
    >>> moved = np.zeros((9, 9), bool); moved[3:6, 3:6] = True; moved[4, 4] = False
    >>> after[2, 4] = 50  # visible, next to the moved square
    >>> label, keep = deformation_label(moved, before, after, closing_radius=1,
    ...                                 paste_reach=1, diff_threshold=12)
    >>> int(label.sum()), int(keep.sum())
    (10, 25)
    """
    # Pad before closing so a region touching the array border is not eroded
    # there (cv2 treats outside pixels as set for erosion only by default).
    pad = closing_radius + 1
    region = np.pad(moved.view(np.uint8), pad)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, _disc_kernel(closing_radius))[pad:-pad, pad:-pad]
    region = ndimage.binary_fill_holes(region.view(bool))
    keep = cv2.dilate(region.view(np.uint8), np.ones((2 * paste_reach + 1,) * 2, np.uint8)).view(bool)
    blue, green, red = cv2.split(cv2.absdiff(before, after))
    visible = cv2.max(cv2.max(blue, green), red) > diff_threshold
    label = ndimage.binary_fill_holes(region | (visible & keep))
    return label, keep | label


def render_deformation(
    image: np.ndarray, foreground: np.ndarray, params: Dict[str, Any]
) -> Tuple[np.ndarray, np.ndarray]:
    """Dent (or bend) the object as ``params`` say (deterministic).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    foreground : ndarray of bool, shape (H, W)
    params : dict
        As returned by :func:`sample_deformation_params`.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
        The deformed image; the input's bytes outside the label's
        ``paste_reach`` dilation.
    mask : ndarray of bool, shape (H, W)
        The label (see the module docstring).

    Raises
    ------
    ValueError
        Bad inputs, or params that do not fit the image (centre outside it,
        control points outside the dent, offsets not matching the points).
    PlacementError
        No control points, coinciding moved points, a folding dent, or a
        change too small or too faint to see (``min_label_pixels``,
        ``min_mean_change``).
    """
    image, foreground = check_inputs(image, foreground)
    height, width = foreground.shape
    if params["partial"]:
        light_angle = None
        if params.get("light_from_image"):
            light_angle = image_light_angle(image, params["centre"], float(params["radius"]),
                                            float(params["light_angle"]))
        roi, dy, dx, gain = _dent_field(params, (height, width), light_angle)
    else:
        roi, dy, dx, gain = _whole_object_field(params, foreground)
    y0, y1, x0, x1 = roi
    roi_image = image[y0:y1, x0:x1]
    roi_mask = foreground[y0:y1, x0:x1]
    warped_image, warped_mask = warp_roi(roi_image, roi_mask, dy, dx)
    uncovered = roi_mask & ~warped_mask
    radius = float(params["inpaint_radius"])
    # An uncovered pixel is at most its own displacement away from the
    # background, so the hole is at most that wide; see inpaint_uncovered.
    hole_width = 0.0
    if uncovered.any():
        hole_width = float(np.sqrt((dy[uncovered] ** 2 + dx[uncovered] ** 2).max()))
    new_roi = inpaint_uncovered(
        roi_image,
        roi_mask,
        uncovered,
        radius=radius,
        band=hole_width + 2.0 * radius + 1.0,
        max_side=int(params["inpaint_max_side"]),
    )
    # cv2.copyTo is the masked paste new_roi[warped_mask] = warped_image[...],
    # ~100x faster than numpy boolean indexing on (h, w, 3).
    shaded = np.zeros_like(warped_mask)
    if gain is not None:
        # Shading belongs to the (moved) object surface, not the background.
        shaded = (np.abs(gain - 1.0) >= float(params["shading_threshold"])) & warped_mask
        shaded_image = warped_image.astype(np.float32) * gain[..., None]
        warped_image = np.clip(np.rint(shaded_image), 0, 255).astype(np.uint8)
    new_roi = cv2.copyTo(warped_image, warped_mask.astype(np.uint8), new_roi)

    threshold = np.float32(params["move_threshold"])
    moved = ((dy * dy + dx * dx >= threshold * threshold) & (roi_mask | warped_mask)) | uncovered | shaded
    roi_label, keep = deformation_label(
        moved,
        roi_image,
        new_roi,
        closing_radius=int(params["closing_radius"]),
        paste_reach=int(params["paste_reach"]),
        diff_threshold=int(params["diff_threshold"]),
    )
    new_roi = cv2.copyTo(new_roi, keep.view(np.uint8), roi_image.copy())
    labelled, needed = int(np.count_nonzero(roi_label)), int(params["min_label_pixels"])
    if labelled < needed:
        raise PlacementError(f"the warp moved only {labelled} pixels (need {needed})")
    blue, green, red = cv2.split(cv2.absdiff(roi_image, new_roi))
    mean_change = float(cv2.max(cv2.max(blue, green), red)[roi_label].mean())
    if mean_change < float(params["min_mean_change"]):
        raise PlacementError(
            f"the warp is too faint: mean change {mean_change:.1f} grey levels inside the label "
            f"(need {params['min_mean_change']})"
        )
    out_image = image.copy()
    out_image[y0:y1, x0:x1] = new_roi
    label = np.zeros((height, width), dtype=bool)
    label[y0:y1, x0:x1] = roi_label
    return out_image, label


DEFORMATION = register_anomaly(
    AnomalyType("deformation", sample_deformation_params, render_deformation)
)
