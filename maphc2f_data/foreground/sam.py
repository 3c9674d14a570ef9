"""The SAM foreground extractor (thin: torch is imported only when one is built).

Rule (documented here because it decides every SAM foreground):

1. SAM encodes the image once and answers a **centred box prompt** covering
   the central 90% of each side with its three multimask candidates
   (:class:`maphc2f_data.models.sam.SamBoxPrompter`).
2. A candidate is **valid** when it covers between
   :attr:`SamSelection.min_fraction` and :attr:`SamSelection.max_fraction` of
   the image and at most :attr:`SamSelection.max_border_contact` of the
   outermost pixel frame (a mask along most of the border is the backdrop).
3. SAM's candidates are nested granularities (part / larger part / whole).
   Among the valid ones whose predicted IoU is within
   :attr:`SamSelection.score_margin` of the best valid score, the **largest**
   is taken: the whole object, as long as SAM is about as confident in it.
4. The chosen mask is tidied like the classical one
   (:func:`maphc2f_data.foreground.classical.tidy_mask`: open/close, fill small
   holes, drop border-dominated specks, keep components >= 10% of the largest).
5. No valid candidate (or nothing left after tidying): the whole image is
   returned, which :func:`maphc2f_data.foreground.foreground_for` records as
   ``"whole-image"``.

SamAutomaticMaskGenerator is not used: it builds its own predictor (a second
image encoding) and decodes a 32x32 grid of point prompts, many times the cost
of one box prompt, to find objects that the central box already encloses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from maphc2f_data.foreground.classical import DEFAULT_CONFIG, frame_contact, tidy_mask
from maphc2f_data.names import SAM_MODELS, check_sam_model


@dataclass(frozen=True)
class SamSelection:
    """How :func:`select_object_mask` picks one of SAM's candidates.

    Attributes
    ----------
    min_fraction, max_fraction : float
        Valid candidates cover this range of the image.
    max_border_contact : float
        Valid candidates cover at most this fraction of the outermost frame.
    score_margin : float
        Candidates this close to the best valid predicted IoU count as equally
        good; the largest of them wins.
    """

    min_fraction: float = 0.005
    max_fraction: float = 0.95
    max_border_contact: float = 0.5
    score_margin: float = 0.05


def select_object_mask(masks: np.ndarray, scores: np.ndarray,
                       selection: SamSelection = SamSelection()) -> Optional[int]:
    """Index of the object mask among SAM's candidates (rule in the module docstring).

    Parameters
    ----------
    masks : ndarray of bool, shape (K, H, W)
        Candidate masks.
    scores : ndarray of float, shape (K,)
        SAM's predicted IoU per candidate.
    selection : SamSelection, optional

    Returns
    -------
    int or None
        The chosen index; None when no candidate is valid. Ties go to the
        lower index, so the choice is deterministic.

    Examples
    --------
    >>> masks = np.zeros((3, 20, 20), bool)
    >>> masks[0, 8:12, 8:12] = True          # a part
    >>> masks[1, 4:16, 4:16] = True          # the whole object
    >>> masks[2] = True                      # the whole picture
    >>> select_object_mask(masks, np.array([0.93, 0.90, 0.99]))
    1
    """
    masks = np.asarray(masks)
    scores = np.asarray(scores, dtype=np.float64)
    if masks.ndim != 3 or scores.shape != (masks.shape[0],):
        raise ValueError(f"need masks (K, H, W) and scores (K,), got {masks.shape} and {scores.shape}")
    masks = masks != 0
    fractions = masks.reshape(len(masks), -1).mean(axis=1)
    contacts = np.array([frame_contact(mask) for mask in masks])
    valid = (
        (fractions >= selection.min_fraction)
        & (fractions <= selection.max_fraction)
        & (contacts <= selection.max_border_contact)
        & np.isfinite(scores)
    )
    if not valid.any():
        return None
    best = scores[valid].max()
    near_best = valid & (scores >= best - selection.score_margin)
    candidates = np.flatnonzero(near_best)
    # Largest area first, lowest index on ties (argmax returns the first).
    return int(candidates[np.argmax(fractions[candidates])])


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 with shape (H, W, 3), got {image.dtype} {image.shape}")
    return image


class SamForeground:
    """SAM as a :class:`~maphc2f_data.foreground.ForegroundExtractor`.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        A built model (parts built outside and handed in, as segment-anything
        does): :func:`maphc2f_data.models.sam.build_sam` for real weights,
        :func:`maphc2f_data.models.sam.build_tiny_sam` in tests.
    model_type : {"vit_b", "vit_l", "vit_h"}
        Which variant ``sam`` is; recorded as ``method = "sam-<model_type>"``.
    device : str or torch.device, optional
        Default: CUDA when available, else the CPU.
    selection : SamSelection, optional

    Attributes
    ----------
    method : str
        ``"sam-vit_h"`` etc. (also the cache key).
    """

    def __init__(self, sam: Any, model_type: str = "vit_h", device: Optional[Any] = None,
                 selection: SamSelection = SamSelection()):
        check_sam_model(model_type)
        from maphc2f_data.models.sam import SamBoxPrompter  # torch only from here on

        self._prompter = SamBoxPrompter(sam, device=device)
        self.selection = selection
        self.method = f"sam-{model_type}"
        self.cache_key = self.method

    @classmethod
    def from_checkpoint(cls, checkpoint: Union[str, Path], model_type: str = "vit_h",
                        device: Optional[Any] = None) -> "SamForeground":
        """Build the registry model ``model_type`` with weights from ``checkpoint``.

        Raises
        ------
        UserError
            Unknown ``model_type``.
        CheckpointError
            Missing, unsafe or mismatching checkpoint.
        """
        check_sam_model(model_type)
        from maphc2f_data.models.sam import build_sam

        return cls(build_sam(model_type, checkpoint), model_type, device=device)

    @property
    def device(self):
        """The torch device SAM runs on."""
        return self._prompter.device

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Object mask, bool (H, W), of a uint8 (H, W, 3) RGB image (all True if none found)."""
        image = _check_image(image)
        masks, scores = self._prompter(image)
        index = select_object_mask(masks, scores, self.selection)
        if index is not None:
            mask = tidy_mask(masks[index], DEFAULT_CONFIG)
            if mask.any():
                return mask
        return np.ones(image.shape[:2], bool)

    def __repr__(self) -> str:
        return f"SamForeground(method={self.method!r}, device={str(self.device)!r})"
