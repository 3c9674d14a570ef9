"""The :class:`Refiner` protocol and the identity refiner."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Protocol, runtime_checkable

import numpy as np

from maphc2f_data.names import RAW_STAGE, STAGES


@runtime_checkable
class Refiner(Protocol):
    """Turns a raw synthetic anomaly into a refined one.

    Attributes
    ----------
    stage : str
        The ``stage`` value rows refined by it carry (one of
        :data:`maphc2f_data.names.STAGES`).
    fingerprint : mapping
        JSON-able description of everything that changes the refined bytes
        (e.g. checkpoint hashes); builds mix it into each shard's plan hash,
        so resuming with other weights rebuilds.

    Notes
    -----
    A refiner may also define ``refine_batch(normals, raws, masks) ->
    ndarray (N, H, W, 3)``; :func:`maphc2f_data.sampling.make_samples` then
    refines all samples of a source image in one call.
    """

    stage: str
    fingerprint: Mapping[str, Any]

    def refine(self, normal: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine one sample.

        Parameters
        ----------
        normal : ndarray of uint8, shape (H, W, 3)
            The normal image the anomaly was made on.
        raw : ndarray of uint8, shape (H, W, 3)
            The raw physics anomaly (stage A).
        mask : ndarray of bool, shape (H, W)
            The anomaly mask (refinement never changes it).

        Returns
        -------
        ndarray of uint8, shape (H, W, 3)
        """
        ...


class IdentityRefiner:
    """The refiner of builds without checkpoints: returns the raw image.

    Examples
    --------
    >>> raw = np.zeros((4, 4, 3), np.uint8)
    >>> IdentityRefiner().refine(raw, raw, np.zeros((4, 4), bool)) is raw
    True
    """

    stage: str = RAW_STAGE
    fingerprint: Dict[str, Any] = {}

    def refine(self, normal: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return raw

    def __repr__(self) -> str:
        return "IdentityRefiner()"


def check_refined(refiner: Refiner, refined: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Validate a refiner's output against the raw image it refined.

    Raises
    ------
    ValueError
        The stage is not a known one, or the output's dtype or shape differs
        from ``raw``'s (a refiner bug, not bad user input).
    """
    if refiner.stage not in STAGES:
        raise ValueError(f"refiner stage {refiner.stage!r} is not one of {STAGES}")
    refined = np.asarray(refined)
    if refined.dtype != np.uint8 or refined.shape != raw.shape:
        raise ValueError(f"{refiner!r} returned {refined.dtype} {refined.shape}, expected uint8 {raw.shape}")
    return refined
