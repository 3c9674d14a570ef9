"""Foreground (object) masks: where anomalies may be placed.

The paper uses SAM for this. Here the extractor is chosen by
:func:`make_extractor`: SAM when a checkpoint is given (``--sam-checkpoint``,
``--sam-model``), else a classical fallback that needs no weights. Every
sample records the method that made its foreground (``foreground_method``):

==============  ==============================================================
method          when
==============  ==============================================================
``sam-vit_h``   SAM (or ``sam-vit_b`` / ``sam-vit_l``) found the object
``classical``   the classical fallback found the object
``rendered``    the source knows the exact mask (the demo's rendered objects)
``whole-image`` texture categories, and extractor results that are degenerate
                (empty, under :data:`MIN_FOREGROUND_FRACTION` of the image, or
                the whole image because the extractor gave up)
==============  ==============================================================

:func:`foreground_for` applies these rules and the on-disk cache
(:class:`~maphc2f_data.foreground.cache.ForegroundCache`). Importing this
package never imports torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Protocol, Tuple, Union, runtime_checkable

import cv2
import numpy as np

from maphc2f_data.errors import CheckpointError
from maphc2f_data.foreground.cache import ForegroundCache, image_key
from maphc2f_data.foreground.classical import ClassicalConfig, ClassicalForeground, classical_foreground
from maphc2f_data.foreground.sam import SAM_MODELS, SamForeground, check_sam_model, select_object_mask

__all__ = [
    "MIN_FOREGROUND_FRACTION",
    "SAM_MODELS",
    "ClassicalConfig",
    "ClassicalForeground",
    "ForegroundCache",
    "ForegroundExtractor",
    "NoSamCheckpointWarning",
    "SamForeground",
    "classical_foreground",
    "foreground_for",
    "image_key",
    "make_extractor",
    "select_object_mask",
]

#: An extractor's mask covering less than this fraction of the image is
#: degenerate (no object found, or a speck) and replaced by the whole image:
#: an anomaly needs room, and "whole-image" says honestly what happened.
MIN_FOREGROUND_FRACTION = 0.005


@runtime_checkable
class ForegroundExtractor(Protocol):
    """Anything that maps an RGB image to an object mask.

    Attributes
    ----------
    method : str
        Recorded per sample: ``"classical"``, ``"sam-vit_b"``, ``"sam-vit_l"``,
        ``"sam-vit_h"``. Extractors may also set ``cache_key`` (used instead of
        ``method`` to key the cache, e.g. to include settings).
    """

    method: str

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> bool (H, W) object mask."""
        ...


class NoSamCheckpointWarning(UserWarning):
    """No SAM checkpoint was given; the classical fallback is used."""


def make_extractor(sam_checkpoint: Optional[Union[str, Path]] = None, sam_model: str = "vit_h",
                   device: Optional[str] = None) -> ForegroundExtractor:
    """The foreground extractor a build asks for.

    Parameters
    ----------
    sam_checkpoint : str or Path, optional
        SAM weights (``.pth`` loaded with ``weights_only=True``, or
        ``.safetensors``). None: the classical fallback, with a
        :class:`NoSamCheckpointWarning`.
    sam_model : {"vit_b", "vit_l", "vit_h"}
        SAM variant of the checkpoint (checked even without a checkpoint, so a
        typo fails early).
    device : str, optional
        Torch device for SAM; default CUDA when available, else the CPU.

    Returns
    -------
    ForegroundExtractor
        :class:`SamForeground` or :class:`ClassicalForeground`.

    Raises
    ------
    UserError
        Unknown ``sam_model`` (the message lists :data:`maphc2f_data.names.SAM_MODELS`).
    CheckpointError
        The checkpoint is missing, unreadable, unsafe to load, or does not
        match ``sam_model``.
    """
    check_sam_model(sam_model)
    if sam_checkpoint is None:
        warnings.warn(
            "no SAM checkpoint given: foregrounds come from the classical fallback (border colour model + "
            "GrabCut), recorded as foreground_method='classical'. SAM is recommended: pass "
            f"--sam-checkpoint PATH (e.g. sam_vit_h_4b8939.pth) and --sam-model {'|'.join(SAM_MODELS)}",
            NoSamCheckpointWarning,
            stacklevel=2,
        )
        return ClassicalForeground()
    path = Path(sam_checkpoint).expanduser()
    if not path.is_file():  # checked here so a typo fails before torch is imported
        raise CheckpointError(f"SAM checkpoint not found: {path}")
    return SamForeground.from_checkpoint(path, sam_model, device=device)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 with shape (H, W, 3), got {image.dtype} {image.shape}")
    return image


def _check_mask(mask: np.ndarray, shape: Tuple[int, int], what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{what} returned a mask of shape {mask.shape}, expected {shape}")
    if mask.dtype != np.bool_:
        raise ValueError(f"{what} returned a {mask.dtype} mask, expected bool")
    return mask


def foreground_for(source, item, image: np.ndarray, extractor: ForegroundExtractor,
                   cache: Optional[ForegroundCache] = None) -> Tuple[np.ndarray, str]:
    """The foreground of one source image and the method that made it.

    Parameters
    ----------
    source : maphc2f_data.sources.base.Source
    item : maphc2f_data.sources.base.SourceImage
    image : ndarray of uint8, shape (H, W, 3)
        The image as the dataset will hold it (already resized).
    extractor : ForegroundExtractor
    cache : ForegroundCache, optional
        Consulted (and filled) for extractor results only.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        Never empty.
    method : str
        ``"whole-image"`` for texture categories and degenerate results,
        ``"rendered"`` when the source knows the mask, else ``extractor.method``.

    Notes
    -----
    Order: texture category -> whole image; ``source.known_foreground(item)``
    -> that mask, resized to the image with nearest neighbour; otherwise the
    cache (key: image content + ``extractor.cache_key`` or ``.method``) or the
    extractor, whose raw result is cached. A result covering less than
    :data:`MIN_FOREGROUND_FRACTION` of the image, or all of it, is reported as
    the whole image with method ``"whole-image"``.
    """
    image = _check_image(image)
    shape = image.shape[:2]
    whole = np.ones(shape, bool)
    if source.is_texture(item.category):
        return whole, "whole-image"
    known = source.known_foreground(item)
    if known is not None:
        known = np.asarray(known)
        if known.ndim != 2:
            raise ValueError(f"known foreground of {item.path} must be (H, W), got {known.shape}")
        if known.shape != shape:
            resized = cv2.resize((known != 0).astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
            known = resized
        known = known != 0
        if known.any():
            return known, "rendered"
        return whole, "whole-image"
    method = extractor.method
    cache_key = getattr(extractor, "cache_key", method)
    mask = cache.get(image, cache_key) if cache is not None else None
    if mask is None:
        mask = _check_mask(extractor(image), shape, f"extractor {method!r}")
        if cache is not None:
            cache.put(image, cache_key, mask)
    if mask.mean() < MIN_FOREGROUND_FRACTION or mask.all():
        return whole, "whole-image"
    return mask, method
