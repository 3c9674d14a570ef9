"""One planned sample -> one dataset row (the sample path, then PNG encoding)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from maphc2f_data.builder.plan import PlannedSample
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.refine import Refiner
from maphc2f_data.sampling import StageTimes, make_sample, params_json


def make_row(sample: PlannedSample, image: np.ndarray, foreground: np.ndarray, foreground_png: bytes,
             foreground_method: str, *, png_compression: int, times: StageTimes,
             refiner: Optional[Refiner] = None) -> Dict[str, Any]:
    """Make ``sample`` on a prepared image and return its dataset row.

    Parameters
    ----------
    sample : PlannedSample
    image : ndarray of uint8, shape (S, S, 3)
        The resized source image (:func:`maphc2f_data.sampling.load_square`).
    foreground : ndarray of bool, shape (S, S)
    foreground_png : bytes
        ``foreground`` already encoded (once per source image, not per row).
    foreground_method : str
        How ``foreground`` was made ("sam-vit_h", "classical", ...).
    png_compression : int
        OpenCV PNG level for the image columns.
    times : StageTimes
        Accumulates synthesis, refine, metrics and encode time.
    refiner : Refiner, optional
        Default: none (``stage = "raw"``).

    Returns
    -------
    dict
        The row per the dataset contract: PNG bytes for image/mask/foreground,
        ``defect_type`` as its name, ``quality`` None.

    Raises
    ------
    SynthesisError
        No anomaly could be placed (the caller records a failure).
    """
    made = make_sample(image, foreground, sample.defect_type, sample.seed, refiner=refiner, times=times)
    with times.timed("encode"):
        image_png = encode_png(made.image, png_compression)
        mask_png = encode_png(made.mask, png_compression)
        params = params_json(made.params)
    item = sample.item
    return {
        "image": image_png,
        "mask": mask_png,
        "foreground": foreground_png,
        "sample_id": sample.sample_id,
        "source_dataset": item.source,
        "category": item.category,
        "defect_type": made.defect_type,
        "source_image": item.path,
        "seed": made.seed,
        "params": params,
        "foreground_method": foreground_method,
        "stage": made.stage,
        "anomaly_area": made.anomaly_area,
        "on_foreground": made.on_foreground,
        "contrast": made.contrast,
        "quality": None,
    }
