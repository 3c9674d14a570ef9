"""``write_quality``: fill the ``quality`` column of one category's shards.

BiSQAD's Synthesis Quality Estimator scores every synthetic row; this writes
those scores back as a new revision of the category's shards. It follows
:mod:`.splits`: every shard is staged next to its final name (a dot name
ending in ``.tmp-quality`` that ``datasets`` ignores), checked, and only when
all are staged renamed over the old ones; then the manifest gets the new
sha256s and a ``quality`` record. Rows keep their order, their cells and each
shard its footer metadata (the build's plan hash); only ``quality`` changes.
The whole rewrite holds the dataset folder's lock.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from maphc2f_data.dataset.card import write_card
from maphc2f_data.dataset.manifest import read_manifest, write_manifest
from maphc2f_data.dataset.shards import (
    atomic_write_bytes,
    iter_rows,
    read_shard_metadata,
    rows_to_table,
    table_to_parquet_bytes,
)
from maphc2f_data.dataset.lock import dataset_lock
from maphc2f_data.dataset.splits import _input_shards
from maphc2f_data.errors import UserError

_STAGE_SUFFIX = ".tmp-quality"


def _check_scores(scores: Mapping[str, float]) -> Dict[str, float]:
    checked = {}
    for sample_id, value in scores.items():
        value = float(value)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"quality of {sample_id} must be in [0, 1]; got {value}")
        checked[str(sample_id)] = value
    return checked


def write_quality(out_dir: os.PathLike, category: str, scores: Mapping[str, float], *,
                  record: Optional[Mapping[str, Any]] = None, what: str = "maphc2f score") -> Dict[str, Any]:
    """Rewrite ``category``'s shards with ``quality = scores[sample_id]``.

    Parameters
    ----------
    out_dir : path-like
        A built dataset.
    category : str
        The category whose shards (every split) are rewritten.
    scores : mapping sample_id -> float in [0, 1]
        Rows not in ``scores`` keep their current quality.
    record : mapping, optional
        Stored as ``manifest["quality"][category]`` (e.g. the SQE checkpoint's
        sha256) next to the number of rows scored.
    what : str
        The command, named if the lock is refused.

    Returns
    -------
    dict
        ``{"category", "scored", "rows", "shards"}``.

    Raises
    ------
    UserError
        Not a built dataset, unknown category, shards changed since the
        build, or another command holds the folder's lock.
    """
    root = Path(out_dir).expanduser().resolve()
    scores = _check_scores(scores)
    with dataset_lock(root, what):
        manifest = read_manifest(root)
        if manifest is None:
            raise UserError(f"not a built MaPhC2F dataset (no manifest.json): {root}")
        categories = manifest.get("categories") or {}
        if category not in categories:
            raise UserError(f"category {category!r} is not in {root}; valid: {', '.join(sorted(categories))}")
        entry = categories[category]
        inputs = _input_shards(root, category, entry)
        for stale in (root / "data" / category).glob(f".*{_STAGE_SUFFIX}"):
            stale.unlink()
        staged: List[Tuple[Path, Path, str]] = []
        scored = total = 0
        try:
            for path, _ in inputs:
                rows = list(iter_rows(path))
                for row in rows:
                    if row["sample_id"] in scores:
                        row["quality"] = scores[row["sample_id"]]
                        scored += 1
                total += len(rows)
                data = table_to_parquet_bytes(rows_to_table(rows, read_shard_metadata(path)))
                stage = path.with_name(f".{path.name}{_STAGE_SUFFIX}")
                atomic_write_bytes(data, stage)
                _check_staged(stage, rows)
                staged.append((stage, path, hashlib.sha256(data).hexdigest()))
        except BaseException:
            for stage, _, _ in staged:
                stage.unlink(missing_ok=True)
            raise
        digests = {}
        for stage, final, digest in staged:
            os.replace(stage, final)
            digests[final.relative_to(root).as_posix()] = digest
        for shard in entry.get("shards") or []:
            if shard["path"] in digests:
                shard["sha256"] = digests[shard["path"]]
        manifest.setdefault("quality", {})[category] = {**dict(record or {}), "scored": scored, "rows": total}
        write_manifest(root, manifest)
        write_card(root, manifest)
    return {"category": category, "scored": scored, "rows": total, "shards": len(staged)}


def _check_staged(stage: Path, rows: List[Dict[str, Any]]) -> None:
    """The staged shard reads back as the same rows (ids in order) with the new qualities."""
    back = list(iter_rows(stage, columns=["sample_id", "quality"]))
    if [r["sample_id"] for r in back] != [r["sample_id"] for r in rows] or any(
        a["quality"] != b["quality"] for a, b in zip(back, rows)
    ):
        raise RuntimeError(f"staged shard {stage} does not read back as written")
