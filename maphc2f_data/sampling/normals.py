"""The normal image every row of a built dataset was made from.

Rows store the anomalous image, its mask and foreground, and where the normal
image came from (``source_dataset``, ``category``, ``source_image``); the
manifest records each category's source root. Training recipes (npcF's loss,
BiSQAD's normal batches) re-read the normal image from the source and resize
it with the build's own rule (:func:`maphc2f_data.sampling.load_square`), so
it matches the row pixel for pixel outside the anomaly. The demo source needs
no files: it renders its images again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from maphc2f_data.errors import UserError
from maphc2f_data.sampling.sample import load_square


class NormalImages:
    """Look up the normal source image of a dataset's rows.

    Parameters
    ----------
    dataset_dir : path
        A built dataset (its ``manifest.json`` names each category's source
        and root).
    roots : mapping, optional
        Source name -> root, overriding the recorded roots (the dataset was
        built on another machine, or the source moved).

    Raises
    ------
    UserError
        No manifest, or a category's source cannot be opened.
    """

    def __init__(self, dataset_dir: os.PathLike, roots: Optional[Mapping[str, str]] = None) -> None:
        from maphc2f_data.dataset.manifest import read_manifest

        self.dataset_dir = Path(dataset_dir).expanduser().resolve()
        manifest = read_manifest(self.dataset_dir)
        if manifest is None:
            raise UserError(f"not a built MaPhC2F dataset (no manifest.json): {self.dataset_dir}")
        config = manifest.get("config") or {}
        self.roots = dict(roots or {})
        self._where: Dict[str, Tuple[str, Optional[str]]] = {}
        self._demo_train_count: Dict[str, Optional[int]] = {}
        for category, entry in (manifest.get("categories") or {}).items():
            source = entry.get("source")
            # Manifests of older builds record the root only in the last build's config.
            root = entry.get("root", config.get("root") if config.get("source") == source else None)
            self._where[category] = (source, self.roots.get(source, root))
            self._demo_train_count[category] = entry.get("demo_train_count")
        self._sources: Dict[Tuple[str, Optional[str], Optional[int]], Any] = {}
        self._items: Dict[str, Dict[str, Any]] = {}

    def source_of(self, category: str) -> Tuple[str, Optional[str]]:
        """``(source name, root)`` of ``category``."""
        try:
            return self._where[category]
        except KeyError:
            raise UserError(f"category {category!r} is not in {self.dataset_dir}; "
                            f"valid: {', '.join(sorted(self._where))}") from None

    def source(self, category: str) -> Any:
        """The :class:`~maphc2f_data.sources.Source` ``category`` was built from, opened as the build opened
        it (its root; the demo with the build's ``--demo-train-count``)."""
        from maphc2f_data.sources import get_source

        key = (*self.source_of(category), self._demo_train_count.get(category))
        if key not in self._sources:
            name, root, demo_train_count = key
            if root is not None and not Path(root).is_dir():
                raise UserError(f"the source root of {category!r} recorded in {self.dataset_dir / 'manifest.json'} "
                                f"is missing: {root}; pass the {name} root explicitly")
            self._sources[key] = get_source(name, root, demo_train_count=demo_train_count)
        return self._sources[key]

    def image(self, category: str, source_image: str, size: int) -> np.ndarray:
        """The normal image of a row, resized as the build resized it.

        Parameters
        ----------
        category : str
        source_image : str
            The row's ``source_image`` (path relative to the source root).
        size : int
            The dataset's image side.

        Returns
        -------
        ndarray of uint8, shape (size, size, 3)
        """
        source = self.source(category)
        if category not in self._items:
            self._items[category] = {item.path: item for item in source.train_images(category)}
        try:
            item = self._items[category][source_image]
        except KeyError:
            raise UserError(f"{source_image} ({category}) is no longer among the source's training images") from None
        return load_square(source, item, size)
