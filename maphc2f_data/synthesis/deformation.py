"""Deformation anomalies: a local thin-plate-spline warp of the object.

Paper section 3.2.1 (eq. 8), supplementary 7.3 and Algorithm 5
(TPS_DEFORM_LOCAL_INPAINT, with the TPS_DEFORM_LOCAL_INPAINT_PARTIAL variant).

What :func:`render_deformation` does (numbers are Algorithm 5's steps):

1-2. **ROI.** ``partial=False``: the foreground's bounding box grown by a
     margin (room for the object to bulge out). ``partial=True``: a sub-box
     centred on a foreground pixel, so only part of the object bends, with
     fewer stretched edges. Texture images (foreground covering nearly the
     whole image) always use the partial variant: a warp of the whole image
     would look like a resampled normal image, not a defect.
4.   **Control points.** ``m`` points of the ROI's foreground, each moved by
     at most ``max_offset`` pixels: ``dst = src + offset``. They keep
     ``2 * max_offset`` from the ROI border and from each other, so the warp
     cannot tear against the border or fold between two points.
5-6. **TPS.** A thin-plate-spline RBF (``scipy.interpolate.RBFInterpolator``,
     ``kernel="thin_plate_spline"``) interpolates the displacement
     ``dst - src`` *at the destination points*. The backward map is eq. 8,
     ``(x', y') = (x, y) - Rbf(x, y)``: output pixel ``dst_i`` samples the
     input at ``src_i``, i.e. the control point moves from ``src`` to ``dst``.
     Zero-displacement anchors every ``anchor_spacing`` pixels on the ROI
     border keep the warp local; between anchors the spline still leaks up to
     ~0.8 px through the border, so the field is also multiplied by a smooth
     border taper (0 on the border, 1 from ``taper_width`` inwards, which
     every ``dst`` point lies beyond). The warp is therefore exactly the
     identity on the ROI border and the deformed ROI joins the untouched
     image without a seam. The field is evaluated on a coarse grid (every
     ``grid_step`` px) and upsampled bicubically: 2-11 ms instead of
     30-380 ms for a dense evaluation at 512x512, within 0.92 px of it (see
     :func:`tps_displacement`).
7.   **Remap** the ROI image (``INTER_LINEAR``) and its object mask
     (``INTER_NEAREST``), both with ``BORDER_REFLECT``.
3,8-9. **Inpaint and compose.** The output ROI is the ROI with the
     background inpainted (``cv2.inpaint``, Telea) where the object was, and
     the warped object pasted over it. Only object pixels the warped object no
     longer covers are ever shown, so only they and a band around them are
     inpainted, at reduced resolution when that region is large (see
     :func:`inpaint_uncovered`; inpainting the whole object costs 100-300 ms
     at 512x512). Deviation from the paper's pseudocode: its step 7 remaps
     the *inpainted* ROI, which would paste background over the object; we
     remap the original ROI so that the object itself moves.

**Label mask.** The mask returned with the image is not the warped object
mask of Algorithm 5 step 10 (that marks the whole object, most of which only
shifts slightly). It marks where the output *visibly* differs from the input:
``max over channels |out - in| > diff_threshold`` (default 12 grey levels),
cleaned with an area opening: 8-connected pieces smaller than
``min_speck_pixels`` (default 8) are dropped as interpolation speckles. (A 3x3
morphological opening would also erase the 1-2 px wide band along a moved
edge, which is most of the visible change on small images and at the tips of
every crescent.) Changes at or below the threshold stay unlabelled. Outside
the ROI the output is the input byte for byte, so the label lies inside it. If
fewer than ``min_label_pixels`` pixels are labelled the warp is invisible and
:class:`PlacementError` is raised, so
:func:`~maphc2f_data.synthesis.base.synthesize` retries with another sub-seed;
a foreground too small to show such a change (e.g. a few pixels) ends in
:class:`~maphc2f_data.synthesis.base.SynthesisError`.

Every random choice is drawn by :func:`sample_deformation_params` into plain
JSON values; :func:`render_deformation` is deterministic from them. Lengths in
:class:`DeformationConfig` are for 512x512 images and are scaled by
``min(H, W) / 512``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np
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
    num_ctrl_points : tuple of int
        Inclusive range of the number of control points requested (``m`` in
        Algorithm 5). Fewer are placed when the ROI is too small to hold
        them at ``ctrl_min_spacing``.
    max_offset : tuple of float
        Range of the largest control-point displacement, pixels.
    offset_fraction : tuple of float
        Each control point moves ``u * max_offset`` pixels in a uniformly
        random direction, ``u`` drawn from this range (the lower bound keeps
        every point pushing visibly).
    partial_probability : float
        Probability of the PARTIAL variant (a sub-ROI of the foreground) on
        object images; texture images always use it.
    texture_fraction : float
        A foreground covering at least this fraction of the image makes it a
        texture image.
    sub_roi_fraction : tuple of float
        Range of the sub-ROI side as a fraction of the foreground bounding
        box's side, drawn per axis.
    min_sub_roi : float
        Smallest sub-ROI side, pixels. The side is also at least
        ``(2 * ctrl_border_inset + ctrl_min_spacing) * max_offset``, so that
        control points fit inside.
    margin : float
        Margin around the foreground bounding box in the full variant, pixels.
    ctrl_border_inset : float
        Control points keep ``ctrl_border_inset * max_offset`` pixels from the
        ROI border. Must exceed 1: the border taper is
        ``(ctrl_border_inset - 1) * max_offset`` wide, so every moved point
        stays where the taper is 1.
    ctrl_min_spacing : float
        Control points keep ``ctrl_min_spacing * max_offset`` pixels from one
        another (nearby points pushed apart would fold the image).
    inpaint_radius : float
        ``cv2.inpaint`` neighbourhood radius, pixels (at least 1 once scaled).
    inpaint_max_side : int
        The crop around the uncovered pixels is inpainted at a resolution
        where its long side is at most this (not scaled: it bounds the cost,
        which grows with the pixel count).
    grid_step : float
        Node spacing of the coarse grid the spline is evaluated on, pixels
        (at least 2 once scaled).
    anchor_spacing : float
        Spacing of the zero-displacement anchors on the ROI border, pixels
        (at least 4 once scaled).
    diff_threshold : int
        A pixel is labelled when a channel changed by more than this many
        grey levels.
    min_speck_pixels : int
        Changed 8-connected pieces smaller than this are not labelled (not
        scaled: interpolation specks are pixel-sized at any image size).
    min_label_pixels : float
        Fewest labelled pixels for a visible sample (scaled by the *area*
        ratio, at least 16).
    """

    num_ctrl_points: Tuple[int, int] = (4, 10)
    max_offset: Tuple[float, float] = (10.0, 30.0)
    offset_fraction: Tuple[float, float] = (0.4, 1.0)
    partial_probability: float = 0.5
    texture_fraction: float = 0.9
    sub_roi_fraction: Tuple[float, float] = (0.3, 0.6)
    min_sub_roi: float = 64.0
    margin: float = 32.0
    ctrl_border_inset: float = 2.0
    ctrl_min_spacing: float = 2.0
    inpaint_radius: float = 3.0
    inpaint_max_side: int = 128
    grid_step: float = 6.0
    anchor_spacing: float = 24.0
    diff_threshold: int = 12
    min_speck_pixels: int = 8
    min_label_pixels: float = 64.0

    def __post_init__(self) -> None:
        low, high = self.num_ctrl_points
        if not 1 <= low <= high:
            raise ValueError(
                f"num_ctrl_points must satisfy 1 <= low <= high, got {self.num_ctrl_points}"
            )
        for name in ("max_offset", "offset_fraction", "sub_roi_fraction"):
            low_f, high_f = getattr(self, name)
            if not 0 < low_f <= high_f:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(low_f, high_f)}")
        if self.offset_fraction[1] > 1.0:
            raise ValueError(f"offset_fraction must not exceed 1, got {self.offset_fraction}")
        if not 0.0 <= self.partial_probability <= 1.0:
            raise ValueError(
                f"partial_probability must be in [0, 1], got {self.partial_probability}"
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


def _sample_roi(
    rng: np.random.Generator,
    foreground: np.ndarray,
    partial: bool,
    max_offset: float,
    config: DeformationConfig,
    scale: float,
) -> List[int]:
    height, width = foreground.shape
    rows = np.flatnonzero(foreground.any(axis=1))
    cols = np.flatnonzero(foreground.any(axis=0))
    box_y0, box_y1 = int(rows[0]), int(rows[-1]) + 1
    box_x0, box_x1 = int(cols[0]), int(cols[-1]) + 1
    if not partial:
        margin = int(round(config.margin * scale))
        return [
            max(box_y0 - margin, 0),
            min(box_y1 + margin, height),
            max(box_x0 - margin, 0),
            min(box_x1 + margin, width),
        ]
    fraction_y, fraction_x = rng.uniform(*config.sub_roi_fraction, size=2)
    # Room for the control points: the border inset on both sides plus one
    # point spacing between them.
    room = (2 * config.ctrl_border_inset + config.ctrl_min_spacing) * max_offset
    smallest = max(config.min_sub_roi * scale, room)
    side_y = max(2, int(round(min(height, max(smallest, fraction_y * (box_y1 - box_y0))))))
    side_x = max(2, int(round(min(width, max(smallest, fraction_x * (box_x1 - box_x0))))))
    # Centre on a random foreground pixel, then slide the box into the image.
    flat = np.flatnonzero(foreground)
    centre_y, centre_x = divmod(int(flat[rng.integers(len(flat))]), width)
    y0 = min(max(centre_y - side_y // 2, 0), height - side_y)
    x0 = min(max(centre_x - side_x // 2, 0), width - side_x)
    return [y0, y0 + side_y, x0, x0 + side_x]


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

        - ``partial`` (bool): the sub-ROI variant was chosen.
        - ``roi`` ([y0, y1, x0, x1] ints): half-open box, image coordinates.
        - ``num_ctrl_points`` (int): how many control points were requested.
        - ``src_points`` (list of [y, x] ints): control points, image
          coordinates; may be fewer than requested, or empty, in which case
          rendering raises :class:`PlacementError`.
        - ``offsets`` (list of [dy, dx] floats, norm <= 1): displacement of
          each point in units of ``max_offset``.
        - ``max_offset`` (float): pixels; overriding it rescales every offset.
        - ``taper_width``, ``grid_step``, ``anchor_spacing``,
          ``inpaint_radius``, ``inpaint_max_side``, ``diff_threshold``,
          ``min_speck_pixels``, ``min_label_pixels``: rendering settings
          (pixels, pixel counts or grey levels).

    Raises
    ------
    ValueError
        A foreground of the wrong shape or dtype, or an empty one.
    """
    foreground = _as_foreground(foreground)
    height, width = foreground.shape
    scale = min(height, width) / REFERENCE_SIZE
    is_texture = bool(np.count_nonzero(foreground) >= config.texture_fraction * foreground.size)
    # Draw the flag even for textures, so one stream serves both image kinds.
    partial = bool(rng.random() < config.partial_probability) or is_texture
    max_offset = float(rng.uniform(*config.max_offset)) * scale
    num_ctrl_points = int(rng.integers(config.num_ctrl_points[0], config.num_ctrl_points[1] + 1))
    roi = _sample_roi(rng, foreground, partial, max_offset, config, scale)
    roi_mask = foreground[roi[0] : roi[1], roi[2] : roi[3]]
    inset = int(math.ceil(config.ctrl_border_inset * max_offset))
    spacing = config.ctrl_min_spacing * max_offset
    points = _sample_control_points(rng, roi_mask, num_ctrl_points, inset, spacing)
    lengths = rng.uniform(*config.offset_fraction, size=len(points))
    angles = rng.uniform(0.0, 2.0 * math.pi, size=len(points))
    return {
        "partial": partial,
        "roi": [int(v) for v in roi],
        "num_ctrl_points": num_ctrl_points,
        "src_points": [[y + roi[0], x + roi[2]] for y, x in points],
        "offsets": [
            [float(r * math.sin(a)), float(r * math.cos(a))] for r, a in zip(lengths, angles)
        ],
        "max_offset": max_offset,
        "taper_width": (config.ctrl_border_inset - 1.0) * max_offset,
        "grid_step": max(2, int(round(config.grid_step * scale))),
        "anchor_spacing": max(4, int(round(config.anchor_spacing * scale))),
        "inpaint_radius": max(1.0, float(config.inpaint_radius * scale)),
        "inpaint_max_side": int(config.inpaint_max_side),
        "diff_threshold": int(config.diff_threshold),
        "min_speck_pixels": int(config.min_speck_pixels),
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


def render_deformation(
    image: np.ndarray, foreground: np.ndarray, params: Dict[str, Any]
) -> Tuple[np.ndarray, np.ndarray]:
    """Warp part of the object as ``params`` say (deterministic).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    foreground : ndarray of bool, shape (H, W)
    params : dict
        As returned by :func:`sample_deformation_params`.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
        The deformed image; equal to the input outside ``params["roi"]``.
    mask : ndarray of bool, shape (H, W)
        Visible change (see the module docstring), inside the ROI.

    Raises
    ------
    ValueError
        Bad inputs, or params that do not fit the image (ROI outside it,
        control points outside the ROI, offsets not matching the points).
    PlacementError
        No control points, coinciding moved points, or a visible change
        smaller than ``params["min_label_pixels"]``.
    """
    image, foreground = check_inputs(image, foreground)
    height, width = foreground.shape
    y0, y1, x0, x1 = (int(v) for v in params["roi"])
    if not (0 <= y0 and y0 + 2 <= y1 <= height and 0 <= x0 and x0 + 2 <= x1 <= width):
        raise ValueError(
            f"params['roi'] {params['roi']} is not a box of at least 2x2 "
            f"inside the {height}x{width} image"
        )
    roi_height, roi_width = y1 - y0, x1 - x0
    src = _points(params["src_points"], "src_points") - (y0, x0)
    offsets = _points(params["offsets"], "offsets")
    if len(offsets) != len(src):
        raise ValueError(f"params has {len(src)} src_points but {len(offsets)} offsets")
    if len(src) == 0:
        raise PlacementError("no control point fits inside the deformation ROI")
    if np.any(src < 0) or np.any(src[:, 0] > roi_height - 1) or np.any(src[:, 1] > roi_width - 1):
        raise ValueError(f"params['src_points'] must lie inside params['roi'] {params['roi']}")
    dst = src + float(params["max_offset"]) * offsets

    anchors = roi_border_anchors((roi_height, roi_width), int(params["anchor_spacing"]))
    try:
        dy, dx = tps_displacement(
            np.vstack([src, anchors]),
            np.vstack([dst, anchors]),
            (roi_height, roi_width),
            grid_step=int(params["grid_step"]),
        )
    except np.linalg.LinAlgError as exc:
        raise PlacementError(f"control points coincide, the spline is singular: {exc}") from exc
    taper = border_taper((roi_height, roi_width), max(float(params["taper_width"]), 1.0))
    dy *= taper
    dx *= taper

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
    new_roi = cv2.copyTo(warped_image, warped_mask.astype(np.uint8), new_roi)

    out_image = image.copy()
    out_image[y0:y1, x0:x1] = new_roi
    label = np.zeros((height, width), dtype=bool)
    label[y0:y1, x0:x1] = visible_change_mask(
        roi_image, new_roi, int(params["diff_threshold"]), min_speck=int(params["min_speck_pixels"])
    )
    labelled, needed = int(label.sum()), int(params["min_label_pixels"])
    if labelled < needed:
        raise PlacementError(f"the warp changed only {labelled} pixels visibly (need {needed})")
    return out_image, label


DEFORMATION = register_anomaly(
    AnomalyType("deformation", sample_deformation_params, render_deformation)
)
