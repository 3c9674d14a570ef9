"""The anomaly-type registry and the ``synthesize`` entry point.

Every anomaly type is one module that registers an :class:`AnomalyType`:
``sample_params`` draws every random choice from a seeded generator into a
JSON-serialisable dict, and ``render`` turns (image, foreground, params) into
the anomalous image and its mask *deterministically*. Splitting the two is what
lets a sample be re-created from its ``params`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

import numpy as np

#: How many derived sub-seeds ``synthesize`` tries before giving up.
MAX_ATTEMPTS = 8


class PlacementError(RuntimeError):
    """Raised by ``render`` when these params cannot place an anomaly here.

    ``synthesize`` catches it and retries with the next derived sub-seed.
    """


class SynthesisError(ValueError):
    """No anomaly could be placed after :data:`MAX_ATTEMPTS` sub-seeds."""


@dataclass(frozen=True)
class Synthesis:
    """One synthetic anomaly.

    Attributes
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image with the anomaly applied.
    mask : ndarray of bool, shape (H, W)
        Pixel-level anomaly label.
    params : dict
        Every sampled parameter (JSON-serialisable); passing them back as
        overrides to :func:`synthesize` re-creates this sample exactly.
    """

    image: np.ndarray
    mask: np.ndarray
    params: Dict[str, Any]


@dataclass(frozen=True)
class AnomalyType:
    """A registered anomaly generator.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"crack"``.
    sample_params : callable
        ``sample_params(rng, foreground) -> dict``; ``rng`` is a
        ``np.random.Generator``, ``foreground`` a bool (H, W) array. Every
        random choice of the type must be drawn here (stochastic processes get
        an integer sub-seed in the dict).
    render : callable
        ``render(image, foreground, params) -> (image, mask)``; deterministic,
        may raise :class:`PlacementError`.
    """

    name: str
    sample_params: Callable[[np.random.Generator, np.ndarray], Dict[str, Any]]
    render: Callable[[np.ndarray, np.ndarray, Dict[str, Any]], "tuple[np.ndarray, np.ndarray]"]


#: Registry of anomaly types, filled by the modules that define them.
ANOMALY_TYPES: Dict[str, AnomalyType] = {}


def register_anomaly(anomaly: AnomalyType) -> AnomalyType:
    """Add ``anomaly`` to :data:`ANOMALY_TYPES` (a new type touches no other)."""
    if anomaly.name in ANOMALY_TYPES:
        raise ValueError(f"anomaly type {anomaly.name!r} is already registered")
    ANOMALY_TYPES[anomaly.name] = anomaly
    return anomaly


def as_bool_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """``mask`` as a bool (H, W) array; integer 0/1 masks are converted.

    Raises
    ------
    ValueError
        Not two-dimensional, or neither bool nor integer.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {mask.shape}")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "uib":
            raise ValueError(f"{name} must be bool or integer 0/1, got {mask.dtype}")
        mask = mask != 0
    return mask


def check_inputs(image: np.ndarray, foreground: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """Validate an (image, foreground) pair; return contiguous copies-or-views.

    Raises
    ------
    ValueError
        Wrong dtype or shape, size mismatch, or an empty foreground.
    """
    image = np.asarray(image)
    foreground = np.asarray(foreground)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    foreground = as_bool_mask(foreground, "foreground")
    if foreground.shape != image.shape[:2]:
        raise ValueError(
            f"foreground shape {foreground.shape} does not match image shape {image.shape[:2]}"
        )
    if min(image.shape[:2]) < 16:
        raise ValueError(f"image is too small ({image.shape[0]}x{image.shape[1]}); need at least 16x16")
    if not foreground.any():
        raise ValueError("foreground is empty: there is no object to place an anomaly on")
    return np.ascontiguousarray(image), np.ascontiguousarray(foreground)


def synthesize(kind: str, image: np.ndarray, foreground: np.ndarray, seed: int, **overrides: Any) -> Synthesis:
    """Synthesise one anomaly of type ``kind`` on ``image`` inside ``foreground``.

    Parameters
    ----------
    kind : str
        A key of :data:`ANOMALY_TYPES` ("crack", "corrosion", "deformation").
    image : ndarray of uint8, shape (H, W, 3)
        RGB source image.
    foreground : ndarray of bool, shape (H, W)
        Object mask; anomalies are confined to it.
    seed : int
        Non-negative seed. Attempt ``k`` draws from
        ``np.random.default_rng([seed, k])``.
    **overrides
        Replace sampled parameters (e.g. the ``params`` of an earlier result).

    Returns
    -------
    Synthesis

    Raises
    ------
    KeyError
        Unknown ``kind``.
    ValueError
        Bad inputs (see :func:`check_inputs`).
    SynthesisError
        No anomaly could be placed after :data:`MAX_ATTEMPTS` sub-seeds.
    """
    if kind not in ANOMALY_TYPES:
        raise KeyError(f"unknown anomaly type {kind!r}; choose from {sorted(ANOMALY_TYPES)}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    image, foreground = check_inputs(image, foreground)
    anomaly = ANOMALY_TYPES[kind]
    reasons = []
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([int(seed), attempt])
        params = anomaly.sample_params(rng, foreground)
        params.update(overrides)
        try:
            out_image, mask = anomaly.render(image, foreground, params)
        except PlacementError as exc:
            reasons.append(str(exc))
            if set(params) <= set(overrides):
                # Fully fixed params fail the same way every time; retrying is pointless.
                break
            continue
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            reasons.append("rendered mask is empty")
            continue
        return Synthesis(image=out_image, mask=mask, params=params)
    raise SynthesisError(
        f"could not place a {kind} anomaly after {len(reasons)} attempt(s): {reasons[-1]}"
    )
