"""Folder reader: any directory of normal images, searched recursively.

* ``<root>`` holds image files itself: one category, named after the folder,
  made of every image below ``<root>`` (sub-folders included);
* otherwise each visible sub-folder holding at least one image (at any depth)
  is a category named after that sub-folder.

There are no test images and no known textures; the licence is whatever
the folder's own images carry. Hidden files and folders (names starting with
".") are skipped and symlinked folders are not followed.

Only normal images may make a MaPhC2F dataset, so images below a folder
whose name says it holds test images, defects or labels
(:data:`EXCLUDED_FOLDERS`, any case, at any depth below the category) are not
read; a build says how many were left out and the card names the rule. An
MVTec-layout tree given as a folder source therefore contributes its
``train/good`` images only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from maphc2f_data.sources.base import Source, SourceImage, register_source
from maphc2f_data.sources.imageio import IMAGE_EXTENSIONS, is_image_name, list_images

#: Folder names (lower case) whose images are never read: test splits,
#: defects, ground truth and labels.
EXCLUDED_FOLDERS = frozenset({
    "test", "tests", "testing", "ground_truth", "groundtruth", "gt", "mask", "masks", "label", "labels",
    "annotation", "annotations", "defect", "defects", "anomaly", "anomalies", "bad", "ko", "ng",
})


def is_excluded(relpath: str) -> bool:
    """Whether a category-relative POSIX path lies below an excluded folder."""
    return any(part.lower() in EXCLUDED_FOLDERS for part in relpath.split("/")[:-1])


def _has_image(directory: Path) -> bool:
    """Whether any visible image lies below ``directory`` (stops at the first)."""
    for current, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(is_image_name(name) for name in files):
            return True
    return False


@register_source
class FolderSource(Source):
    """Normal images from a plain directory tree."""

    name = "folder"
    license = "unknown (inherits the folder's own licence)"
    pretty_name = "Image folder"
    texture_categories = frozenset()
    needs_root = True
    expected_layout = (
        f"images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in <root> (one category) "
        "or in <root>/<category>/ (one category per sub-folder), at any depth"
    )

    def __init__(self, root=None):
        super().__init__(root)
        root = self.check_root()
        with os.scandir(root) as entries:
            entries = sorted(entries, key=lambda entry: entry.name)
        if any(is_image_name(e.name) and e.is_file() for e in entries):
            self._folders: Dict[str, Path] = {root.name or "folder": root}
        else:
            self._folders = {
                e.name: Path(e.path) for e in entries
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False) and _has_image(Path(e.path))
            }
        if not self._folders:
            raise self.layout_error(f"no images found under {root}")

    def categories(self) -> List[str]:
        return sorted(self._folders)

    def _listing(self, category: str) -> "tuple[List[str], List[str]]":
        """(read, left out) root-relative paths of ``category``."""
        folder = self._folders[self.check_category(category)]
        prefix = folder.relative_to(self.root).as_posix()
        read, left_out = [], []
        for path in list_images(self.root, folder, recursive=True):
            inside = path[len(prefix) + 1:] if prefix not in ("", ".") else path
            (left_out if is_excluded(inside) else read).append(path)
        return read, left_out

    def train_images(self, category: str) -> List[SourceImage]:
        read, left_out = self._listing(category)
        if not read:
            raise self.layout_error(
                f"every image of {self._folders[category]} lies below a test, defect or label folder "
                f"({len(left_out)} left out, e.g. {left_out[0]})")
        return [SourceImage(self.name, category, path, "train", "good") for path in read]

    def images_read(self, category: str) -> str:
        return ("every image below `<category>/` except those in folders named "
                f"{', '.join(sorted(EXCLUDED_FOLDERS))}")

    def notes(self, category: str) -> List[str]:
        _, left_out = self._listing(category)
        if not left_out:
            return []
        shown = ", ".join(left_out[:3]) + (", ..." if len(left_out) > 3 else "")
        return [f"{category}: {len(left_out)} images below test/defect/label folders were not read ({shown})"]

    def test_images(self, category: str) -> List[SourceImage]:
        """Always empty: a plain folder has no labelled test images."""
        self.check_category(category)
        return []
