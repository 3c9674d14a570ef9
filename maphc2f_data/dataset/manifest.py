"""``manifest.json``: what a built dataset holds, and how it was made.

The manifest lists every shard with its row count and SHA-256, the plan, the
command line and the package versions (layout in the build contract). It is
written atomically with sorted keys, so equal content gives equal bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Mapping, Optional, Sequence

from maphc2f_data.dataset.config import DATA_DIR, MANIFEST_NAME
from maphc2f_data.dataset.shards import ShardInfo, atomic_write_bytes, parse_shard_filename
from maphc2f_data.errors import UserError

#: Distributions whose versions the manifest and the card record.
_VERSIONED = {
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
    "scikit-image": ("scikit-image",),
    "pyarrow": ("pyarrow",),
    "datasets": ("datasets",),
    "maphc2f-data": ("maphc2f-data",),
}


def manifest_path(out_dir: os.PathLike) -> Path:
    """Path of ``manifest.json`` inside a dataset root."""
    return Path(out_dir) / MANIFEST_NAME


def read_manifest(out_dir: os.PathLike) -> Optional[Dict[str, Any]]:
    """The parsed manifest of ``out_dir``, or None when it has none.

    Raises
    ------
    UserError
        When ``manifest.json`` exists but is not a JSON object.
    """
    path = manifest_path(out_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise UserError(f"manifest is not valid JSON ({exc.msg} at line {exc.lineno}): {path}") from None
    if not isinstance(manifest, dict):
        raise UserError(f"manifest is not a JSON object: {path}")
    return manifest


def dumps_manifest(manifest: Dict[str, Any]) -> str:
    """Canonical text of a manifest: sorted keys, indent 2, trailing newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_manifest(out_dir: os.PathLike, manifest: Dict[str, Any]) -> Path:
    """Write ``manifest`` to ``out_dir/manifest.json`` atomically; returns the path."""
    path = manifest_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dumps_manifest(manifest).encode("utf-8"), path)
    return path


def category_entry(*, source: str, root: Optional[str], license: str, pretty_name: str,
                   rows_by_type: Mapping[str, int], shards: Sequence[ShardInfo],
                   images_read: str = "normal training images",
                   demo_train_count: Optional[int] = None) -> Dict[str, Any]:
    """A category's entry in ``manifest["categories"]`` (the one place its format is written).

    Parameters
    ----------
    source : str
        The source the category came from.
    root : str or None
        Absolute source root on the building machine (None for the demo);
        training recipes re-read the normal images from it. The card never
        shows it.
    license, pretty_name : str
        The source's licence and display name.
    images_read : str
        Which of the source's images were read (the card states it).
    rows_by_type : mapping
        Defect type -> rows of the category.
    shards : sequence of ShardInfo
        The category's shards, in order.
    demo_train_count : int, optional
        Demo only: the training renders per category the build read
        (``--demo-train-count``); recorded only when given, so readers open
        the source as the build did.
    """
    entry = {
        "source": source,
        "root": root,
        "license": license,
        "source_pretty_name": pretty_name,
        "images_read": images_read,
        "rows": {kind: int(n) for kind, n in rows_by_type.items()},
        "shards": [shard.to_dict() for shard in shards],
    }
    if demo_train_count is not None:
        entry["demo_train_count"] = int(demo_train_count)
    return entry


def listed_shards(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every shard entry of the manifest, sorted by path."""
    shards = [
        shard
        for entry in (manifest.get("categories") or {}).values()
        for shard in (entry.get("shards") or [])
    ]
    return sorted(shards, key=lambda shard: shard["path"])


def content_fingerprint(manifest: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over every listed shard's path, rows and sha256.

    Equal for equal shards whatever the folder, different after any rebuild
    or split that changes a shard. The card puts it into each configuration
    (see :func:`maphc2f_data.dataset.card.card_yaml`) because ``datasets``
    keys its cache of a local folder on the folder's name and the card's
    configurations, not on the files' contents.
    """
    shards = [[shard.get("path"), int(shard.get("rows") or 0), shard.get("sha256")]
              for shard in listed_shards(dict(manifest))]
    return hashlib.sha256(json.dumps(shards, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]


def resolve_shard_path(root: os.PathLike, rel: Any, category: str) -> Optional[Path]:
    """The file of a manifest shard path, or None when it is unsafe or malformed.

    Only ``data/<category>/<split>-NNNNN-of-MMMMM.parquet`` is accepted, and
    the resolved file must stay inside ``<root>/data`` (no ``..``, no
    symlink out of the dataset).
    """
    if not isinstance(rel, str):
        return None
    parts = PurePosixPath(rel).parts
    if len(parts) != 3 or parts[0] != DATA_DIR or parts[1] != category or parse_shard_filename(parts[2]) is None:
        return None
    root = Path(root)
    path = root.joinpath(*parts)
    try:
        path.resolve().relative_to((root / DATA_DIR).resolve())
    except ValueError:
        return None
    return path


def package_versions() -> Dict[str, str]:
    """Versions of Python and the packages that shape the bytes of a build."""
    versions = {"python": platform.python_version()}
    for key, distributions in _VERSIONED.items():
        versions[key] = "not installed"
        for distribution in distributions:
            try:
                versions[key] = importlib_metadata.version(distribution)
                break
            except importlib_metadata.PackageNotFoundError:
                continue
    return versions
