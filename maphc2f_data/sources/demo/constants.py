"""What the demo holds: image size, categories, image counts and defect kinds.

A leaf module (it imports nothing from the demo package) so that the path,
rendering and source modules can all share these numbers; users import them
from :mod:`maphc2f_data.sources.demo` (or :mod:`.source`).
"""

from __future__ import annotations

from typing import Dict

#: Side of every demo image in pixels.
IMAGE_SIZE = 512
#: Normal training images per category.
TRAIN_PER_CATEGORY = 8
#: Normal ("good") test images per category.
TEST_GOOD_PER_CATEGORY = 2
#: Defective test images per category and defect kind.
TEST_PER_DEFECT = 2
#: Test defect kinds (none of them is a crack, corrosion or deformation).
DEFECTS = ("scratch", "dent", "stain", "missing", "cut_paste")

#: Category -> ``skimage.data`` loader name.
PHOTO_CATEGORIES: Dict[str, str] = {
    "brick": "brick",
    "grass": "grass",
    "gravel": "gravel",
    "coffee": "coffee",
    "coins": "coins",
}
#: Photo categories that are textures (whole image is foreground).
TEXTURE_CATEGORIES = frozenset({"brick", "grass", "gravel"})
#: Procedurally rendered categories (exact foreground known).
RENDERED_CATEGORIES = ("nut", "bottle_cap", "capsule", "pcb")

# The index of a category in this fixed tuple seeds its images; appending a
# category never changes the images of the others.
_CATEGORY_ORDER = ("brick", "grass", "gravel", "coffee", "coins", "nut", "bottle_cap", "capsule", "pcb")
CATEGORIES = tuple(sorted(_CATEGORY_ORDER))
