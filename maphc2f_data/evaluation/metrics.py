"""Anomaly-detection metrics: image AUROC, pixel AUROC and AUPRO.

numpy / scipy only (no torch), so evaluation can run anywhere.

* :func:`image_auroc` and :func:`pixel_auroc` are the area under the ROC
  curve computed from ranks (the Mann-Whitney U statistic): a tied
  (anomalous, normal) pair counts one half, exactly as
  ``sklearn.metrics.roc_auc_score`` does.
* :func:`aupro` is the MVTec AD definition (Bergmann et al., the
  ``pro_curve_util.py`` / ``generic_util.py`` evaluation code): ground-truth
  regions are the 8-connected components of every test mask, pooled over all
  images; the per-region overlap at a threshold is the fraction of a region's
  pixels scored at or above it, averaged over all regions; the false-positive
  rate is taken over all pixels outside every region. The curve comes from one
  sort of all pixel scores plus cumulative sums, is integrated with the
  trapezoid rule up to ``fpr_limit`` (the curve is linearly interpolated at
  the limit) and divided by ``fpr_limit``.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata

__all__ = ["aupro", "evaluate", "image_auroc", "pixel_auroc", "pro_curve", "trapezoid"]

# 8-connectivity: diagonal neighbours belong to the same region.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in size: {labels.size} != {scores.size}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    positive = labels.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both classes; only one class is present")
    ranks = rankdata(scores, method="average")  # ties share their mean rank
    rank_sum = float(np.sum(ranks[positive], dtype=np.float64))
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * float(n_neg)))


def image_auroc(labels, scores) -> float:
    """Image-level AUROC.

    Parameters
    ----------
    labels : array_like, shape (N,)
        1 (or True) for anomalous images, 0 for normal ones.
    scores : array_like, shape (N,)
        Image anomaly scores, higher means more anomalous.

    Returns
    -------
    float in [0, 1]; ties between an anomalous and a normal score count 1/2.

    Examples
    --------
    >>> image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    return _auroc(labels, scores)


def _check_maps(masks, maps) -> Tuple[np.ndarray, np.ndarray]:
    masks = np.asarray(masks)
    maps = np.asarray(maps, dtype=np.float64)
    # Accept (N, 1, H, W) as produced by models.
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if maps.ndim == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim != 3 or masks.shape != maps.shape:
        raise ValueError(
            f"masks and maps must both have shape (N, H, W); got {masks.shape} and {maps.shape}"
        )
    if not np.isin(masks, (0, 1)).all():
        raise ValueError("masks must be binary (0/1 or bool)")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    return masks.astype(bool), maps


def pixel_auroc(masks, maps) -> float:
    """Pixel-level AUROC over all pixels of all images pooled together.

    Parameters
    ----------
    masks : array_like, shape (N, H, W) or (N, 1, H, W)
        Binary ground truth, 1 for anomalous pixels.
    maps : array_like, same shape
        Pixel anomaly scores.
    """
    masks, maps = _check_maps(masks, maps)
    return _auroc(masks, maps)


def pro_curve(masks, maps) -> Tuple[np.ndarray, np.ndarray]:
    """The PRO curve: per-region overlap against false-positive rate.

    Every threshold equal to a distinct pixel score is one point; the curve
    starts at (0, 0) and ends at (1, 1).

    Returns
    -------
    fprs, pros : ndarray of float64, non-decreasing
    """
    masks, maps = _check_maps(masks, maps)
    fp_step = np.zeros(maps.shape, dtype=np.float64)  # 1 for pixels outside every region
    pro_step = np.zeros(maps.shape, dtype=np.float64)  # 1 / region size inside a region
    n_regions = 0
    for i, mask in enumerate(masks):
        labelled, n = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        n_regions += n
        fp_step[i][labelled == 0] = 1.0
        if n:
            sizes = np.bincount(labelled.ravel())
            inside = labelled > 0
            pro_step[i][inside] = 1.0 / sizes[labelled[inside]]
    n_ok = fp_step.sum()
    if n_regions == 0:
        raise ValueError("AUPRO needs at least one anomalous ground-truth region")
    if n_ok == 0:
        raise ValueError("AUPRO needs at least one pixel outside the ground-truth regions")

    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    scores = maps.ravel()[order]
    fprs = np.cumsum(fp_step.ravel()[order]) / n_ok
    pros = np.cumsum(pro_step.ravel()[order]) / n_regions
    # Pixels with equal scores enter together: keep only the last point of a tie.
    keep = np.append(np.diff(scores) != 0, True)
    fprs = np.minimum(fprs[keep], 1.0)
    pros = np.minimum(pros[keep], 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def trapezoid(x, y, *, x_max=None) -> float:
    """Trapezoid-rule area under ``y(x)`` for ascending ``x``, up to ``x_max``.

    When ``x_max`` is not a sample, the curve is linearly interpolated there
    between its neighbours (``x_max`` must lie inside the range of ``x``).
    Repeated ``x`` values (vertical steps) add no area.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length; got {x.shape} and {y.shape}")
    correction = 0.0
    if x_max is not None:
        if not x[0] <= x_max <= x[-1]:
            raise ValueError(f"x_max={x_max} lies outside [{x[0]}, {x[-1]}]")
        if not np.any(x == x_max):
            ins = int(np.searchsorted(x, x_max, side="right"))
            x0, x1, y0, y1 = x[ins - 1], x[ins], y[ins - 1], y[ins]
            y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
            correction = 0.5 * (y0 + y_at) * (x_max - x0)
        keep = x <= x_max
        x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) + correction)


def aupro(masks, maps, *, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD).

    Parameters
    ----------
    masks : array_like, shape (N, H, W) or (N, 1, H, W)
        Binary ground truth; at least one image must contain a region.
        Normal test images (empty masks) add only false-positive pixels.
    maps : array_like, same shape
        Pixel anomaly scores.
    fpr_limit : float
        Integration limit on the false-positive rate, in (0, 1].

    Returns
    -------
    float in [0, 1]: 1 for a perfect map, about ``fpr_limit / 2`` for
    uniformly random maps.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1]; got {fpr_limit}")
    fprs, pros = pro_curve(masks, maps)
    return trapezoid(fprs, pros, x_max=fpr_limit) / fpr_limit


def evaluate(masks, maps, labels, image_scores, *, fpr_limit: float = 0.3) -> Dict[str, float]:
    """All three test metrics at once.

    Returns
    -------
    dict with float values in [0, 1]: ``image_auroc`` (from ``labels`` and
    ``image_scores``), ``pixel_auroc`` and ``aupro`` (from ``masks`` and
    ``maps``).
    """
    return {
        "image_auroc": image_auroc(labels, image_scores),
        "pixel_auroc": pixel_auroc(masks, maps),
        "aupro": aupro(masks, maps, fpr_limit=fpr_limit),
    }
