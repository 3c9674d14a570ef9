"""Virtual paths of demo images and masks: naming, parsing and validation.

Nothing is stored on disk: an item's virtual path (``nut/train/good/003.png``,
``nut/test/dent/001.png``, ``nut/ground_truth/dent/001_mask.png``) is parsed
and the image rendered from a fixed per-image seed, so the same path always
gives byte-identical pixels.
"""

from __future__ import annotations

import re
from typing import Tuple

from maphc2f_data.errors import UserError
from maphc2f_data.sources.demo.constants import (
    CATEGORIES,
    DEFECTS,
    TEST_GOOD_PER_CATEGORY,
    TEST_PER_DEFECT,
    TRAIN_PER_CATEGORY,
)

_IMAGE_PATH = re.compile(r"^(?P<category>[a-z_]+)/(?P<split>train|test)/(?P<defect>[a-z_]+)/(?P<index>\d{3})\.png$")
_MASK_PATH = re.compile(r"^(?P<category>[a-z_]+)/ground_truth/(?P<defect>[a-z_]+)/(?P<index>\d{3})_mask\.png$")


def image_path(category: str, split: str, defect: str, index: int) -> str:
    """Virtual POSIX path of a demo image, e.g. ``"nut/test/dent/001.png"``."""
    return f"{category}/{split}/{defect}/{index:03d}.png"


def mask_path(category: str, defect: str, index: int) -> str:
    """Virtual POSIX path of a ground-truth mask, e.g. ``"nut/ground_truth/dent/001_mask.png"``."""
    return f"{category}/ground_truth/{defect}/{index:03d}_mask.png"


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise UserError(f"unknown demo category {category!r}; choose from {', '.join(CATEGORIES)}")


def _check_image_key(category: str, split: str, defect: str, index: int, path: str,
                     train_count: int = TRAIN_PER_CATEGORY) -> None:
    """Raise UserError unless (category, split, defect, index) names a demo image (``train_count`` train
    images per category: ``DemoSource(train_count=...)``)."""
    _check_category(category)
    if split == "train":
        valid = defect == "good" and index < train_count
    elif defect == "good":
        valid = index < TEST_GOOD_PER_CATEGORY
    else:
        valid = defect in DEFECTS and index < TEST_PER_DEFECT
    if not valid:
        raise UserError(
            f"no demo image {path!r}: train has good/000-{train_count - 1:03d}, test has "
            f"good/000-{TEST_GOOD_PER_CATEGORY - 1:03d} and {{{','.join(DEFECTS)}}}/000-{TEST_PER_DEFECT - 1:03d}"
        )


def parse_image_path(path: str, train_count: int = TRAIN_PER_CATEGORY) -> Tuple[str, str, str, int]:
    """(category, split, defect, index) of a demo image path; UserError if unknown."""
    match = _IMAGE_PATH.match(str(path))
    if match is None:
        raise UserError(f"not a demo image path: {path!r} (expected <category>/<train|test>/<defect>/NNN.png)")
    key = (match["category"], match["split"], match["defect"], int(match["index"]))
    _check_image_key(*key, path=str(path), train_count=train_count)
    return key


def parse_mask_path(path: str) -> Tuple[str, str, int]:
    """(category, defect, index) of a demo ground-truth mask path; UserError if unknown."""
    match = _MASK_PATH.match(str(path))
    if match is None or match["defect"] == "good":
        raise UserError(f"not a demo mask path: {path!r} (expected <category>/ground_truth/<defect>/NNN_mask.png)")
    key = (match["category"], match["defect"], int(match["index"]))
    _check_image_key(key[0], "test", key[1], key[2], path=str(path))
    return key
