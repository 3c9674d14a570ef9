"""``load``: a thin helper over ``datasets.load_dataset`` for a built dataset.

It is not a second loader: it resolves the path (so ``datasets`` never falls
back to a cached copy of another dataset with the same bare name), checks it
is a built dataset, and hands over to ``load_dataset`` with the card's
configuration name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from maphc2f_data.dataset.card import ALL_CONFIG
from maphc2f_data.dataset.config import MANIFEST_NAME, SPLITS
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def load(
    path: Union[str, os.PathLike],
    category: Optional[str] = None,
    split: Optional[str] = "train",
) -> Union["datasets.Dataset", "datasets.DatasetDict"]:
    """Load a built MaPhC2F dataset with ``datasets.load_dataset``.

    Parameters
    ----------
    path : str or path-like
        The dataset folder (the one holding ``manifest.json``); ``~`` and
        relative paths are resolved first.
    category : str, optional
        One category's configuration; None loads ``all``.
    split : str or None
        ``"train"``, ``"validation"`` (after ``maphc2f splits``) or None for
        a ``DatasetDict`` of every split.

    Returns
    -------
    datasets.Dataset or datasets.DatasetDict
        ``image``, ``mask`` and ``foreground`` decode to PIL images,
        ``defect_type`` is a ``ClassLabel``.

    Raises
    ------
    UserError
        When ``path`` is not a built dataset, or ``category``/``split`` are
        not in it.
    """
    root = Path(path).expanduser().resolve()
    if not (root / MANIFEST_NAME).is_file():
        raise UserError(f"not a built MaPhC2F dataset (no {MANIFEST_NAME}): {root}")
    manifest = read_manifest(root) or {}
    categories = manifest.get("categories") or {}
    if category is not None and category not in categories:
        raise UserError(f"unknown category {category!r} in {root}; valid: {sorted(categories)}")
    present = {
        shard.get("split")
        for name, entry in categories.items()
        if category is None or name == category
        for shard in entry.get("shards") or []
    }
    if split is not None and split not in present:
        valid = [name for name in SPLITS if name in present]
        raise UserError(f"split {split!r} not in {root} ({category or ALL_CONFIG}); valid: {valid}")

    import datasets

    return datasets.load_dataset(str(root), category or ALL_CONFIG, split=split)
