"""Making one row: resize, synthesise, measure, encode.

Every image is resized to a ``size x size`` square (the aspect ratio is not
kept), with ``cv2.INTER_AREA`` when it loses pixels and ``cv2.INTER_CUBIC``
when it gains them, so rows of one dataset always share one shape.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping

import cv2
import numpy as np

from maphc2f_data.build import metrics
from maphc2f_data.build.plan import PlannedSample

#: Stages whose time is accumulated per shard and summed in the report.
#: ``refine`` (the npcF/npcF++ models, between synthesis and encoding) stays
#: 0 until refinement lands.
STAGES = ("load", "foreground", "synthesis", "metrics", "refine", "encode", "write")
#: ``stage`` column value of rows made without refinement.
RAW_STAGE = "raw"


class StageTimes:
    """Seconds spent per stage, accumulated with :meth:`timed`."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {stage: 0.0 for stage in STAGES}

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def as_dict(self) -> Dict[str, float]:
        return dict(self.seconds)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``image`` to ``size x size``.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    size : int

    Returns
    -------
    ndarray of uint8, shape (size, size, 3)
        ``image`` itself when it already has that shape.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    shrinking = height * width > size * size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _json_default(value: Any) -> Any:
    # Synthesisers may leave numpy scalars or arrays in params.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"params value of type {type(value).__name__} is not JSON-serialisable")


def params_json(params: Mapping[str, Any]) -> str:
    """``params`` as compact JSON with sorted keys (byte-stable)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=_json_default,
                      allow_nan=False)


def make_row(sample: PlannedSample, image: np.ndarray, foreground: np.ndarray, foreground_png: bytes,
             foreground_method: str, *, png_compression: int, times: StageTimes) -> Dict[str, Any]:
    """Synthesise ``sample`` on a prepared image and return its dataset row.

    Parameters
    ----------
    sample : PlannedSample
    image : ndarray of uint8, shape (S, S, 3)
        The resized source image.
    foreground : ndarray of bool, shape (S, S)
    foreground_png : bytes
        ``foreground`` already encoded (once per source image, not per row).
    foreground_method : str
        How ``foreground`` was made ("sam-vit_h", "classical", ...).
    png_compression : int
        OpenCV PNG level for the image columns.
    times : StageTimes
        Accumulates synthesis, metrics and encode time.

    Returns
    -------
    dict
        The row per the dataset contract: PNG bytes for image/mask/foreground,
        ``defect_type`` as its name, ``stage`` "raw", ``quality`` None.

    Raises
    ------
    SynthesisError
        No anomaly could be placed (the caller records a failure).
    """
    from maphc2f_data.dataset.png import encode_png
    from maphc2f_data.synthesis import synthesize

    with times.timed("synthesis"):
        result = synthesize(sample.defect_type, image, foreground, sample.seed)
    with times.timed("metrics"):
        area = metrics.anomaly_area(result.mask)
        inside = metrics.on_foreground(result.mask, foreground)
        delta_e = metrics.contrast(image, result.image, result.mask)
    with times.timed("encode"):
        image_png = encode_png(result.image, png_compression)
        mask_png = encode_png(result.mask, png_compression)
        params = params_json(result.params)
    item = sample.item
    return {
        "image": image_png,
        "mask": mask_png,
        "foreground": foreground_png,
        "sample_id": sample.sample_id,
        "source_dataset": item.source,
        "category": item.category,
        "defect_type": sample.defect_type,
        "source_image": item.path,
        "seed": int(sample.seed),
        "params": params,
        "foreground_method": foreground_method,
        "stage": RAW_STAGE,
        "anomaly_area": area,
        "on_foreground": inside,
        "contrast": delta_e,
        "quality": None,
    }
