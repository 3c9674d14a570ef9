"""``export_mvtec``: a built dataset as MVTec AD category folders.

Per category::

    <category>/train/good/<stem>.png            normal training images the anomalies were made from
    <category>/test/good/<stem>.png             the source's own normal test images (when it has them)
    <category>/test/<defect_type>/<id>.png      every row (train and validation splits)
    <category>/ground_truth/<defect_type>/<id>_mask.png   its mask, 0/255

anomalib's ``MVTecAD(root=DEST, category=C)`` and ``Folder(normal_dir="train/good",
abnormal_dir="test/<defect>", mask_dir="ground_truth/<defect>")`` load it as
it is. ``train/good`` holds each distinct ``source_image`` of the rows once,
re-read from the source and resized with the build's rule
(:class:`maphc2f_data.sampling.NormalImages`), named after the source path's
stem (paths sharing a stem get their whole path, see
:func:`~maphc2f_data.dataset.export.unique_stems`). ``test/good`` is read from
the source's *test* split, never from the training normals, so a detector is
never tested on an image it was trained on.

With ``link=True`` a normal image is hard-linked (else symlinked) to its
source file instead of re-encoded, but only when the file already is a
``size x size`` image, so its pixels are the ones the build used; it keeps
the source file's suffix. Every other file is written: resized normals are
new pixels, and rows' images and masks are PNG bytes inside Parquet.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Sequence

from tqdm.auto import tqdm

from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.export import ExportSession, export_session, file_stem, png_size, unique_stems
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.errors import UserError
from maphc2f_data.sampling import NormalImages, load_square

FORMAT = "mvtec"


def export_mvtec(out_dir: os.PathLike, dest: os.PathLike, *, categories: Optional[Sequence[str]] = None,
                 link: bool = False) -> Dict[str, Any]:
    """Export a built dataset in the MVTec AD layout (see the module docstring).

    Parameters
    ----------
    out_dir : path-like
        A built dataset.
    dest : path-like
        Export folder: new, empty or an earlier export.
    categories : sequence of str, optional
        Only these categories.
    link : bool
        Link normal images that need no resize instead of writing them.

    Returns
    -------
    dict
        ``{"dest", "format", "images", "normals", "categories": {category:
        {"train/good": n, "test/good": n, defect: n, ...}}, "files": {"written":
        n, "hardlink": n, "symlink": n}}``; ``images`` counts anomalous images.

    Raises
    ------
    UserError
        See :func:`~maphc2f_data.dataset.export.export_session`; also when a
        category's source (needed for ``train/good``) is not on this machine.
    """
    with export_session(out_dir, dest, FORMAT, categories=categories, link=link) as session:
        normals = NormalImages(session.root)
        summary: Dict[str, Dict[str, int]] = {}
        for category in tqdm(session.categories, desc="export", unit="category", disable=None):
            summary[category] = _export_category(session, normals, category)
        result = {
            "dest": str(session.dest),
            "format": FORMAT,
            "images": sum(n for c in summary.values() for k, n in c.items() if k in DEFECT_TYPES),
            "normals": sum(c["train/good"] + c["test/good"] for c in summary.values()),
            "categories": summary,
            "files": dict(sorted(session.linked.items())),
        }
        result["stale_removed"] = session.write_marker(FORMAT, complete=True,
                                                       written={k: v for k, v in result.items() if k != "dest"})
    return result


def _source_of(normals: NormalImages, category: str):
    name, root = normals.source_of(category)
    if root is not None and not Path(root).is_dir():
        raise UserError(f"--format mvtec writes train/good from the {name} source images of {category!r}, "
                        f"but their root {root} is missing on this machine")
    try:
        source = normals.source(category)
        source.train_images(category)
    except UserError as exc:
        raise UserError(f"--format mvtec writes train/good from the {name} source images of {category!r}: {exc}") from None
    return source


def _export_category(session: ExportSession, normals: NormalImages, category: str) -> Dict[str, int]:
    source = _source_of(normals, category)  # before anything is written: fail early
    counts: Counter = Counter()
    used: List[str] = []
    size = None
    for _, row in session.rows(category, ["image", "mask", "sample_id", "defect_type", "source_image"]):
        defect = DEFECT_TYPES[row["defect_type"]]
        stem = file_stem(row["sample_id"])
        session.write(f"{category}/test/{defect}/{stem}.png", row["image"]["bytes"])
        session.write(f"{category}/ground_truth/{defect}/{stem}_mask.png", row["mask"]["bytes"])
        counts[defect] += 1
        used.append(row["source_image"])
        if size is None:
            width, height = png_size(row["image"]["bytes"])
            size = width
    result: Dict[str, int] = {"train/good": 0, "test/good": 0}
    if size is not None:
        names = unique_stems(used)
        for path in sorted(names):
            image = normals.image(category, path, size)
            _write_normal(session, source, f"{category}/train/good/{names[path]}", path, image, size)
        result["train/good"] = len(names)
        goods = [item for item in _test_images(source, category) if item.defect == "good"]
        test_names = unique_stems(item.path for item in goods)
        for item in goods:
            image = load_square(source, item, size)
            _write_normal(session, source, f"{category}/test/good/{test_names[item.path]}", item.path, image, size)
        result["test/good"] = len(goods)
    result.update(sorted(counts.items()))
    return result


def _test_images(source: Any, category: str) -> list:
    try:
        return list(source.test_images(category))
    except NotImplementedError:
        return []


def _write_normal(session: ExportSession, source: Any, rel_stem: str, path: str, image, size: int) -> None:
    """Write (or link, see the module docstring) one normal image at ``rel_stem`` + suffix."""
    file = None
    if session.link and getattr(source, "root", None) is not None:
        candidate = source.resolve(path)
        if candidate.is_file():
            from maphc2f_data.sources.imageio import read_rgb

            if read_rgb(candidate).shape[:2] == (size, size):
                file = candidate
    suffix = PurePosixPath(path).suffix.lower() if file is not None else ".png"
    session.link_or_write(rel_stem + suffix, file, lambda: encode_png(image))
