"""Tiny fake dataset trees in the exact layouts the real datasets ship.

Used by the source-reader tests and reusable by any test that needs a
dataset root. Not a pytest plugin: import it after putting this folder on
``sys.path``::

    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
    from fake_trees import make_mvtec_tree

(``parents[1]`` is ``tests/`` for a file in ``tests/<area>/``.) Every image
is deterministic: its pixels are seeded by its own relative path.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

#: BTAD image / mask extensions per product, as the dataset ships them.
BTAD_EXTENSIONS: Dict[str, Tuple[str, str]] = {"01": ("bmp", "png"), "02": ("png", "png"), "03": ("bmp", "bmp")}
#: Defect labels written to VisA's image_anno.csv (one contains a comma).
VISA_DEFECT_LABELS = ("scratch", "chunk of wax missing", "bent,melt")


def _seed(path: Path, root: Path) -> int:
    return zlib.crc32(path.relative_to(root).as_posix().encode())


def write_image(path: Path, root: Path, size: int = 32) -> Path:
    """A random RGB image seeded by ``path`` relative to ``root``."""
    rng = np.random.default_rng(_seed(path, root))
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(pixels).save(path, **options)
    return path


def write_mask(path: Path, size: int = 32, value: int = 255) -> Path:
    """A single-band mask with a ``value``-filled square, 0 elsewhere."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4: size // 2, size // 4: size // 2] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)
    return path


def make_mvtec_tree(root: Path, categories: Sequence[str] = ("bottle", "carpet"), *, n_train: int = 3,
                    n_test_good: int = 2, defects: Sequence[str] = ("broken_large", "crack"),
                    n_defect: int = 2, size: int = 32) -> Path:
    """``<root>/<cat>/{train/good, test/<defect>, ground_truth/<defect>/<name>_mask.png}``."""
    root = Path(root)
    for category in categories:
        base = root / category
        for i in range(n_train):
            write_image(base / "train" / "good" / f"{i:03d}.png", root, size)
        for i in range(n_test_good):
            write_image(base / "test" / "good" / f"{i:03d}.png", root, size)
        for defect in defects:
            for i in range(n_defect):
                write_image(base / "test" / defect / f"{i:03d}.png", root, size)
                write_mask(base / "ground_truth" / defect / f"{i:03d}_mask.png", size)
    return root


def make_visa_tree(root: Path, categories: Sequence[str] = ("candle", "pcb1"), *, n_train: int = 3,
                   n_test_normal: int = 2, n_anomaly: int = 2, size: int = 32, prepared: bool = False,
                   image_anno: bool = True, extra_rows: Iterable[Sequence[str]] = ()) -> Path:
    """VisA as downloaded (``prepared=False``) or the MVTec-like prepared layout.

    Downloaded: ``<cat>/Data/Images/{Normal,Anomaly}/*.JPG``, class-id masks
    ``<cat>/Data/Masks/Anomaly/*.png`` (values 1..3, they look black),
    ``split_csv/1cls.csv`` with its rows in a shuffled (seeded) order like the
    real file, plus ``extra_rows`` appended verbatim, and optionally
    ``<cat>/image_anno.csv`` with labels from :data:`VISA_DEFECT_LABELS`.
    Prepared: ``<cat>/{train/good, test/good, test/bad, ground_truth/bad/<stem>.png}``.
    """
    root = Path(root)
    rows = []
    for category in categories:
        base = root / category
        if prepared:
            for i in range(n_train):
                write_image(base / "train" / "good" / f"{i:04d}.JPG", root, size)
            for i in range(n_test_normal):
                write_image(base / "test" / "good" / f"{i:04d}.JPG", root, size)
            for i in range(n_anomaly):
                write_image(base / "test" / "bad" / f"{i:03d}.JPG", root, size)
                write_mask(base / "ground_truth" / "bad" / f"{i:03d}.png", size)
            continue
        annotations = []
        for i in range(n_train + n_test_normal):
            rel = f"{category}/Data/Images/Normal/{i:04d}.JPG"
            write_image(root / rel, root, size)
            rows.append([category, "train" if i < n_train else "test", "normal", rel, ""])
            annotations.append([rel, "normal", ""])
        for i in range(n_anomaly):
            rel = f"{category}/Data/Images/Anomaly/{i:03d}.JPG"
            mask = f"{category}/Data/Masks/Anomaly/{i:03d}.png"
            write_image(root / rel, root, size)
            write_mask(root / mask, size, value=1 + i % 3)
            rows.append([category, "test", "anomaly", rel, mask])
            annotations.append([rel, VISA_DEFECT_LABELS[i % len(VISA_DEFECT_LABELS)], mask])
        if image_anno:
            _write_csv(base / "image_anno.csv", ["image", "label", "mask"], annotations)
    if not prepared:
        order = np.random.default_rng(0).permutation(len(rows))
        rows = [rows[i] for i in order] + [list(row) for row in extra_rows]
        _write_csv(root / "split_csv" / "1cls.csv", ["object", "split", "label", "image", "mask"], rows)
    return root


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def make_btad_tree(root: Path, categories: Sequence[str] = ("01", "02", "03"), *, n_train: int = 3,
                   n_test_ok: int = 2, n_test_ko: int = 2, size: int = 32,
                   extensions: Optional[Dict[str, Tuple[str, str]]] = None) -> Path:
    """``<root>/<cat>/{train/ok, test/ok, test/ko, ground_truth/ko/<stem>.<mask ext>}``
    with the mixed extensions of :data:`BTAD_EXTENSIONS`."""
    root = Path(root)
    extensions = extensions or BTAD_EXTENSIONS
    for category in categories:
        image_ext, mask_ext = extensions[category]
        base = root / category
        for i in range(n_train):
            write_image(base / "train" / "ok" / f"{i:04d}.{image_ext}", root, size)
        for i in range(n_test_ok):
            write_image(base / "test" / "ok" / f"{i:04d}.{image_ext}", root, size)
        for i in range(n_test_ko):
            write_image(base / "test" / "ko" / f"{i:04d}.{image_ext}", root, size)
            write_mask(base / "ground_truth" / "ko" / f"{i:04d}.{mask_ext}", size)
    return root


def make_folder_tree(root: Path, categories: Optional[Sequence[str]] = None, *, n_images: int = 3,
                     size: int = 32) -> Path:
    """A plain image folder: ``n_images`` at the top plus 1 in ``nested/``
    (``categories=None``), or the same inside each ``<root>/<category>/``.
    A hidden ``.hidden.png`` and a ``notes.txt`` sit beside the images."""
    root = Path(root)
    folders = [root] if categories is None else [root / name for name in categories]
    for folder in folders:
        for i in range(n_images):
            write_image(folder / f"img_{i:02d}.png", root, size)
        write_image(folder / "nested" / "deep.jpg", root, size)
        write_image(folder / ".hidden.png", root, size)
        (folder / "notes.txt").write_text("not an image\n")
    return root
