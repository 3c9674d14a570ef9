"""``validate_dataset``: check a built dataset against its manifest, row by row.

Checks, each reported as one line naming the file (and row) at fault:
the manifest parses and lists only shards under ``data/<category>/``; every
listed shard exists with the listed SHA-256 and row count, and no other file
sits in ``data/``; each shard has exactly the dataset schema; every image,
mask and foreground PNG decodes, masks are strictly 0/255, the three have the
same size; ``defect_type`` is a valid class; ``sample_id`` is unique across
the dataset; per-category and total row counts match the manifest; the
dataset holds at least one row.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from maphc2f_data.dataset.config import (
    CARD_NAME,
    DATA_DIR,
    DEFECT_TYPES,
    MANIFEST_FORMAT_VERSION,
    MANIFEST_NAME,
)
from maphc2f_data.dataset.manifest import read_manifest, resolve_shard_path
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.schema import HF_METADATA_KEY, arrow_schema
from maphc2f_data.dataset.shards import parse_shard_filename, sha256_file
from maphc2f_data.errors import CorruptImageError, UserError

#: Row-level problems reported per shard before summarising the rest.
MAX_ROW_PROBLEMS_PER_SHARD = 20


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_binary(mask: np.ndarray) -> bool:
    return bool(np.all((mask == 0) | (mask == 255)))


class _ShardChecker:
    """Row checks of one shard; collects problems and defect counts."""

    def __init__(self, rel_path: str, category: str, seen_ids: Dict[str, str]):
        self.rel_path = rel_path
        self.category = category
        self.seen_ids = seen_ids
        self.problems: List[str] = []
        self.extra = 0
        self.defects: Counter = Counter()
        self.rows = 0

    def report(self, row: int, message: str) -> None:
        if len(self.problems) < MAX_ROW_PROBLEMS_PER_SHARD:
            self.problems.append(f"{self.rel_path}: row {row}: {message}")
        else:
            self.extra += 1

    def _decode(self, row: int, column: str, cell: Any) -> Optional[np.ndarray]:
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if data is None:
            self.report(row, f"{column} has no PNG bytes")
            return None
        try:
            return decode_png(data)
        except CorruptImageError as exc:
            self.report(row, f"{column}: {exc}")
            return None

    def check_row(self, row: int, record: Mapping[str, Any]) -> None:
        self.rows += 1
        image = self._decode(row, "image", record.get("image"))
        if image is not None and image.ndim != 3:
            self.report(row, f"image is not RGB (shape {image.shape})")
        planes = {"image": image}
        for column in ("mask", "foreground"):
            plane = self._decode(row, column, record.get(column))
            planes[column] = plane
            if plane is None:
                continue
            if plane.ndim != 2:
                self.report(row, f"{column} is not single-channel (shape {plane.shape})")
            elif not _is_binary(plane):
                values = np.unique(plane)
                shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
                self.report(row, f"{column} is not binary 0/255 (values {shown})")
        sizes = {name: plane.shape[:2] for name, plane in planes.items() if plane is not None}
        if len(set(sizes.values())) > 1:
            self.report(row, "image/mask/foreground sizes differ: "
                        + ", ".join(f"{k} {v[1]}x{v[0]}" for k, v in sizes.items()))
        defect = record.get("defect_type")
        if not isinstance(defect, int) or not 0 <= defect < len(DEFECT_TYPES):
            self.report(row, f"defect_type {defect!r} is not in 0..{len(DEFECT_TYPES) - 1}")
        else:
            self.defects[DEFECT_TYPES[defect]] += 1
        if record.get("category") != self.category:
            self.report(row, f"category {record.get('category')!r} in a shard of {self.category!r}")
        sample_id = record.get("sample_id")
        if not isinstance(sample_id, str) or not sample_id:
            self.report(row, f"sample_id {sample_id!r} is empty")
        elif sample_id in self.seen_ids:
            self.report(row, f"duplicate sample_id {sample_id!r} (also in {self.seen_ids[sample_id]})")
        else:
            self.seen_ids[sample_id] = self.rel_path

    def finish(self) -> List[str]:
        if self.extra:
            self.problems.append(f"{self.rel_path}: ... and {self.extra} more row problems")
        return self.problems


def _schema_problem(schema: pa.Schema) -> Optional[str]:
    expected = arrow_schema()
    if not schema.equals(expected, check_metadata=False):
        return f"schema differs from the dataset schema: got [{', '.join(f'{f.name}: {f.type}' for f in schema)}]"
    hf = (schema.metadata or {}).get(HF_METADATA_KEY)
    if hf != expected.metadata[HF_METADATA_KEY]:
        return "the 'huggingface' features metadata is missing or differs"
    return None


def _check_shard(root: Path, shard: Mapping[str, Any], category: str, seen_ids: Dict[str, str],
                 defects: Counter) -> Tuple[List[str], bool]:
    """Problems of one listed shard, and whether all its rows could be read."""
    rel = shard.get("path")
    path = resolve_shard_path(root, rel, category)
    if path is None:
        return [f"manifest: shard path {rel!r} of category {category!r} is not data/{category}/<split>-NNNNN-of-MMMMM.parquet"], False
    if not path.is_file():
        return [f"{rel}: listed in the manifest but missing"], False
    problems = []
    parsed = parse_shard_filename(path.name)
    if shard.get("split") != parsed["split"]:
        problems.append(f"{rel}: manifest split {shard.get('split')!r} but file name says {parsed['split']!r}")
    digest = sha256_file(path)
    if digest != shard.get("sha256"):
        problems.append(f"{rel}: sha256 mismatch (manifest {str(shard.get('sha256'))[:12]}..., file {digest[:12]}...)")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{rel}: not a readable Parquet file ({_first_line(exc)})")
        return problems, False
    try:
        schema_problem = _schema_problem(parquet.schema_arrow)
        if schema_problem:
            problems.append(f"{rel}: {schema_problem}")
            return problems, False
        if parquet.metadata.num_rows != shard.get("rows"):
            problems.append(f"{rel}: has {parquet.metadata.num_rows} rows, manifest says {shard.get('rows')}")
        checker = _ShardChecker(rel, category, seen_ids)
        complete = True
        try:
            row = 0
            for batch in parquet.iter_batches(batch_size=64):
                for record in batch.to_pylist():
                    checker.check_row(row, record)
                    row += 1
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{rel}: unreadable after row {row} ({_first_line(exc)})")
            complete = False
        problems += checker.finish()
        defects.update(checker.defects)
    finally:
        parquet.close()
    return problems, complete


def _unlisted_files(root: Path, listed: set) -> List[str]:
    data = root / DATA_DIR
    if not data.is_dir():
        return []
    found = sorted(
        (Path(dirpath) / name).relative_to(root).as_posix()
        for dirpath, _, filenames in os.walk(data)
        for name in filenames
    )
    return [f"{rel}: file in {DATA_DIR}/ not listed in the manifest" for rel in found if rel not in listed]


def validate_dataset(out_dir: os.PathLike) -> List[str]:
    """Check a built dataset; returns the problems found (empty when valid).

    Parameters
    ----------
    out_dir : path-like
        The dataset folder (holding ``manifest.json`` and ``data/``).

    Returns
    -------
    list of str
        One line per problem, naming the file and row where it applies.

    Raises
    ------
    UserError
        When ``out_dir`` does not exist or holds no ``manifest.json``.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise UserError(f"dataset folder does not exist: {root}")
    if not (root / MANIFEST_NAME).is_file():
        raise UserError(f"not a built MaPhC2F dataset (no {MANIFEST_NAME}): {root}")
    try:
        manifest = read_manifest(root)
    except UserError as exc:
        return [str(exc)]
    problems: List[str] = []
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        problems.append(f"manifest: format_version {manifest.get('format_version')!r}, expected {MANIFEST_FORMAT_VERSION}")
    categories = manifest.get("categories")
    if not isinstance(categories, dict):
        return problems + ["manifest: 'categories' is missing or not an object"]
    if not (root / CARD_NAME).is_file():
        problems.append(f"{CARD_NAME}: dataset card missing")

    jobs = []
    for category in sorted(categories):
        shards = categories[category].get("shards")
        if not isinstance(shards, list) or not shards:
            problems.append(f"manifest: category {category!r} lists no shards")
            continue
        jobs += [(category, shard) for shard in shards]
    listed = {shard.get("path") for _, shard in jobs}
    problems += _unlisted_files(root, listed)

    seen_ids: Dict[str, str] = {}
    defects_by_category: Dict[str, Counter] = {category: Counter() for category in categories}
    incomplete = set()
    total_rows = 0
    for category, shard in tqdm(jobs, desc="validate", unit="shard", disable=None):
        shard_problems, complete = _check_shard(root, shard, category, seen_ids, defects_by_category[category])
        problems += shard_problems
        if not complete:
            incomplete.add(category)
        total_rows += int(shard.get("rows") or 0)

    # Per-type counts are only comparable where every shard could be read.
    for category in sorted(set(categories) - incomplete):
        expected = categories[category].get("rows") or {}
        found = defects_by_category[category]
        for defect in DEFECT_TYPES:
            if int(expected.get(defect, 0)) != found[defect]:
                problems.append(
                    f"manifest: {category}/{defect} lists {int(expected.get(defect, 0))} rows, shards hold {found[defect]}"
                )
    if manifest.get("total_rows") != total_rows:
        problems.append(f"manifest: total_rows {manifest.get('total_rows')!r}, shards list {total_rows}")
    if total_rows == 0:
        problems.append("manifest: the dataset holds no rows (every input of its build was skipped or failed; "
                        "see build_report.json)")
    return problems


def count_rows(out_dir: os.PathLike) -> Dict[str, int]:
    """``{"rows": ..., "shards": ...}`` as listed in the manifest (for reports)."""
    manifest = read_manifest(out_dir) or {}
    shards = [s for entry in (manifest.get("categories") or {}).values() for s in entry.get("shards") or []]
    return {"rows": sum(int(s.get("rows") or 0) for s in shards), "shards": len(shards)}
