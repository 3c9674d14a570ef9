"""A tiny built dataset written straight with the dataset I/O layer (no builder).

Three categories from three sources (so the card states three licences), 32x32
PNGs, a foreground cache with decoy files under ``.cache/``. Rows are made
from a seeded generator, so the folder is byte-identical on every call.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from maphc2f_data.dataset.card import write_card
from maphc2f_data.dataset.config import DEFECT_TYPES, SOURCE_LICENSES, SOURCE_PRETTY_NAMES
from maphc2f_data.dataset.manifest import package_versions, write_manifest
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.dataset.shards import shard_filename, write_shard

SIZE = 32

#: category -> (source, rows per shard)
LAYOUT = {
    "bottle": ("mvtec", [5, 4]),
    "candle": ("visa", [6]),
    "01": ("btad", [3]),
}


def make_row(category: str, source: str, index: int, rng: np.random.Generator, size: int = SIZE) -> Dict[str, Any]:
    """One valid row with ``size`` x ``size`` PNGs."""
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    height, width = max(2, size // 5), max(2, size // 4)
    y, x = rng.integers(1, size - max(height, width), 2)
    mask[y:y + height, x:x + width] = True
    foreground = np.zeros((size, size), dtype=bool)
    foreground[1:-1, 1:-1] = True
    defect = DEFECT_TYPES[index % 3]
    return {
        "image": encode_png(image),
        "mask": encode_png(mask),
        "foreground": encode_png(foreground),
        "sample_id": f"{category}-{defect}-{index:05d}",
        "source_dataset": source,
        "category": category,
        "defect_type": defect,
        "source_image": f"{category}/train/good/{index % 4:03d}.png",
        "seed": int(1000 + index),
        "params": json.dumps({"index": index}, sort_keys=True, separators=(",", ":")),
        "foreground_method": "classical",
        "stage": "raw",
        "anomaly_area": float(mask.mean()),
        "on_foreground": 1.0,
        "contrast": 12.5,
        "quality": None if index % 2 else 0.75,
    }


def make_dataset(root: Path, seed: int = 0) -> Dict[str, Any]:
    """Write shards, manifest, card and a decoy ``.cache`` under ``root``; returns the manifest."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    categories: Dict[str, Any] = {}
    total = 0
    for category, (source, shard_sizes) in LAYOUT.items():
        rows_by_type = {defect: 0 for defect in DEFECT_TYPES}
        shards: List[Dict[str, Any]] = []
        index = 0
        for shard_index, n_rows in enumerate(shard_sizes):
            rows = []
            for _ in range(n_rows):
                rows.append(make_row(category, source, index, rng))
                rows_by_type[rows[-1]["defect_type"]] += 1
                index += 1
            path = root / "data" / category / shard_filename("train", shard_index, len(shard_sizes))
            info = write_shard(rows, path, metadata={"plan": f"{category}-{shard_index}"}, node="test-node")
            shards.append(info.to_dict())
        total += index
        categories[category] = {
            "source": source,
            "license": SOURCE_LICENSES[source],
            "source_pretty_name": SOURCE_PRETTY_NAMES[source],
            "rows": rows_by_type,
            "shards": shards,
        }
    manifest = {
        "format_version": 1,
        "name": "maphc2f",
        "package_version": "0.1.0",
        "versions": package_versions(),
        "command": ["maphc2f-build", "--source", "mvtec", "--count", "1"],
        "config": {"source": "mvtec", "root": None, "seed": seed, "size": SIZE, "count": 1,
                   "png_compression": 3, "sam_model": None, "categories": sorted(LAYOUT)},
        "plan": {"total": total, "categories": {}},
        "categories": categories,
        "splits": {"val_fraction": 0.0, "seed": None},
        "total_rows": total,
    }
    write_manifest(root, manifest)
    write_card(root, manifest)
    # Decoys a careless data-file inference would pick up.
    cache = root / ".cache" / "foreground" / "bottle"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "000.png").write_bytes(encode_png(np.ones((8, 8), dtype=bool)))
    (cache / "train-00000-of-00001.parquet").write_bytes(b"not parquet")
    (cache / "index.json").write_text("{}")
    return manifest


def copy_dataset(source: Path, dest: Path) -> Path:
    """A private copy of a built dataset (for tests that modify it)."""
    shutil.copytree(source, dest)
    return dest


def total_rows() -> int:
    """Rows in the tiny dataset."""
    return sum(sum(sizes) for _, sizes in LAYOUT.values())
