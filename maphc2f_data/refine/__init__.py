"""Refinement: what happens to a raw physics anomaly before it becomes a row.

The paper's coarse-to-fine stage (npcF, then npcF++) turns the pasted raw
anomaly (stage A) into a harmonised one. Every refiner follows the
:class:`Refiner` protocol and is applied in exactly one place, the sample
path (:func:`maphc2f_data.sampling.make_sample`), so builds, previews and the
Python API refine identically; the Ray runner only decides *where* a refiner
runs (a GPU actor pool), never *how*.

:class:`IdentityRefiner` is the refiner of every build without checkpoints:
it returns the raw image and records ``stage = "raw"``.
:class:`CheckpointRefiner` runs trained npcF / npcF++ checkpoints. Torch-backed
refiners import torch lazily, so this package stays importable without it.
"""

from maphc2f_data.refine.base import IdentityRefiner, Refiner, check_refined
from maphc2f_data.refine.checkpoints import DEFAULT_DILATE_PX, CheckpointRefiner, refiner_fingerprint

__all__ = ["DEFAULT_DILATE_PX", "CheckpointRefiner", "IdentityRefiner", "Refiner", "check_refined",
           "refiner_fingerprint"]
