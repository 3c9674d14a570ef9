"""Per-sample figures stored with every row (sample statistics, not evaluation metrics).

They let users stratify the dataset and build curricula: how large the anomaly
is, how much of it lies on the object, and how visible it is.
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, xyz_tristimulus_values
from skimage.color.colorconv import xyz_from_rgb

from maphc2f_data.synthesis.base import as_bool_mask


def anomaly_area(mask: np.ndarray) -> float:
    """Fraction of the image covered by the anomaly.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    float in [0, 1]
    """
    mask = as_bool_mask(mask)
    return float(np.count_nonzero(mask)) / float(mask.size)


def on_foreground(mask: np.ndarray, foreground: np.ndarray) -> float:
    """Fraction of the anomaly's pixels that lie inside the foreground.

    Parameters
    ----------
    mask, foreground : ndarray of bool, shape (H, W)

    Returns
    -------
    float in [0, 1]; 0.0 for an empty mask.
    """
    mask = as_bool_mask(mask)
    foreground = as_bool_mask(foreground, "foreground")
    if mask.shape != foreground.shape:
        raise ValueError(f"mask shape {mask.shape} does not match foreground shape {foreground.shape}")
    pixels = np.count_nonzero(mask)
    if pixels == 0:
        return 0.0
    return float(np.count_nonzero(mask & foreground)) / float(pixels)


#: sRGB decoding of the 256 uint8 levels, exactly as ``skimage.color.rgb2xyz``
#: computes it per pixel (a table lookup instead of a power per channel).
_SRGB_TO_LINEAR = np.arange(256, dtype=np.float64) / 255.0
_SRGB_TO_LINEAR = np.where(_SRGB_TO_LINEAR > 0.04045, ((_SRGB_TO_LINEAR + 0.055) / 1.055) ** 2.4,
                           _SRGB_TO_LINEAR / 12.92)
_XYZ_FROM_RGB_T = np.ascontiguousarray(xyz_from_rgb.T, dtype=np.float64)
_D65_WHITE = xyz_tristimulus_values(illuminant="D65", observer="2", dtype=np.float64)


def srgb_to_lab(pixels: np.ndarray) -> np.ndarray:
    """CIE Lab (D65, 2 degree observer) of sRGB pixels.

    The same conversion as ``skimage.color.rgb2lab`` (agrees to float
    rounding) at a fraction of its cost: a lookup table replaces the sRGB
    power curve.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (N, 3)

    Returns
    -------
    ndarray of float64, shape (N, 3)
        L in [0, 100], a and b.
    """
    xyz = _SRGB_TO_LINEAR[pixels] @ _XYZ_FROM_RGB_T
    xyz /= _D65_WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[:, 0] = 116.0 * f[:, 1] - 16.0
    lab[:, 1] = 500.0 * (f[:, 0] - f[:, 1])
    lab[:, 2] = 200.0 * (f[:, 1] - f[:, 2])
    return lab


def _bounding_box(mask: np.ndarray) -> "tuple[slice, slice]":
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def contrast(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference between two images inside ``mask``.

    Only masked pixels whose colour changed are converted to CIE Lab (sRGB,
    D65, :func:`srgb_to_lab`); unchanged ones have a difference of exactly 0
    and only count in the mean's denominator. Work is confined to the mask's
    bounding box, so the cost grows with the anomaly, not the image.

    Parameters
    ----------
    before, after : ndarray of uint8, shape (H, W, 3)
        RGB images of the same size (input and anomalous output).
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    float >= 0; 0.0 for an empty mask.

    Examples
    --------
    >>> a = np.zeros((4, 4, 3), np.uint8); b = a.copy(); b[0, 0] = 255
    >>> m = np.zeros((4, 4), bool); m[0, 0] = True
    >>> round(contrast(a, b, m), 1)
    100.0
    """
    before = np.asarray(before)
    after = np.asarray(after)
    mask = as_bool_mask(mask)
    for name, image in (("before", before), ("after", after)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if before.shape != after.shape or before.shape[:2] != mask.shape:
        raise ValueError(f"shapes differ: before {before.shape}, after {after.shape}, mask {mask.shape}")
    pixels = int(np.count_nonzero(mask))
    if pixels == 0:
        return 0.0
    box = _bounding_box(mask)
    before, after, mask = before[box], after[box], mask[box]
    changed = mask & np.any(before != after, axis=2)
    if not changed.any():
        return 0.0
    lab_before = srgb_to_lab(before[changed])
    lab_after = srgb_to_lab(after[changed])
    return float(np.sum(deltaE_ciede2000(lab_before, lab_after)) / pixels)
