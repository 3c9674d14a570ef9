"""VisA reader: the layout as downloaded, or the common "prepared" one.

As downloaded (``VisA_20220922.tar``)::

    <root>/split_csv/1cls.csv                 object,split,label,image,mask
    <root>/<category>/Data/Images/{Normal,Anomaly}/*.JPG
    <root>/<category>/Data/Masks/Anomaly/*.png
    <root>/<category>/image_anno.csv          image,label,mask (defect names)

``1cls.csv`` (paths relative to the root) decides train and test: 8,659
normal training images in all. Its paths are checked like any other: no
absolute paths, no ``..``, no symlinks out of the root. Masks hold class ids
(they look black); any non-zero value is defect (see ``read_mask``). Defect
names come from the category's ``image_anno.csv`` when it is there, else
"bad".

Prepared (MVTec-like, e.g. ``VisA_pytorch``)::

    <root>/<category>/train/good/*, <root>/<category>/test/{good,bad}/*,
    <root>/<category>/ground_truth/bad/<stem>.png   (or <stem>_mask.png)
"""

from __future__ import annotations

import csv
from typing import Dict, List, Optional, Tuple

from maphc2f_data.errors import SourceLayoutError, UserError
from maphc2f_data.sources.base import Source, SourceImage, register_source
from maphc2f_data.sources.imageio import check_relative
from maphc2f_data.sources.mvtec import list_test_folders, list_train_folder, present_categories

VISA_CATEGORIES: Tuple[str, ...] = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
    "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)
#: The one-class split file, relative to the root.
SPLIT_CSV = "split_csv/1cls.csv"
SPLIT_COLUMNS = ("object", "split", "label", "image", "mask")
#: Defect name of anomalous images when ``image_anno.csv`` gives none.
DEFAULT_DEFECT = "bad"


@register_source
class VisASource(Source):
    """VisA, Visual Anomaly dataset (Zou et al., ECCV 2022), 12 categories."""

    name = "visa"
    license = "CC BY 4.0"
    pretty_name = "VisA (Zou et al., ECCV 2022)"
    texture_categories = frozenset()
    known_categories = VISA_CATEGORIES
    needs_root = True
    expected_layout = (
        "<root>/split_csv/1cls.csv (object,split,label,image,mask) with "
        "<root>/<category>/Data/{Images/Normal,Images/Anomaly,Masks/Anomaly}/*, "
        "or prepared <root>/<category>/{train/good,test/good,test/bad,ground_truth/bad}/*"
    )

    def __init__(self, root=None):
        super().__init__(root)
        root = self.check_root()
        self.split_csv = root / SPLIT_CSV
        #: "raw" (as downloaded, split by the CSV) or "prepared" (MVTec-like).
        self.layout = "raw" if self.split_csv.is_file() else "prepared"
        self._rows: Dict[str, List[SourceImage]] = {}
        if self.layout == "raw":
            self._rows = self._read_split_csv()
            self._categories = sorted(c for c in self._rows if (root / c).is_dir())
            if not self._categories:
                raise self.layout_error(f"no VisA category of {self.split_csv} has a folder under {root}")
        else:
            if any((root / c / "Data").is_dir() for c in VISA_CATEGORIES):
                raise self.layout_error(f"missing split file {self.split_csv}")
            self._categories = present_categories(self)

    # -- the downloaded layout -------------------------------------------
    def _read_split_csv(self) -> Dict[str, List[SourceImage]]:
        """Rows of ``1cls.csv`` as SourceImages per known category (defect
        names of anomalies filled in later by :meth:`test_images`)."""
        rows: Dict[str, List[SourceImage]] = {}
        with open(self.split_csv, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            if any(column not in header for column in SPLIT_COLUMNS):
                raise self.layout_error(
                    f"{self.split_csv} has header {','.join(header) or '(empty)'}, "
                    f"expected {','.join(SPLIT_COLUMNS)}"
                )
            reader.fieldnames = header
            for line, row in enumerate(reader, start=2):
                item = self._row_item(row, line)
                if item is not None:
                    rows.setdefault(item.category, []).append(item)
        for items in rows.values():
            items.sort(key=lambda item: item.path)
        return rows

    def _row_item(self, row: Dict[str, Optional[str]], line: int) -> Optional[SourceImage]:
        where = f"{self.split_csv} line {line}"
        category, split, label, image, mask = ((row.get(c) or "").strip() for c in SPLIT_COLUMNS)
        if category not in VISA_CATEGORIES:
            return None  # not a VisA object: not part of this source
        if split not in ("train", "test"):
            raise SourceLayoutError(f"{where}: split {split!r} is not 'train' or 'test'")
        if label not in ("normal", "anomaly"):
            raise SourceLayoutError(f"{where}: label {label!r} is not 'normal' or 'anomaly'")
        try:
            image = check_relative(image, self.root)
            if label == "anomaly":
                if not mask:
                    raise SourceLayoutError(f"{where}: anomaly image {image} has no mask")
                mask = check_relative(mask, self.root)
        except SourceLayoutError:
            raise
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from exc
        if label == "normal":
            return SourceImage(self.name, category, image, split, "good")
        return SourceImage(self.name, category, image, split, DEFAULT_DEFECT, mask)

    def _defect_names(self, category: str) -> Dict[str, str]:
        """Image path -> defect label from ``<category>/image_anno.csv``, if any."""
        path = self.root / category / "image_anno.csv"
        if not path.is_file():
            return {}
        names: Dict[str, str] = {}
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                image = (row.get("image") or "").strip()
                label = (row.get("label") or "").strip()
                if image and label and label != "normal":
                    names[image] = label
        return names

    # -- the interface ---------------------------------------------------
    def categories(self) -> List[str]:
        return list(self._categories)

    def train_images(self, category: str) -> List[SourceImage]:
        category = self.check_category(category)
        if self.layout == "prepared":
            return list_train_folder(self, category, "good")
        items = [item for item in self._rows[category] if item.split == "train" and item.defect == "good"]
        if not items:
            raise self.layout_error(f"{self.split_csv} lists no normal training image of {category}")
        return items

    def test_images(self, category: str) -> List[SourceImage]:
        category = self.check_category(category)
        if self.layout == "prepared":
            return list_test_folders(self, category, good="good", mask_suffixes=("", "_mask"))
        names = self._defect_names(category)
        return [
            item if item.mask_path is None else SourceImage(
                item.source, item.category, item.path, item.split,
                names.get(item.path, DEFAULT_DEFECT), item.mask_path)
            for item in self._rows[category] if item.split == "test"
        ]
