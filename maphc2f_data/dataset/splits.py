"""``make_splits``: deterministic per-category train/validation splits.

A row goes to ``validation`` iff the SHA-256 of ``"<seed>:<sample_id>"``,
read as a number in [0, 1), is below the validation fraction: the decision
depends on the row alone, never on the other rows or on the previous split.
Each category's shards are rewritten as ``train-*`` and ``validation-*``
streaming (memory stays at about two shards), rows keeping their relative
order, so running the same split twice gives byte-identical shards.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

from tqdm.auto import tqdm

from maphc2f_data.dataset.card import write_card
from maphc2f_data.dataset.config import DATA_DIR, MAX_ROWS_PER_SHARD, SPLITS
from maphc2f_data.dataset.folders import require_dataset
from maphc2f_data.dataset.lock import dataset_lock
from maphc2f_data.dataset.manifest import read_manifest, resolve_shard_path, write_manifest
from maphc2f_data.dataset.shards import (
    ShardInfo,
    atomic_write_bytes,
    iter_rows,
    parse_shard_filename,
    rows_to_table,
    sha256_file,
    shard_filename,
    table_to_parquet_bytes,
)
from maphc2f_data.errors import UserError

#: Suffix of the staged shards. With the leading dot of :func:`_stage_name`
#: ``datasets`` ignores them, and ``*.tmp-*`` is the pattern the builder's
#: leftover cleanup and the Hub upload's ignore list already use.
_STAGE_SUFFIX = ".tmp-splits"


def validation_score(sample_id: str, seed: int) -> float:
    """Uniform number in [0, 1) from SHA-256 of ``"<seed>:<sample_id>"``."""
    digest = hashlib.sha256(f"{int(seed)}:{sample_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_validation(sample_id: str, val_fraction: float, seed: int) -> bool:
    """Whether ``sample_id`` belongs to the validation split."""
    return validation_score(sample_id, seed) < val_fraction


def _input_shards(root: Path, category: str, entry: Mapping[str, Any]) -> List[Tuple[Path, Dict[str, Any]]]:
    """The category's listed shards, checked against their hashes, in split-then-index order."""
    shards = []
    for shard in entry.get("shards") or []:
        rel = shard.get("path")
        path = resolve_shard_path(root, rel, category)
        if path is None:
            raise UserError(f"manifest lists an unexpected shard path {rel!r}; run `maphc2f validate {root}`")
        parsed = parse_shard_filename(path.name)
        if not path.is_file() or sha256_file(path) != shard.get("sha256"):
            raise UserError(f"shard missing or changed since the build: {path}; run `maphc2f validate {root}`")
        shards.append((path, parsed))
    shards.sort(key=lambda item: (SPLITS.index(item[1]["split"]), item[1]["index"]))
    return shards


def _stage_name(final_name: str) -> str:
    return f".{final_name}{_STAGE_SUFFIX}"


def _remove_stale_stages(category_dir: Path) -> None:
    for path in category_dir.glob(f".*{_STAGE_SUFFIX}"):
        path.unlink()


def _split_category(
    root: Path, category: str, entry: Mapping[str, Any], val_fraction: float, seed: int, node: str
) -> Tuple[List[Tuple[Path, Path]], List[ShardInfo]]:
    """Stage the new shards of one category; returns (stage, final) pairs and their infos."""
    category_dir = root / DATA_DIR / category
    _remove_stale_stages(category_dir)
    inputs = _input_shards(root, category, entry)
    # Pass 1 (sample_id only) fixes the number of shards of each split.
    totals = {split: 0 for split in SPLITS}
    for path, _ in inputs:
        for row in iter_rows(path, columns=["sample_id"]):
            totals["validation" if is_validation(row["sample_id"], val_fraction, seed) else "train"] += 1
    shard_counts = {split: math.ceil(n / MAX_ROWS_PER_SHARD) for split, n in totals.items()}
    metadata = {"made_by": "maphc2f splits", "seed": seed, "val_fraction": val_fraction}

    staged: List[Tuple[Path, Path]] = []
    infos: List[ShardInfo] = []
    buffers: Dict[str, List[Dict[str, Any]]] = {split: [] for split in SPLITS}
    written = {split: 0 for split in SPLITS}

    def flush(split: str) -> None:
        rows = buffers[split]
        name = shard_filename(split, written[split], shard_counts[split])
        data = table_to_parquet_bytes(rows_to_table(rows, metadata))
        stage = category_dir / _stage_name(name)
        atomic_write_bytes(data, stage)
        staged.append((stage, category_dir / name))
        infos.append(ShardInfo(
            path=f"{DATA_DIR}/{category}/{name}", split=split, category=category, rows=len(rows),
            sha256=hashlib.sha256(data).hexdigest(), node=node,
        ))
        written[split] += 1
        buffers[split] = []

    for path, _ in inputs:
        for row in iter_rows(path):
            split = "validation" if is_validation(row["sample_id"], val_fraction, seed) else "train"
            buffers[split].append(row)
            if len(buffers[split]) == MAX_ROWS_PER_SHARD:
                flush(split)
    for split in SPLITS:
        if buffers[split]:
            flush(split)
    assert written == shard_counts, (written, shard_counts)  # pass 1 and 2 saw the same rows
    infos.sort(key=lambda info: info.path)
    return staged, infos


def make_splits(out_dir: os.PathLike, val_fraction: float, seed: int = 0) -> Dict[str, Any]:
    """Rewrite every category's shards as deterministic train/validation splits.

    Parameters
    ----------
    out_dir : path-like
        A built dataset (with ``manifest.json``).
    val_fraction : float
        Expected fraction of each category's rows in ``validation``, in
        [0, 1); 0 puts every row back into ``train``.
    seed : int
        Salt of the hash; another seed gives another (equally sized) split.

    Returns
    -------
    dict
        ``{"val_fraction", "seed", "train", "validation", "categories":
        {category: {"train": n, "validation": n}}}``.

    Raises
    ------
    UserError
        For a fraction outside [0, 1), a folder that is not a built dataset,
        shards that no longer match the manifest, or a dataset another
        command (a build) is using.
    """
    if not isinstance(val_fraction, (int, float)) or not 0.0 <= float(val_fraction) < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1), got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"--seed must be an integer, got {seed!r}")
    val_fraction = float(val_fraction)
    root = Path(out_dir)
    require_dataset(root)
    with dataset_lock(root, "maphc2f splits"):
        return _make_splits_locked(root, val_fraction, seed)


def _make_splits_locked(root: Path, val_fraction: float, seed: int) -> Dict[str, Any]:
    """Everything :func:`make_splits` does while holding the dataset's lock."""
    manifest = read_manifest(root) or {}
    categories = manifest.get("categories") or {}
    node = platform.node() or None

    staged_all: List[Tuple[Path, Path]] = []
    new_shards: Dict[str, List[ShardInfo]] = {}
    try:
        for category in tqdm(sorted(categories), desc="splits", unit="category", disable=None):
            staged, infos = _split_category(root, category, categories[category], val_fraction, seed, node)
            staged_all += staged
            new_shards[category] = infos
    except BaseException:
        for stage, _ in staged_all:
            stage.unlink(missing_ok=True)
        raise

    # Everything is staged: swap in the new shards, then drop the old ones.
    for stage, final in staged_all:
        os.replace(stage, final)
    summary: Dict[str, Any] = {"val_fraction": val_fraction, "seed": seed, "categories": {}}
    for category, infos in new_shards.items():
        keep = {info.path for info in infos}
        for old in categories[category].get("shards") or []:
            if old["path"] not in keep:
                (root / old["path"]).unlink(missing_ok=True)
        categories[category]["shards"] = [info.to_dict() for info in infos]
        summary["categories"][category] = {
            split: sum(info.rows for info in infos if info.split == split) for split in SPLITS
        }
    manifest["splits"] = {"val_fraction": val_fraction, "seed": seed if val_fraction > 0 else None}
    write_manifest(root, manifest)
    write_card(root, manifest)
    for split in SPLITS:
        summary[split] = sum(counts[split] for counts in summary["categories"].values())
    return summary
