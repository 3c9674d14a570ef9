"""``export_yolo_seg``: a built dataset in the Ultralytics segmentation layout.

Writes ``images/<split>/<stem>.png`` (the rows' images as stored),
``labels/<split>/<stem>.txt`` and ``data.yaml`` (``path``, ``train``, ``val``,
``names``: the defect types, class ids from 0). A label file has one line
per outer contour of the mask's regions (``cv2.findContours``,
``RETR_EXTERNAL``: holes are filled, ``CHAIN_APPROX_SIMPLE``: straight runs
keep their end points only): ``class_id x1 y1 x2 y2 ...``, coordinates of
pixel centres (``(x + 0.5) / width``) with 6 decimals, so
``cv2.fillPoly`` of the truncated pixel coordinates (what Ultralytics'
``polygon2mask`` does) gives back the region's outline and inside. A region
whose contour has one or two points (a pixel, a straight line) repeats
them to make the three points the format needs. An image whose mask is empty has an empty label file (a background
image). Without a validation split ``val`` points at the training images.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from maphc2f_data.dataset.export import export_session, file_stem, png_size
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.synthesis import DEFECT_TYPES

FORMAT = "yolo-seg"
COLUMNS = ["image", "mask", "sample_id", "defect_type"]
#: Decimals of the normalised coordinates (exact to 0.002 px at 2048 px).
DECIMALS = 6


def mask_polygons(mask: np.ndarray) -> List[np.ndarray]:
    """Outer contours of the regions of ``mask``: int32 ``(N, 2)`` ``x, y`` pixel coordinates, N >= 3."""
    mask = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(np.int32)
        if len(points) < 3:  # a pixel or a straight line: its points repeated (fillPoly draws the segment)
            points = np.resize(points, (3, 2))
        polygons.append(points)
    return polygons


def polygon_line(class_id: int, points: np.ndarray, width: int, height: int) -> str:
    """One YOLO segmentation label line for pixel-coordinate ``points``."""
    coords = (np.asarray(points, dtype=np.float64) + 0.5) / np.array([width, height], dtype=np.float64)
    return " ".join([str(class_id)] + [f"{v:.{DECIMALS}f}" for v in coords.ravel()])


def rasterize(lines: Sequence[str], width: int, height: int) -> np.ndarray:
    """The mask a label file's polygons cover, as Ultralytics' ``polygon2mask`` draws them (bool ``(H, W)``)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for line in lines:
        values = line.split()
        if len(values) < 7:
            continue
        points = np.array(values[1:], dtype=np.float64).reshape(-1, 2) * np.array([width, height])
        cv2.fillPoly(mask, [points.astype(np.int32)], color=1)
    return mask.astype(bool)


def _yaml_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_yolo_seg(out_dir: os.PathLike, dest: os.PathLike, *, categories: Optional[Sequence[str]] = None,
                    link: bool = False) -> Dict[str, Any]:
    """Export a built dataset for Ultralytics YOLO segmentation (see the module docstring).

    ``link`` is accepted for a uniform interface; every file is written.

    Returns
    -------
    dict
        ``{"dest", "format", "images", "splits": {split: images}, "polygons": {split: n}}``.
    """
    with export_session(out_dir, dest, FORMAT, categories=categories, link=link,
                        top_folders=("images", "labels")) as session:
        images_per_split: Dict[str, int] = {}
        polygons_per_split: Dict[str, int] = {}
        splits = session.splits()
        for split in splits:
            images = polygons = 0
            for category in tqdm(session.categories, desc=f"export {split}", unit="category", disable=None):
                for _, row in session.rows(category, COLUMNS, split=split):
                    stem = file_stem(row["sample_id"])
                    session.write(f"images/{split}/{stem}.png", row["image"]["bytes"])
                    width, height = png_size(row["image"]["bytes"])
                    lines = [polygon_line(int(row["defect_type"]), points, width, height)
                             for points in mask_polygons(decode_png(row["mask"]["bytes"]))]
                    session.write(f"labels/{split}/{stem}.txt", "".join(f"{line}\n" for line in lines).encode())
                    images += 1
                    polygons += len(lines)
            images_per_split[split] = images
            polygons_per_split[split] = polygons
        val = "validation" if "validation" in splits else "train"
        names = "".join(f"  {i}: {name}\n" for i, name in enumerate(DEFECT_TYPES))
        data_yaml = (f"# MaPhC2F exported by maphc2f export (Ultralytics segmentation)\n"
                     f"path: {_yaml_string(str(session.dest))}\n"
                     f"train: images/train\nval: images/{val}\nnames:\n{names}")
        session.write("data.yaml", data_yaml.encode("utf-8"))
        result = {"dest": str(session.dest), "format": FORMAT, "images": sum(images_per_split.values()),
                  "splits": images_per_split, "polygons": polygons_per_split}
        result["stale_removed"] = session.write_marker(FORMAT, complete=True,
                                                       written={k: v for k, v in result.items() if k != "dest"})
    return result
