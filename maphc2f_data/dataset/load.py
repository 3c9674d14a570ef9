"""``load``: a thin helper over ``datasets.load_dataset`` for a built dataset.

It is not a second loader: it resolves the path (so ``datasets`` never falls
back to a cached copy of another dataset with the same bare name), checks it
is a built dataset, hands over to ``load_dataset`` with the card's
configuration name, and checks that what came back are the folder's rows
(the manifest's row count, and the sample ids of the folder's shards), so a
stale ``datasets`` cache can never pass for this dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Union

from maphc2f_data.dataset.card import ALL_CONFIG
from maphc2f_data.dataset.config import SPLITS
from maphc2f_data.dataset.folders import require_dataset
from maphc2f_data.dataset.manifest import read_manifest, resolve_shard_path
from maphc2f_data.dataset.shards import iter_rows
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
        When ``path`` is not a built dataset, ``category``/``split`` are
        not in it, or the rows loaded are not the folder's (a stale cache).
    """
    root = Path(path).expanduser().resolve()
    require_dataset(root)
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

    loaded = datasets.load_dataset(str(root), category or ALL_CONFIG, split=split)
    for name, part in ({split: loaded} if split is not None else dict(loaded)).items():
        check_loaded_rows(root, manifest, category, name, part)
    return loaded


def sample_id_digest(sample_ids: Iterable[str]) -> str:
    """SHA-256 of the sorted sample ids, one per line (independent of row order)."""
    digest = hashlib.sha256()
    for sample_id in sorted(sample_ids):
        digest.update(sample_id.encode("utf-8") + b"\n")
    return digest.hexdigest()


def check_loaded_rows(root: Path, manifest: Mapping[str, Any], category: Optional[str], split: str,
                      loaded: "datasets.Dataset") -> None:
    """Refuse rows that are not the folder's: their number must be the
    manifest's and their sample ids those of the folder's listed shards.

    Raises
    ------
    UserError
        One line naming the folder, the configuration and the split, e.g.
        when the ``datasets`` cache holds rows of an earlier build.
    """
    shards = [(name, shard) for name, entry in (manifest.get("categories") or {}).items()
              if category is None or name == category
              for shard in entry.get("shards") or [] if shard.get("split") == split]
    expected_rows = sum(int(shard.get("rows") or 0) for _, shard in shards)
    where = f"{root} ({category or ALL_CONFIG}, {split})"
    cache = ", ".join(sorted({Path(f["filename"]).parent.as_posix() for f in loaded.cache_files})) or "none"
    if loaded.num_rows != expected_rows:
        raise UserError(f"load_dataset returned {loaded.num_rows} rows of {where} but its manifest lists "
                        f"{expected_rows}; run `maphc2f validate {root}`, then delete the datasets cache {cache}")
    ids: List[str] = []
    for name, shard in shards:
        file = resolve_shard_path(root, shard.get("path"), name)
        if file is None or not file.is_file():
            raise UserError(f"shard {shard.get('path')!r} is missing or outside {root}/data; "
                            f"run `maphc2f validate {root}`")
        ids.extend(row["sample_id"] for row in iter_rows(file, columns=["sample_id"]))
    if sample_id_digest(loaded.data.column("sample_id").to_pylist()) != sample_id_digest(ids):
        raise UserError(f"load_dataset returned other rows than the shards of {where} hold (sample ids differ); "
                        f"delete the datasets cache {cache} and load again")
