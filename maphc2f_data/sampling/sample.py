"""Making one sample: load and resize, synthesise, refine, measure.

Every image is resized to a ``size x size`` square, with ``cv2.INTER_AREA``
when it loses pixels and ``cv2.INTER_CUBIC`` when it gains them, so rows of
one dataset always share one shape and a preview shows the pixels a build
writes. Like the benchmarks' usual practice (MVTec AD is square, VisA about
3:2), moderate aspect ratios are squeezed, not cropped; an image longer than
:data:`MAX_ASPECT` times its width (or the other way round) is first
centre-cropped along its long side to that ratio, so a line-scan strip is
never stretched 256-fold.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from maphc2f_data.refine import IdentityRefiner, Refiner, check_refined
from maphc2f_data.sampling import statistics
from maphc2f_data.synthesis import SynthesisError, synthesize

#: Largest long/short side ratio squeezed into a square as it is; longer
#: images are centre-cropped to it first (see the module docstring).
MAX_ASPECT = 2.0

#: The refiner of samples made without one.
IDENTITY = IdentityRefiner()

#: Stages whose time a build accumulates per shard and sums in its report:
#: load and foreground (per source image), then per sample synthesis, refine
#: (the npcF/npcF++ models), metrics (the statistics), encode and write.
STAGES = ("load", "foreground", "synthesis", "refine", "metrics", "encode", "write")


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
    """Resize ``image`` to ``size x size`` (the package's one resize rule).

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
    image = crop_to_aspect(image, MAX_ASPECT)
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    shrinking = height * width > size * size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def resize_label(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize an anomaly mask of a square image to ``size x size``: a pixel is anomalous when at least half
    of its area was.

    The label rule that goes with :func:`resize_square`: when shrinking, the
    mask's area coverage (``cv2.INTER_AREA``) is thresholded at 0.5, so a
    defect keeps its size and a crack thinner than half a target pixel
    vanishes from the label as it fades from the image; when growing,
    nearest neighbour.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, H)
    size : int

    Returns
    -------
    ndarray of bool, shape (size, size)

    Examples
    --------
    >>> mask = np.zeros((8, 8), bool); mask[:, :3] = True
    >>> resize_label(mask, 4)[0]
    array([ True,  True, False, False])
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be a square (H, H) array, got shape {mask.shape}")
    if mask.shape == (size, size):
        return mask.copy()
    if mask.shape[0] > size:
        return cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def crop_to_aspect(image: np.ndarray, max_aspect: float) -> np.ndarray:
    """Centre crop of ``image`` whose long side is at most ``max_aspect`` times its short one.

    Examples
    --------
    >>> crop_to_aspect(np.zeros((16, 4096, 3), np.uint8), 2.0).shape
    (16, 32, 3)
    >>> crop_to_aspect(np.zeros((300, 200, 3), np.uint8), 2.0).shape
    (300, 200, 3)
    """
    height, width = image.shape[:2]
    if width > max_aspect * height:
        keep = int(round(max_aspect * height))
        start = (width - keep) // 2
        return image[:, start:start + keep]
    if height > max_aspect * width:
        keep = int(round(max_aspect * width))
        start = (height - keep) // 2
        return image[start:start + keep]
    return image


def load_square(source: Any, item: Any, size: int) -> np.ndarray:
    """``item``'s image from ``source``, resized by :func:`resize_square`.

    Raises
    ------
    CorruptImageError
        The file cannot be decoded.
    """
    return resize_square(source.load_image(item), size)


@dataclass(frozen=True)
class Sample:
    """One synthetic anomaly, ready to be stored or shown.

    Attributes
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        The (refined) anomalous image.
    mask : ndarray of bool, shape (H, W)
        The anomaly label (refinement never changes it).
    defect_type : str
    seed : int
    params : dict
        Every sampled parameter; ``synthesize(defect_type, normal, fg, seed,
        **params)`` re-creates the raw image.
    stage : str
        ``"raw"`` or the refiner's stage.
    anomaly_area, on_foreground, contrast : float or None
        :mod:`.statistics` of the sample; None when made with ``measure=False``.
    """

    image: np.ndarray
    mask: np.ndarray
    defect_type: str
    seed: int
    params: Dict[str, Any]
    stage: str
    anomaly_area: Optional[float] = None
    on_foreground: Optional[float] = None
    contrast: Optional[float] = None


def make_sample(image: np.ndarray, foreground: np.ndarray, kind: str, seed: int, *,
                refiner: Optional[Refiner] = None, measure: bool = True, times: Optional[StageTimes] = None,
                **overrides: Any) -> Sample:
    """Synthesise, refine and measure one anomaly on a prepared image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        The normal image, already resized (:func:`load_square`).
    foreground : ndarray of bool, shape (H, W)
        Object mask the anomaly is confined to.
    kind : str
        A registered anomaly type (:data:`maphc2f_data.synthesis.DEFECT_TYPES`).
    seed : int
        Non-negative sample seed.
    refiner : Refiner, optional
        Applied to the raw anomaly; default :class:`IdentityRefiner` (stage "raw").
    measure : bool
        Compute the statistics (CIEDE2000 contrast costs ~8 ms at 512 px;
        online augmentation can skip it).
    times : StageTimes, optional
        Accumulates synthesis, refine and metrics time (builds report them).
    **overrides
        Fixed synthesis parameters (e.g. a row's ``params``).

    Returns
    -------
    Sample

    Raises
    ------
    SynthesisError
        No anomaly could be placed.
    """
    (made,) = make_samples(image, foreground, [(kind, seed, overrides)], refiner=refiner, measure=measure,
                           times=times)
    if isinstance(made, Exception):
        raise made
    return made


#: One sample to make: ``(kind, seed)`` or ``(kind, seed, overrides)``.
Request = Union[Tuple[str, int], Tuple[str, int, Mapping[str, Any]]]


#: One image's share of a :func:`make_samples_batch` call: ``(image, foreground, requests)``.
Job = Tuple[np.ndarray, np.ndarray, Sequence[Request]]


def make_samples(image: np.ndarray, foreground: np.ndarray, requests: Sequence[Request], *,
                 refiner: Optional[Refiner] = None, measure: bool = True, times: Optional[StageTimes] = None
                 ) -> List[Union[Sample, SynthesisError]]:
    """:func:`make_sample` for several anomalies on one image, refined in one batch.

    A refiner with ``refine_batch(normals, raws, masks)`` (the npcF/npcF++
    refiners, the Ray runner's refinement actors) gets every raw anomaly of
    the image in one call (one forward pass on a GPU); other refiners are
    called per sample. :func:`make_samples_batch` does the same for several
    images at once.

    Returns
    -------
    list
        Per request, in order: the :class:`Sample`, or the
        :class:`~maphc2f_data.synthesis.SynthesisError` of one that could
        not be placed (the others are still made).
    """
    (results,) = make_samples_batch([(image, foreground, requests)], refiner=refiner, measure=measure, times=times)
    return results


def make_samples_batch(jobs: Sequence[Job], *, refiner: Optional[Refiner] = None, measure: bool = True,
                       times: Optional[StageTimes] = None) -> List[List[Union[Sample, SynthesisError]]]:
    """:func:`make_samples` for several images, with one refinement call for all their anomalies.

    Builds hand a refiner the samples of several source images at once, so a
    GPU refines full batches instead of one image's handful. Which samples
    share a call is decided by the caller from the plan, never by timing, so
    the output stays deterministic.

    Parameters
    ----------
    jobs : sequence of (image, foreground, requests)
        Per image: uint8 (H, W, 3), bool (H, W) and its requests (see
        :func:`make_samples`); every image of one call has the same size.

    Returns
    -------
    list of list
        Per job, per request, in order: the :class:`Sample` or the
        :class:`~maphc2f_data.synthesis.SynthesisError`.
    """
    refiner = IDENTITY if refiner is None else refiner

    def timed(stage: str) -> ContextManager[None]:
        return times.timed(stage) if times is not None else nullcontext()

    made: List[List[Any]] = []
    for image, foreground, requests in jobs:
        made.append([])
        for request in requests:
            kind, seed = request[0], int(request[1])
            overrides = dict(request[2]) if len(request) > 2 else {}
            with timed("synthesis"):
                try:
                    made[-1].append(synthesize(kind, image, foreground, seed, **overrides))
                except SynthesisError as exc:
                    made[-1].append(exc)
    placed = [(j, i) for j, raws in enumerate(made) for i, raw in enumerate(raws) if not isinstance(raw, Exception)]
    refined: Dict[Tuple[int, int], np.ndarray] = {}
    with timed("refine"):
        batch = getattr(refiner, "refine_batch", None)
        if batch is not None and placed:
            outputs = batch([jobs[j][0] for j, _ in placed], [made[j][i].image for j, i in placed],
                            [made[j][i].mask for j, i in placed])
            refined = {key: check_refined(refiner, out, made[key[0]][key[1]].image) for key, out in zip(placed, outputs)}
        else:
            refined = {(j, i): check_refined(refiner, refiner.refine(jobs[j][0], made[j][i].image, made[j][i].mask),
                                             made[j][i].image)
                       for j, i in placed}
    results: List[List[Union[Sample, SynthesisError]]] = []
    for j, (image, foreground, requests) in enumerate(jobs):
        results.append([])
        for index, (request, raw) in enumerate(zip(requests, made[j])):
            if isinstance(raw, Exception):
                results[-1].append(raw)
                continue
            figures: Dict[str, Optional[float]] = {"anomaly_area": None, "on_foreground": None, "contrast": None}
            if measure:
                with timed("metrics"):
                    figures = {
                        "anomaly_area": statistics.anomaly_area(raw.mask),
                        "on_foreground": statistics.on_foreground(raw.mask, foreground),
                        "contrast": statistics.contrast(image, refined[(j, index)], raw.mask),
                    }
            results[-1].append(Sample(image=refined[(j, index)], mask=raw.mask, defect_type=request[0],
                                      seed=int(request[1]), params=raw.params, stage=refiner.stage, **figures))
    return results


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
