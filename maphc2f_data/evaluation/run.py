"""Evaluate a detector checkpoint on a source's real test split; predict on loose images.

Torch and the models are imported inside the functions, so importing
:mod:`maphc2f_data.evaluation` stays light. Test images are resized by the
build's one rule (:func:`maphc2f_data.sampling.load_square`) to the size the
model was trained at (its checkpoint's ``size``); ground-truth masks are
resized to the same square with nearest-neighbour interpolation.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from maphc2f_data.errors import UserError
from maphc2f_data.evaluation.metrics import evaluate

__all__ = [
    "CategoryResult",
    "evaluate_checkpoint",
    "format_table",
    "heatmap_sheet",
    "load_detector",
    "predict_images",
    "write_metrics",
]

METRICS = ("image_auroc", "pixel_auroc", "aupro")


@dataclass
class CategoryResult:
    """Metrics of one category plus the arrays the heat-map sheet is drawn from."""

    metrics: Dict[str, float]
    images: np.ndarray  # uint8 (N, S, S, 3)
    masks: np.ndarray  # bool (N, S, S)
    maps: np.ndarray  # float32 (N, S, S)
    labels: np.ndarray  # int (N,)
    scores: np.ndarray  # float (N,)


def load_detector(checkpoint: os.PathLike, device: str = "cpu") -> Tuple[Any, int]:
    """``(model, size)`` of a detector checkpoint (one-line CheckpointError if it is not one)."""
    from maphc2f_data.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(checkpoint, expected_name="draem", map_location=device)
    size = info.metadata.get("size")
    return model, int(size) if size else 0


def _run_model(model, images: np.ndarray, device: str, batch_size: int) -> Tuple[np.ndarray, np.ndarray]:
    import torch

    maps, scores = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).float().div(255.0).to(device)
            out = model(x)
            maps.append(out.anomaly_map[:, 0].float().cpu().numpy())
            scores.append(out.image_score.float().cpu().numpy())
    return np.concatenate(maps), np.concatenate(scores)


def _check_size(size: int, model) -> int:
    multiple = model.config.size_multiple
    if size < multiple or size % multiple:
        raise UserError(f"--size must be a positive multiple of {multiple} for this model; got {size}")
    return size


def evaluate_checkpoint(source_name: str, root: Optional[str], categories: Sequence[str], checkpoint: os.PathLike,
                        *, size: Optional[int] = None, device: str = "cpu",
                        batch_size: int = 8) -> Dict[str, CategoryResult]:
    """Image AUROC, pixel AUROC and AUPRO of ``checkpoint`` on each category's test split.

    Raises
    ------
    UserError
        Unknown source or category, a category without defective or normal
        test images, or a checkpoint that is not a detector.
    """
    import cv2

    from maphc2f_data.sampling import load_square
    from maphc2f_data.sources import get_source

    model, trained_size = load_detector(checkpoint, device)
    size = _check_size(size or trained_size or 256, model)
    source = get_source(source_name, root)
    results = {}
    for category in source.check_categories(categories):
        items = source.test_images(category)
        labels = np.array([item.defect != "good" for item in items], dtype=int)
        if not items or labels.all() or not labels.any():
            raise UserError(f"{source_name} category {category} needs normal and defective test images "
                            f"to evaluate; found {int(labels.sum())} defective of {len(items)}")
        images, masks = [], []
        for item in items:
            images.append(load_square(source, item, size))
            mask = source.load_mask(item)
            if mask is None:
                mask = np.zeros((size, size), dtype=bool)
            else:
                mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
            masks.append(mask)
        images_np, masks_np = np.stack(images), np.stack(masks)
        maps, scores = _run_model(model, images_np, device, batch_size)
        metrics = evaluate(masks_np, maps, labels, scores)
        results[category] = CategoryResult(metrics, images_np, masks_np, maps, labels, scores)
    return results


def write_metrics(results: Dict[str, Any], json_path: Optional[os.PathLike] = None,
                  csv_path: Optional[os.PathLike] = None) -> Dict[str, Dict[str, float]]:
    """``{category: {"image_auroc", "pixel_auroc", "aupro"}}`` to JSON and/or CSV (with a mean row)."""
    table = {c: {k: float((r.metrics if isinstance(r, CategoryResult) else r)[k]) for k in METRICS}
             for c, r in results.items()}
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    if csv_path is not None:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["category", *METRICS])
            for category, values in table.items():
                writer.writerow([category, *(f"{values[k]:.6f}" for k in METRICS)])
            if len(table) > 1:
                writer.writerow(["mean", *(f"{np.mean([v[k] for v in table.values()]):.6f}" for k in METRICS)])
    return table


def format_table(table: Dict[str, Dict[str, float]], method: str = "BiSQAD") -> str:
    """The paper's Tables 2-4 shape: ``image/pixel AUROC`` in percent per category, AUPRO beside, Avg. row."""
    rows = [(c, v) for c, v in table.items()]
    if len(rows) > 1:
        rows.append(("Avg.", {k: float(np.mean([v[k] for v in table.values()])) for k in METRICS}))
    width = max([len("Category")] + [len(c) for c, _ in rows])
    head = f"{'Category':<{width}}  {method + ' (I/P AUROC)':>20}  {'AUPRO':>6}"
    lines = [head, "-" * len(head)]
    for name, v in rows:
        pair = f"{100 * v['image_auroc']:.1f}/{100 * v['pixel_auroc']:.1f}"
        lines.append(f"{name:<{width}}  {pair:>20}  {100 * v['aupro']:>6.1f}")
    return "\n".join(lines)


def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    import cv2

    colour = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (0.5 * image + 0.5 * colour).astype(np.uint8)


def _outline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    out = image.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 0, 255), 1)
    return out


def heatmap_sheet(results: Dict[str, CategoryResult], *, per_category: int = 6, tile: int = 128) -> np.ndarray:
    """RGB sheet, one row per test image: image | ground truth outlined | heat-map overlay.

    Up to ``per_category`` images per category, defective ones first (in
    their test-split order). The heat map is each image's anomaly map on a
    fixed [0, 1] scale (JET colours).
    """
    import cv2

    rows: List[np.ndarray] = []
    for category, result in results.items():
        order = list(np.flatnonzero(result.labels == 1)) + list(np.flatnonzero(result.labels == 0))
        for i in order[:per_category]:
            image = result.images[i]
            tiles = [image, _outline(image, result.masks[i]), _overlay(image, result.maps[i])]
            tiles = [cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA if t.shape[0] > tile else cv2.INTER_NEAREST)
                     for t in tiles]
            row = np.concatenate(tiles, axis=1)
            label = f"{category} {'defect' if result.labels[i] else 'good'} s={result.scores[i]:.2f}"
            cv2.putText(row, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            rows.append(row)
    if not rows:
        raise UserError("no test images to draw")
    return np.concatenate(rows, axis=0)


def predict_images(checkpoint: os.PathLike, paths: Sequence[os.PathLike], out: os.PathLike, *,
                   size: Optional[int] = None, device: str = "cpu") -> List[Tuple[str, float]]:
    """Anomaly-map PNG (8-bit, ``size`` x ``size``) per image into ``out`` and ``out/scores.csv``.

    Returns ``[(path, image score)]``. A file that cannot be decoded raises
    a one-line :class:`~maphc2f_data.errors.CorruptImageError` before
    anything is written.
    """
    import cv2

    from maphc2f_data.sampling import resize_square
    from maphc2f_data.sources.imageio import read_rgb

    model, trained_size = load_detector(checkpoint, device)
    size = _check_size(size or trained_size or 256, model)
    if not paths:
        raise UserError("no images given")
    images = []
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"image not found: {path}")
        images.append(resize_square(read_rgb(path), size))
    maps, scores = _run_model(model, np.stack(images), device, 8)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, used, names = [], set(), []
    for path, heat, score in zip(paths, maps, scores):
        stem = Path(path).stem
        name, n = f"{stem}_anomaly.png", 1
        while name in used:
            name, n = f"{stem}_{n}_anomaly.png", n + 1
        used.add(name)
        names.append(name)
        cv2.imwrite(str(out / name), np.clip(np.rint(heat * 255), 0, 255).astype(np.uint8))
        rows.append((str(path), float(score)))
    with open(out / "scores.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "image_score", "anomaly_map"])
        for (path, score), name in zip(rows, names):
            writer.writerow([path, f"{score:.6f}", name])
    return rows
