"""The demo source: :class:`DemoSource` and :func:`render_demo_image`.

Like MVTec AD, every category has a ``train`` split (normal images only; the
dataset is built from these) and a ``test`` split of normal and defective
images with ground-truth masks. A test image is a normal image from
:mod:`.scenes` with a defect from :mod:`.defects`, each drawn from a fixed
per-image seed. Rendering costs a few milliseconds per image.

The constants users rely on (:data:`CATEGORIES`, :data:`DEFECTS`, the image
counts, ...) live in :mod:`.constants` and are re-exported here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from maphc2f_data.errors import UserError
from maphc2f_data.sources.base import Source, SourceImage, register_source
from maphc2f_data.sources.demo.constants import (
    CATEGORIES,
    DEFECTS,
    IMAGE_SIZE,
    PHOTO_CATEGORIES,
    RENDERED_CATEGORIES,
    TEST_GOOD_PER_CATEGORY,
    TEST_PER_DEFECT,
    TEXTURE_CATEGORIES,
    TRAIN_PER_CATEGORY,
)
from maphc2f_data.sources.demo.defects import _DEFECT_MAKERS, _DEFECT_TRIES, _MIN_DEFECT_PIXELS
from maphc2f_data.sources.demo.paths import (
    _check_category,
    _check_image_key,
    image_path,
    mask_path,
    parse_image_path,
    parse_mask_path,
)
from maphc2f_data.sources.demo.scenes import _category_index, _render_normal

# Variant numbers (second seed word) of test images, far from the train ones (train image i is variant i).
_TEST_GOOD_VARIANT = 100
#: Most train images per category (``DemoSource(train_count=...)``): train variants stay below the test ones.
MAX_TRAIN_PER_CATEGORY = _TEST_GOOD_VARIANT
_TEST_DEFECT_VARIANT = 200
_EXTRA_NORMAL_VARIANT = 1000
# The validation split: defects at 3000 + 100 * kind + index, normals at 5000 + index.
_VALIDATION_DEFECT_VARIANT = 3000
_VALIDATION_NORMAL_VARIANT = 5000
_VALIDATION_MAX_PER_KIND = 100
# Extra held-out test defects (benchmarks): 7000 + 100 * kind + index.
_HELD_OUT_DEFECT_VARIANT = 7000


@dataclass(frozen=True)
class DemoImage:
    """One rendered demo image (arrays are read-only; copy before editing).

    Attributes
    ----------
    image : ndarray of uint8, shape (512, 512, 3)
        RGB image.
    clean : ndarray of uint8, shape (512, 512, 3)
        The same image before the defect was applied (``image`` for normals).
    foreground : ndarray of bool, shape (512, 512), or None
        Exact object mask of rendered categories (a missing piece is removed
        from it); None for photographs.
    defect_mask : ndarray of bool, shape (512, 512), or None
        Ground-truth defect mask; None for normal images.
    """

    image: np.ndarray
    clean: np.ndarray
    foreground: Optional[np.ndarray]
    defect_mask: Optional[np.ndarray]


def _variant(split: str, defect: str, index: int) -> int:
    """Second seed word of an image: the train index, or a test-only number."""
    if split == "train":
        return index
    if defect == "good":
        return _TEST_GOOD_VARIANT + index
    return _TEST_DEFECT_VARIANT + 10 * DEFECTS.index(defect) + index


@functools.lru_cache(maxsize=16)
def render_demo_image(category: str, split: str, defect: str, index: int,
                      train_count: int = TRAIN_PER_CATEGORY) -> DemoImage:
    """Render one demo image (deterministic; cached; arrays read-only).

    Parameters
    ----------
    category : str
        One of :data:`CATEGORIES`.
    split : {"train", "test"}
    defect : str
        ``"good"`` or, in the test split, one of :data:`DEFECTS`.
    index : int
        Image number within (category, split, defect).
    train_count : int
        Train images per category (``DemoSource(train_count=...)``).

    Returns
    -------
    DemoImage

    Raises
    ------
    UserError
        The key names no demo image.
    """
    _check_image_key(category, split, defect, index, path=image_path(category, split, defect, index),
                     train_count=train_count)
    return _render_with_defect(category, _variant(split, defect, index), defect)


def _render_with_defect(category: str, variant: int, defect: str) -> DemoImage:
    """The normal render ``variant`` of ``category`` with a ``defect`` (or ``"good"``) seeded by it."""
    clean, foreground, backdrop = _render_normal(category, variant)
    if defect == "good":
        return DemoImage(image=clean, clean=clean, foreground=foreground, defect_mask=None)
    rng = np.random.default_rng([_category_index(category), variant, 1])
    maker = _DEFECT_MAKERS[defect]
    for _ in range(_DEFECT_TRIES):
        image, mask, defect_foreground = maker(clean, foreground, backdrop, category, rng)
        if int(mask.sum()) >= _MIN_DEFECT_PIXELS:
            break
    else:  # pragma: no cover - every maker centres its defect on the object
        raise RuntimeError(f"could not place a {defect} defect on {category} render {variant}")
    for array in (image, mask, defect_foreground):
        if array is not None:
            array.setflags(write=False)
    return DemoImage(image=image, clean=clean, foreground=defect_foreground, defect_mask=mask)


def held_out_normals(category: str, count: int) -> List[np.ndarray]:
    """``count`` extra defect-free renders of ``category``, in neither split (for image-level metrics).

    The test split holds :data:`TEST_GOOD_PER_CATEGORY` normals per category,
    too few for an image AUROC that separates detectors (2 normals against 10
    defects is 20 pairs); benchmarks add these. Their seeds (variant 1000 +
    ``index``) are disjoint from every train and test image's.

    Returns
    -------
    list of ndarray of uint8, shape (512, 512, 3)
    """
    _check_category(category)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [_render_normal(category, _EXTRA_NORMAL_VARIANT + index)[0].copy() for index in range(count)]


def held_out_defects(category: str, per_defect: int) -> List[Tuple[str, DemoImage]]:
    """``per_defect`` extra test defects of each kind for ``category``, in neither split.

    The test split holds :data:`TEST_PER_DEFECT` defects of each kind per
    category, so a per-kind image AUROC rests on two images. Benchmarks that
    want more add these (and :func:`held_out_normals`): the test split's
    defect processes on renders whose seeds (variants 7000-7499) no train,
    test, validation or held-out-normal image uses.

    Parameters
    ----------
    category : str
    per_defect : int
        Defective images per defect kind (at most 100).

    Returns
    -------
    list of (str, DemoImage)
        ``(defect, image)`` per kind in :data:`DEFECTS` order.
    """
    _check_category(category)
    if not 0 <= per_defect <= _VALIDATION_MAX_PER_KIND:
        raise ValueError(f"per_defect must be in [0, {_VALIDATION_MAX_PER_KIND}], got {per_defect}")
    return [(defect, _render_with_defect(category, _HELD_OUT_DEFECT_VARIANT + _VALIDATION_MAX_PER_KIND * kind_index
                                         + index, defect))
            for kind_index, defect in enumerate(DEFECTS) for index in range(per_defect)]


def validation_split(category: str, per_defect: int = 4, normals: int = 10) -> List[Tuple[str, DemoImage]]:
    """A validation split of ``category``: the test split's defect processes on other renders.

    The held-out defects (:data:`DEFECTS`) stand in for real defects in the
    demo's test split; tuning anything on that split would overfit it. This
    split draws the same defect processes on renders whose seeds (variants
    3000-3499 for defects, 5000 on for normals) are disjoint from every
    train, test, :func:`held_out_normals` and :func:`held_out_defects`
    image, so settings can be chosen here and the test split used once.

    Parameters
    ----------
    category : str
    per_defect : int
        Defective images per defect kind (at most 100).
    normals : int
        Defect-free images.

    Returns
    -------
    list of (str, DemoImage)
        ``("good", image)`` for the normals first, then ``(defect, image)``
        per kind in :data:`DEFECTS` order.
    """
    _check_category(category)
    if not 0 <= per_defect <= _VALIDATION_MAX_PER_KIND:
        raise ValueError(f"per_defect must be in [0, {_VALIDATION_MAX_PER_KIND}], got {per_defect}")
    if normals < 0:
        raise ValueError(f"normals must be >= 0, got {normals}")
    split = [("good", _render_with_defect(category, _VALIDATION_NORMAL_VARIANT + index, "good"))
             for index in range(normals)]
    for kind_index, defect in enumerate(DEFECTS):
        for index in range(per_defect):
            variant = _VALIDATION_DEFECT_VARIANT + _VALIDATION_MAX_PER_KIND * kind_index + index
            split.append((defect, _render_with_defect(category, variant, defect)))
    return split


def _copy(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if array is None else array.copy()


@register_source
class DemoSource(Source):
    """Built-in images that need no download (scikit-image photos + rendered objects).

    Parameters
    ----------
    root : path, optional
        Ignored: the demo has no files (accepted so every source is built the
        same way).
    train_count : int
        Normal training images per category (default
        :data:`TRAIN_PER_CATEGORY`, 8, which builds and tests use; at most
        :data:`MAX_TRAIN_PER_CATEGORY`). Real sources have 60-1000; the
        transfer benchmark takes more to train detectors on a realistic
        number of normals. Train image ``i`` is the same render for every
        ``train_count``.

    Examples
    --------
    >>> source = DemoSource()
    >>> item = source.train_images("nut")[0]
    >>> item.path
    'nut/train/good/000.png'
    >>> source.load_image(item).shape
    (512, 512, 3)
    """

    name = "demo"
    license = (
        "CC0-1.0 (scikit-image photos brick, grass, gravel, coffee; rendered objects) / "
        "no known copyright restrictions (coins, Brooklyn Museum)"
    )
    pretty_name = "MaPhC2F demo source"
    texture_categories = TEXTURE_CATEGORIES

    def __init__(self, root: Optional[Path] = None, train_count: int = TRAIN_PER_CATEGORY):
        super().__init__(None)
        if not 1 <= int(train_count) <= MAX_TRAIN_PER_CATEGORY:
            raise UserError(f"train_count must be in [1, {MAX_TRAIN_PER_CATEGORY}], got {train_count}")
        self.train_count = int(train_count)

    def categories(self) -> List[str]:
        return list(CATEGORIES)

    def train_images(self, category: str) -> List[SourceImage]:
        _check_category(category)
        return [
            SourceImage(source=self.name, category=category, path=image_path(category, "train", "good", i))
            for i in range(self.train_count)
        ]

    def test_images(self, category: str) -> List[SourceImage]:
        _check_category(category)
        items = [
            SourceImage(source=self.name, category=category, path=image_path(category, "test", "good", i), split="test")
            for i in range(TEST_GOOD_PER_CATEGORY)
        ]
        for defect in DEFECTS:
            for i in range(TEST_PER_DEFECT):
                items.append(
                    SourceImage(
                        source=self.name,
                        category=category,
                        path=image_path(category, "test", defect, i),
                        split="test",
                        defect=defect,
                        mask_path=mask_path(category, defect, i),
                    )
                )
        return sorted(items, key=lambda item: item.path)

    def resolve(self, relpath: str) -> Path:
        raise UserError(f"the demo source has no files on disk (asked for {relpath!r}); use load_image/load_mask")

    def load_image(self, item: SourceImage) -> np.ndarray:
        return render_demo_image(*parse_image_path(item.path, self.train_count), self.train_count).image.copy()

    def load_mask(self, item: SourceImage) -> Optional[np.ndarray]:
        if item.mask_path is None:
            return None
        category, defect, index = parse_mask_path(item.mask_path)
        return _copy(render_demo_image(category, "test", defect, index).defect_mask)

    def known_foreground(self, item: SourceImage) -> Optional[np.ndarray]:
        return _copy(render_demo_image(*parse_image_path(item.path, self.train_count), self.train_count).foreground)


__all__ = [
    "CATEGORIES",
    "DEFECTS",
    "IMAGE_SIZE",
    "MAX_TRAIN_PER_CATEGORY",
    "PHOTO_CATEGORIES",
    "RENDERED_CATEGORIES",
    "TEST_GOOD_PER_CATEGORY",
    "TEST_PER_DEFECT",
    "TEXTURE_CATEGORIES",
    "TRAIN_PER_CATEGORY",
    "DemoImage",
    "DemoSource",
    "held_out_defects",
    "held_out_normals",
    "image_path",
    "mask_path",
    "parse_image_path",
    "parse_mask_path",
    "render_demo_image",
    "validation_split",
]
