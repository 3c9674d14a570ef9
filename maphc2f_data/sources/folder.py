"""Folder reader: any directory of normal images, searched recursively.

* ``<root>`` holds image files itself: one category, named after the folder,
  made of every image below ``<root>`` (sub-folders included);
* otherwise each visible sub-folder holding at least one image (at any depth)
  is a category named after that sub-folder.

There are no test images and no known textures; the licence is whatever
the folder's own images carry. Hidden files and folders (names starting with
".") are skipped and symlinked folders are not followed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from maphc2f_data.sources.base import Source, SourceImage, register_source
from maphc2f_data.sources.imageio import IMAGE_EXTENSIONS, is_image_name, list_images


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

    def train_images(self, category: str) -> List[SourceImage]:
        folder = self._folders[self.check_category(category)]
        paths = list_images(self.root, folder, recursive=True)
        return [SourceImage(self.name, category, path, "train", "good") for path in paths]

    def test_images(self, category: str) -> List[SourceImage]:
        """Always empty: a plain folder has no labelled test images."""
        self.check_category(category)
        return []
