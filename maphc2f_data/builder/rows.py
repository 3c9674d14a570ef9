"""One planned sample -> one dataset row (the sample path, then PNG encoding)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from maphc2f_data.builder.plan import PlannedSample
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.refine import Refiner
from maphc2f_data.sampling import Sample, StageTimes, make_samples_batch, params_json
from maphc2f_data.synthesis import SynthesisError


#: One source image's share of :func:`make_rows_batch`:
#: ``(samples, image, foreground, foreground_png, foreground_method)``.
ImageGroup = Tuple[Sequence[PlannedSample], np.ndarray, np.ndarray, bytes, str]


def make_rows_batch(groups: Sequence[ImageGroup], *, png_compression: int, times: StageTimes,
                    refiner: Optional[Refiner] = None) -> List[List[Union[Dict[str, Any], SynthesisError]]]:
    """Make the planned samples of several source images and return their dataset rows.

    The anomalies of all the groups go to a batch refiner in one call
    (:func:`~maphc2f_data.sampling.make_samples_batch`).

    Parameters
    ----------
    groups : sequence of (samples, image, foreground, foreground_png, foreground_method)
        Per source image: its planned samples; the resized image, uint8
        (S, S, 3) (:func:`maphc2f_data.sampling.load_square`); its bool
        (S, S) foreground, already PNG-encoded (once per image, not per row);
        how the foreground was made ("sam-vit_h", "classical", ...).
    png_compression : int
        OpenCV PNG level for the image columns.
    times : StageTimes
        Accumulates synthesis, refine, metrics and encode time.
    refiner : Refiner, optional
        Default: none (``stage = "raw"``).

    Returns
    -------
    list of list
        Per group, per sample, in order: its row (PNG bytes for
        image/mask/foreground, ``defect_type`` as its name, ``quality``
        None), or the :class:`~maphc2f_data.synthesis.SynthesisError` of a
        sample that could not be placed (the caller records a failure).
    """
    made = make_samples_batch([(image, foreground, [(s.defect_type, s.seed) for s in samples])
                               for samples, image, foreground, _, _ in groups], refiner=refiner, times=times)
    return [[result if isinstance(result, SynthesisError) else _row(sample, result, foreground_png,
                                                                    foreground_method, png_compression, times)
             for sample, result in zip(samples, results)]
            for (samples, _, _, foreground_png, foreground_method), results in zip(groups, made)]


def _row(sample: PlannedSample, made: Sample, foreground_png: bytes, foreground_method: str,
         png_compression: int, times: StageTimes) -> Dict[str, Any]:
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
