"""``export_mvtec``: the samples in the MVTec AD folder layout.

Writes ``<category>/test/<defect_type>/<name>.png`` and
``<category>/ground_truth/<defect_type>/<name>_mask.png`` under the
destination, the layout anomalib's Folder/MVTec datamodules and most research
code read. The PNG bytes are copied as stored (masks are 0/255 L PNGs).
There are no ``train/good`` folders: the normal images belong to the sources
(``source_image`` names each one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict

from tqdm.auto import tqdm

from maphc2f_data import __version__
from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.folders import EXPORT_MARKER, check_export_output, make_output_dir, require_dataset
from maphc2f_data.dataset.lock import dataset_lock
from maphc2f_data.dataset.manifest import read_manifest, resolve_shard_path
from maphc2f_data.dataset.shards import atomic_write_bytes, iter_rows
from maphc2f_data.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SAFE_CATEGORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Longest kept file stem (file names stay far below the usual 255-byte limit).
MAX_STEM = 120


def file_stem(sample_id: str) -> str:
    """A file name stem for ``sample_id``, unique per id and safe on every OS.

    Ids made only of ``[A-Za-z0-9._-]`` (not starting with a dot, at most
    :data:`MAX_STEM` characters) are kept; others have the unsafe characters
    replaced by ``_``, are cut to :data:`MAX_STEM` characters and get 8 hex
    digits of the id's SHA-256 appended, so two ids never share a file.

    >>> file_stem("bottle-crack-000001")
    'bottle-crack-000001'
    >>> file_stem("bottle/crack 1")
    'bottle_crack_1-992f61c7'
    """
    stem = _UNSAFE.sub("_", sample_id).lstrip(".")
    if stem == sample_id and 0 < len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:8]
    return f"{stem[:MAX_STEM] or 'sample'}-{digest}"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _write(path: Path, data: bytes, dest: Path) -> None:
    # Checked before mkdir: a symlinked folder in dest must not even get sub-folders.
    if not _inside(path.resolve(), dest):
        raise UserError(f"refusing to write outside the export folder {dest}: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def export_mvtec(out_dir: os.PathLike, dest: os.PathLike) -> Dict[str, Any]:
    """Export every row of a built dataset in the MVTec AD layout.

    Parameters
    ----------
    out_dir : path-like
        A built dataset (with ``manifest.json``).
    dest : path-like
        Export folder; created if needed; must not lie inside ``out_dir``,
        and must be new, empty or an earlier export (recognised by its
        :data:`~maphc2f_data.dataset.folders.EXPORT_MARKER` file, written
        first). Files of an earlier export with the same names are overwritten.

    Returns
    -------
    dict
        ``{"dest": str, "images": n, "categories": {category: {defect: n}}}``.

    Raises
    ------
    UserError
        When ``out_dir`` is not a built dataset, ``dest`` is inside it or
        holds files of something else, or a build is writing ``out_dir``.
    """
    root = Path(out_dir).expanduser().resolve()
    dest = Path(dest).expanduser().resolve()
    require_dataset(root)
    if _inside(dest, root):
        raise UserError(f"export folder must not be inside the dataset: {dest}")
    _check_categories(root, dest, (read_manifest(root) or {}).get("categories") or {})
    check_export_output(dest)
    with dataset_lock(root, "maphc2f export", shared=True):
        return _export_locked(root, dest)


def _check_categories(root: Path, dest: Path, categories: Dict[str, Any]) -> None:
    for category in categories:
        if not _SAFE_CATEGORY.match(category):
            raise UserError(f"category name {category!r} is not a safe folder name in {root}")
        if _inside(root, dest / category):
            raise UserError(f"exporting to {dest} would write into the dataset itself ({dest / category})")


def _export_locked(root: Path, dest: Path) -> Dict[str, Any]:
    """Everything :func:`export_mvtec` does while holding the dataset's lock (shared)."""
    manifest = read_manifest(root) or {}
    categories = manifest.get("categories") or {}
    _check_categories(root, dest, categories)

    counts: Dict[str, Counter] = {category: Counter() for category in sorted(categories)}
    jobs = [(c, s) for c in sorted(categories) for s in sorted(categories[c].get("shards") or [], key=lambda s: s["path"])]
    make_output_dir(dest)
    # The marker goes first: an interrupted export is still recognised as one.
    atomic_write_bytes(json.dumps({"made_by": "maphc2f export", "format": "mvtec", "dataset": str(root),
                                   "package_version": __version__}, indent=2).encode("utf-8") + b"\n",
                       dest / EXPORT_MARKER)
    for category, shard in tqdm(jobs, desc="export", unit="shard", disable=None):
        path = resolve_shard_path(root, shard.get("path"), category)
        if path is None or not path.is_file():
            raise UserError(f"shard {shard.get('path')!r} is missing or outside {root}/data; run `maphc2f validate {root}`")
        for row in iter_rows(path, columns=["image", "mask", "sample_id", "defect_type"]):
            defect = DEFECT_TYPES[row["defect_type"]]
            stem = file_stem(row["sample_id"])
            _write(dest / category / "test" / defect / f"{stem}.png", row["image"]["bytes"], dest)
            _write(dest / category / "ground_truth" / defect / f"{stem}_mask.png", row["mask"]["bytes"], dest)
            counts[category][defect] += 1
    return {
        "dest": str(dest),
        "images": sum(sum(c.values()) for c in counts.values()),
        "categories": {category: dict(sorted(c.items())) for category, c in counts.items()},
    }
