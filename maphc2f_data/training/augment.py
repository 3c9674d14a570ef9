"""Online anomaly augmentation: fresh synthetic samples for every training step.

:class:`PhysicsAnomalies` turns a source's normal training images into
``(image, mask, defect_type)`` samples on the fly through the build's own
sample path (:func:`maphc2f_data.sampling.make_sample`, refinement included
when a refiner is given), so a detector can see a new crack, corrosion or
dent at every step instead of a fixed pool. :class:`DraemStyleAnomalies` does
the same with the DRAEM baseline (:mod:`.draem_style`), for comparisons.

Both are map-style torch datasets, deterministic from ``(seed, epoch,
index)``: the same seed gives the same samples in any DataLoader worker
order, and :meth:`set_epoch` draws new ones. A share ``normal_ratio`` of the
items are untouched normals (empty mask, ``defect_type`` -1), as detectors
trained this way need both.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from maphc2f_data.training.data import to_tensor

#: ``defect_type`` of an untouched normal item.
NORMAL = -1


class NormalPool:
    """A source's normal training images, resized, with their foregrounds (cached).

    Parameters
    ----------
    source : maphc2f_data.sources.Source
    categories : sequence of str
    size : int
        Image side (the build's resize rule).
    extractor : optional
        Foreground extractor (default: the classical one, as builds without
        SAM use).
    """

    def __init__(self, source: Any, categories: Sequence[str], size: int, extractor: Any = None) -> None:
        self.source = source
        self.size = int(size)
        self.extractor = extractor
        self.items = [item for category in categories for item in source.train_images(category)]
        if not self.items:
            raise ValueError(f"no training images in {list(categories)}")
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """(image uint8 (S, S, 3), foreground bool (S, S)) of image ``index``."""
        if index not in self._cache:
            from maphc2f_data.foreground import ClassicalForeground, foreground_for
            from maphc2f_data.sampling import load_square

            if self.extractor is None:
                self.extractor = ClassicalForeground()
            item = self.items[index]
            image = load_square(self.source, item, self.size)
            foreground, _ = foreground_for(self.source, item, image, self.extractor)
            self._cache[index] = (image, foreground)
        return self._cache[index]


class _Augmented(Dataset):
    """Shared indexing: ``length`` items over the pool, seeded per (seed, epoch, index)."""

    def __init__(self, pool: NormalPool, *, seed: int, normal_ratio: float, length: Optional[int],
                 size: Optional[int] = None) -> None:
        if not 0.0 <= normal_ratio < 1.0:
            raise ValueError(f"normal_ratio must be in [0, 1), got {normal_ratio}")
        if size is not None and not 0 < int(size) <= pool.size:
            raise ValueError(f"size must be in [1, pool.size={pool.size}], got {size}")
        self.pool = pool
        self.size = pool.size if size is None else int(size)
        self.seed = int(seed)
        self.normal_ratio = float(normal_ratio)
        self.length = int(length) if length is not None else len(pool)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _item(self, image: np.ndarray, mask: np.ndarray, defect_type: int, normal: np.ndarray) -> Dict[str, Any]:
        if self.size != self.pool.size:
            from maphc2f_data.sampling import resize_label, resize_square

            image, normal = resize_square(image, self.size), resize_square(normal, self.size)
            mask = resize_label(mask, self.size)
            if not mask.any():  # thinner than half a pixel at this size: the image is (nearly) unchanged
                image, defect_type = normal, NORMAL
        return {"image": to_tensor(image), "mask": torch.from_numpy(mask.astype(np.float32))[None],
                "defect_type": int(defect_type), "normal": to_tensor(normal), "label": int(mask.any())}

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self._rng(index)
        image, foreground = self.pool.get(int(rng.integers(len(self.pool))))
        if rng.random() < self.normal_ratio:
            return self._item(image, np.zeros(image.shape[:2], bool), NORMAL, image)
        out, mask, kind = self._anomaly(image, foreground, rng)
        if not mask.any():
            return self._item(image, mask, NORMAL, image)
        return self._item(out, mask, kind, image)

    def _anomaly(self, image, foreground, rng) -> Tuple[np.ndarray, np.ndarray, int]:
        raise NotImplementedError


class PhysicsAnomalies(_Augmented):
    """Fresh MaPhC2F anomalies (crack, corrosion, deformation) on a source's normals.

    Parameters
    ----------
    pool : NormalPool
    seed : int
    normal_ratio : float
        Share of untouched normal items.
    kinds : sequence of str, optional
        Anomaly types to draw from (default all of ``DEFECT_TYPES``, uniformly).
    refiner : maphc2f_data.refine.Refiner, optional
        Refine every sample (e.g. npcF/npcF++ checkpoints), as a build would.
    overrides : mapping, optional
        Anomaly type -> fixed synthesis parameters (``synthesize``'s
        overrides), e.g. ``{"deformation": {"shading": 0.05}}``.
    length : int, optional
        Items per epoch (default: one per normal image).
    size : int, optional
        Side ``S`` of the items (default: the pool's). Smaller than the
        pool's, the anomalies are made on the pool's images and then resized
        (:func:`~maphc2f_data.sampling.resize_square`, the mask by
        :func:`~maphc2f_data.sampling.resize_label`), as a detector reads a
        build made at a larger size: the generators' lengths are set at
        512 px (cracks keep a minimum width at any size), so a pool at the
        build's 512 px and ``size`` at the detector's input gives the
        anomalies a 512-px build holds, not thicker ones. An anomaly whose
        mask vanishes at ``size`` gives a normal item.

    Items are dicts: ``image`` float32 (3, S, S) in [0, 1], ``mask`` float32
    (1, S, S), ``defect_type`` (index into ``DEFECT_TYPES``, or -1),
    ``label`` (0/1), ``normal`` (the untouched image).
    """

    def __init__(self, pool: NormalPool, *, seed: int, normal_ratio: float = 0.5,
                 kinds: Optional[Sequence[str]] = None, refiner: Any = None,
                 overrides: Optional[Dict[str, Dict[str, Any]]] = None, length: Optional[int] = None,
                 size: Optional[int] = None) -> None:
        from maphc2f_data.synthesis import DEFECT_TYPES

        super().__init__(pool, seed=seed, normal_ratio=normal_ratio, length=length, size=size)
        self.kinds: List[str] = list(kinds or DEFECT_TYPES)
        unknown = [kind for kind in self.kinds if kind not in DEFECT_TYPES]
        if unknown:
            raise ValueError(f"unknown anomaly types {unknown}; choose from {list(DEFECT_TYPES)}")
        self.refiner = refiner
        self.overrides = {kind: dict(values) for kind, values in (overrides or {}).items()}
        unknown = [kind for kind in self.overrides if kind not in DEFECT_TYPES]
        if unknown:
            raise ValueError(f"overrides for unknown anomaly types {unknown}")

    def _anomaly(self, image, foreground, rng):
        from maphc2f_data.sampling import make_sample
        from maphc2f_data.synthesis import DEFECT_TYPES, SynthesisError

        # A kind that cannot be placed on this image is redrawn (new kind and seed).
        for _ in range(4):
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            try:
                sample = make_sample(image, foreground, kind, int(rng.integers(2**62)), refiner=self.refiner,
                                     measure=False, **self.overrides.get(kind, {}))
            except SynthesisError:
                continue
            return sample.image, sample.mask, DEFECT_TYPES.index(kind)
        return image, np.zeros(image.shape[:2], bool), NORMAL


class DraemStyleAnomalies(_Augmented):
    """Fresh DRAEM-style anomalies (Perlin mask + augmented texture) on a source's normals.

    The baseline of the transfer benchmark; see :mod:`.draem_style`. Same
    parameters and items as :class:`PhysicsAnomalies` (``defect_type`` is 0
    for every anomaly) plus ``textures`` (uint8 RGB arrays, e.g.
    :func:`~maphc2f_data.training.draem_style.load_textures`).
    """

    def __init__(self, pool: NormalPool, textures: Sequence[np.ndarray], *, seed: int, normal_ratio: float = 0.5,
                 length: Optional[int] = None, size: Optional[int] = None) -> None:
        super().__init__(pool, seed=seed, normal_ratio=normal_ratio, length=length, size=size)
        if not textures:
            raise ValueError("DraemStyleAnomalies needs at least one texture")
        self.textures = list(textures)

    def _anomaly(self, image, foreground, rng):
        from maphc2f_data.training.draem_style import draem_anomaly

        out, mask = draem_anomaly(image, self.textures, rng, foreground)
        return out, mask, 0
