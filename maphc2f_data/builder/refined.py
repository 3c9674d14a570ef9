"""``refine_dataset``: refine an existing raw build into a new dataset folder.

Every shard of the input is rewritten under the same relative path in the
output with the same rows in the same order; only ``image`` (the refined
anomaly), ``stage`` and ``contrast`` (measured on the refined image, as a
refined build measures it) change. Sample ids, masks, foregrounds, seeds
and params are kept. The output gets its own manifest (the input's, with new
shard hashes, the refiner's checkpoint hashes under ``config.refine`` and
``refined_from``) and card, and is validated before this returns.

Resumable: each output shard records the input shard's sha256 and the
refiner's fingerprint in its metadata; a rerun keeps shards whose record
matches. Normal images are re-read from the sources the input's manifest
names (:class:`~maphc2f_data.sampling.NormalImages`).
"""

from __future__ import annotations

import copy
import os
import platform
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from maphc2f_data.dataset.card import write_card
from maphc2f_data.dataset.manifest import read_manifest, resolve_shard_path, write_manifest
from maphc2f_data.dataset.png import decode_png, encode_png
from maphc2f_data.dataset.shards import ShardWriter, iter_rows, read_shard_metadata, sha256_file
from maphc2f_data.errors import UserError
from maphc2f_data.names import RAW_STAGE

__all__ = ["REFINE_BATCH", "refine_dataset"]

#: Rows refined per forward pass.
REFINE_BATCH = 16


def _check_out(data: Path, out: Path) -> None:
    if out == data or data in out.parents or out in data.parents:
        raise UserError(f"--out {out} must be a new folder apart from --data {data}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        existing = read_manifest(out)
        if not existing or "refined_from" not in existing:
            raise UserError(f"--out {out} is a non-empty folder that is not an earlier `maphc2f refine` output; "
                            "choose a new folder")


def _refine_rows(rows: List[Dict[str, Any]], normals: Any, refiner: Any, png_compression: int) -> None:
    from maphc2f_data.sampling import statistics

    raws = [decode_png(row["image"]["bytes"]) for row in rows]
    masks = [decode_png(row["mask"]["bytes"]) > 0 for row in rows]
    base = [normals.image(row["category"], row["source_image"], raw.shape[0]) for row, raw in zip(rows, raws)]
    refined = refiner.refine_batch(base, raws, masks)
    for row, normal, image, mask in zip(rows, base, refined, masks):
        row["image"] = encode_png(image, png_compression)
        row["stage"] = refiner.stage
        row["contrast"] = statistics.contrast(normal, image, mask)


def refine_dataset(data: os.PathLike, out: os.PathLike, refiner: Any, *, command: Sequence[str] = (),
                   progress: bool = True, log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Write ``data``'s rows refined by ``refiner`` into the new dataset ``out``.

    Parameters
    ----------
    data : path
        A raw build.
    out : path
        A new (or empty) folder, or an earlier output of this function (resumed).
    refiner : CheckpointRefiner
        Anything with ``stage``, ``fingerprint`` and ``refine_batch(normals, raws, masks)``.

    Returns
    -------
    dict
        The output's manifest.

    Raises
    ------
    UserError
        ``data`` is not a raw build, ``out`` is not usable, or the output fails validation.
    """
    from tqdm import tqdm

    from maphc2f_data.dataset.validate import validate_dataset
    from maphc2f_data.sampling import NormalImages

    data = Path(data).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    manifest = read_manifest(data)
    if manifest is None:
        raise UserError(f"--data is not a built MaPhC2F dataset (no manifest.json): {data}")
    stage = (manifest.get("config") or {}).get("refine", {}).get("stage", RAW_STAGE)
    if stage != RAW_STAGE or "refined_from" in manifest:
        raise UserError(f"--data {data} is already refined (stage {stage}); refine a raw build")
    _check_out(data, out)
    normals = NormalImages(data)
    png_compression = int((manifest.get("config") or {}).get("png_compression") or 1)
    fingerprint = dict(refiner.fingerprint)
    node = platform.node() or None
    new = copy.deepcopy(manifest)
    total = int(manifest.get("total_rows") or 0)
    bar = tqdm(total=total, unit="sample", desc="maphc2f refine", disable=not progress, dynamic_ncols=True)
    listed = set()
    try:
        for category, entry in sorted((new.get("categories") or {}).items()):
            for shard in entry.get("shards") or []:
                source_path = resolve_shard_path(data, shard.get("path"), category)
                target = resolve_shard_path(out, shard.get("path"), category)
                if source_path is None or target is None or not source_path.is_file():
                    raise UserError(f"shard {shard.get('path')} of {data} is missing; run `maphc2f validate {data}`")
                listed.add(target)
                record = {"refined_from": shard.get("sha256"), "refiner": fingerprint, "stage": refiner.stage}
                if target.is_file() and {k: (read_shard_metadata(target) or {}).get(k) for k in record} == record:
                    shard["sha256"] = sha256_file(target)
                    bar.update(int(shard.get("rows", 0)))
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with ShardWriter(target, node=node) as writer:
                    batch: List[Dict[str, Any]] = []
                    for row in iter_rows(source_path):
                        batch.append(row)
                        if len(batch) == REFINE_BATCH:
                            _refine_rows(batch, normals, refiner, png_compression)
                            for item in batch:
                                writer.add(item)
                            bar.update(len(batch))
                            batch = []
                    if batch:
                        _refine_rows(batch, normals, refiner, png_compression)
                        for item in batch:
                            writer.add(item)
                        bar.update(len(batch))
                    info = writer.close(record)
                shard["sha256"], shard["node"] = info.sha256, node
    finally:
        bar.close()
    for path in (out / "data").rglob("*.parquet") if (out / "data").is_dir() else ():
        if path not in listed:
            path.unlink()
    config = new.setdefault("config", {})
    config["refine"] = {"stage": refiner.stage, **fingerprint}
    new["refined_from"] = {"path": str(data), "manifest_sha256": sha256_file(data / "manifest.json")}
    new["command"] = list(command)
    write_manifest(out, new)
    write_card(out, new)
    problems = validate_dataset(out)
    if problems:
        raise UserError(f"the refined dataset {out} does not validate: {problems[0]}"
                        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return new
