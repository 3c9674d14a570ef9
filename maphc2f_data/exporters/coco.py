"""``export_coco``: a built dataset as COCO instance segmentation.

Writes ``images/<split>/<stem>.png`` (the rows' images as stored) and
``annotations/instances_<split>.json`` for each split the dataset has
(``train``; ``validation`` after ``maphc2f splits``). Categories are the
defect types (:data:`~maphc2f_data.synthesis.DEFECT_TYPES`, ids from 1);
each 8-connected region of a row's mask is one annotation with a compressed
RLE ``segmentation`` (the COCO "counts" string, written here without
pycocotools), its pixel ``area``, ``bbox`` ``[x, y, w, h]`` and
``iscrowd`` 0. An image whose mask is empty has no annotation. Images carry
``sample_id`` and ``object_category`` besides the COCO keys.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from maphc2f_data.dataset.export import export_session, file_stem, png_size
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.synthesis import DEFECT_TYPES

FORMAT = "coco"
COLUMNS = ["image", "mask", "sample_id", "defect_type", "category"]


def rle_counts(mask: np.ndarray) -> List[int]:
    """Run lengths of ``mask`` in COCO's order (column-major, starting with a run of 0s)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    return [0] + runs if flat[0] else runs


def counts_string(counts: Sequence[int]) -> str:
    """COCO's compressed RLE string of run lengths (``rleToString`` in maskApi.c)."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_encode(mask: np.ndarray) -> Dict[str, Any]:
    """A binary mask as COCO compressed RLE ``{"size": [h, w], "counts": str}``.

    Equal to ``pycocotools.mask.encode(np.asfortranarray(mask))`` with the
    counts decoded to ``str``.

    >>> rle_encode(np.array([[0, 1], [1, 1]], dtype=bool))
    {'size': [2, 2], 'counts': '13'}
    """
    mask = np.asarray(mask, dtype=bool)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts_string(rle_counts(mask))}


def mask_regions(mask: np.ndarray) -> List[Dict[str, Any]]:
    """One COCO annotation body (``segmentation``, ``area``, ``bbox``) per 8-connected region."""
    mask = np.asarray(mask) > 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    regions = []
    for label in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[label])
        regions.append({"segmentation": rle_encode(labels == label), "area": area, "bbox": [x, y, w, h]})
    return regions


def export_coco(out_dir: os.PathLike, dest: os.PathLike, *, categories: Optional[Sequence[str]] = None,
                link: bool = False) -> Dict[str, Any]:
    """Export a built dataset as COCO instance segmentation (see the module docstring).

    ``link`` is accepted for a uniform interface; every file is written (the
    images are PNG bytes inside Parquet, not files to link).

    Returns
    -------
    dict
        ``{"dest", "format", "images", "annotations": {split: n}, "splits": {split: images}}``.
    """
    with export_session(out_dir, dest, FORMAT, categories=categories, link=link,
                        top_folders=("images", "annotations")) as session:
        coco_categories = [{"id": i + 1, "name": name, "supercategory": "anomaly"}
                           for i, name in enumerate(DEFECT_TYPES)]
        images_per_split: Dict[str, int] = {}
        annotations_per_split: Dict[str, int] = {}
        for split in session.splits():
            images: List[Dict[str, Any]] = []
            annotations: List[Dict[str, Any]] = []
            for category in tqdm(session.categories, desc=f"export {split}", unit="category", disable=None):
                for _, row in session.rows(category, COLUMNS, split=split):
                    stem = file_stem(row["sample_id"])
                    session.write(f"images/{split}/{stem}.png", row["image"]["bytes"])
                    width, height = png_size(row["image"]["bytes"])
                    image_id = len(images) + 1
                    images.append({"id": image_id, "file_name": f"{stem}.png", "width": width, "height": height,
                                   "sample_id": row["sample_id"], "object_category": row["category"]})
                    for region in mask_regions(decode_png(row["mask"]["bytes"])):
                        annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                            "category_id": int(row["defect_type"]) + 1, "iscrowd": 0, **region})
            document = {
                "info": {"description": f"MaPhC2F {split} split exported by maphc2f export",
                         "dataset": str(session.root)},
                "licenses": [],
                "images": images,
                "annotations": annotations,
                "categories": coco_categories,
            }
            session.write(f"annotations/instances_{split}.json",
                          json.dumps(document, separators=(",", ":")).encode("utf-8"))
            images_per_split[split] = len(images)
            annotations_per_split[split] = len(annotations)
        result = {"dest": str(session.dest), "format": FORMAT, "images": sum(images_per_split.values()),
                  "splits": images_per_split, "annotations": annotations_per_split}
        result["stale_removed"] = session.write_marker(FORMAT, complete=True,
                                                       written={k: v for k, v in result.items() if k != "dest"})
    return result
