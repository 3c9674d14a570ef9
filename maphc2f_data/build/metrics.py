"""Per-sample physics and difficulty figures stored with every row.

They let users stratify the dataset and build curricula: how large the anomaly
is, how much of it lies on the object, and how visible it is.
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

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


def contrast(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference between two images inside ``mask``.

    Only masked pixels whose colour changed are converted to CIE Lab (sRGB,
    D65); unchanged ones have a difference of exactly 0 and only count in the
    mean's denominator. The cost grows with the anomaly, not the image.

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
    changed = mask & np.any(before != after, axis=2)
    if not changed.any():
        return 0.0
    lab_before = rgb2lab(before[changed][:, None, :])
    lab_after = rgb2lab(after[changed][:, None, :])
    return float(np.sum(deltaE_ciede2000(lab_before, lab_after)) / pixels)
