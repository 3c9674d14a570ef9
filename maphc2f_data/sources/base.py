"""The one small interface every image source implements.

A source lists categories, the normal *training* images of a category (the only
images the dataset is ever built from) and the test images with their
ground-truth masks (for evaluation). Paths are POSIX strings relative to the
source root, so they are stable across machines and safe to publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Type

import numpy as np

from maphc2f_data.errors import CorruptImageError, SourceLayoutError, UserError


@dataclass(frozen=True)
class SourceImage:
    """One image of a source.

    Attributes
    ----------
    source : str
        Source name ("mvtec", "visa", "btad", "folder", "demo").
    category : str
        Category name as the source spells it ("bottle", "01", ...).
    path : str
        POSIX path relative to the source root (for the demo: a virtual path).
    split : str
        "train" or "test".
    defect : str
        "good" for normal images, else the source's defect name.
    mask_path : str or None
        Ground-truth mask path relative to the root (defective test images).
    """

    source: str
    category: str
    path: str
    split: str = "train"
    defect: str = "good"
    mask_path: Optional[str] = None


class Source:
    """Base class of image sources.

    Subclasses set :attr:`name`, :attr:`license` and :attr:`texture_categories`
    and implement :meth:`categories`, :meth:`train_images` and
    :meth:`test_images`. Image loading is shared: :meth:`load_image` returns
    8-bit RGB whatever the file holds.
    """

    name: str = ""
    #: SPDX-style licence of the source images (derived images inherit it).
    license: str = "unknown"
    #: Human-readable name and citation hint for dataset cards.
    pretty_name: str = ""
    #: Categories whose whole image is foreground (textures).
    texture_categories: frozenset = frozenset()
    #: Category names the source defines (the reference for validation);
    #: empty means "whatever :meth:`categories` finds" (folder, demo).
    known_categories: Tuple[str, ...] = ()
    #: Whether the source reads a dataset root (False: built-in demo).
    needs_root: bool = False
    #: One-line description of the expected layout, for error messages.
    expected_layout: str = ""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root).expanduser().resolve() if root is not None else None

    # -- listing ---------------------------------------------------------
    def categories(self) -> List[str]:
        """Category names, sorted."""
        raise NotImplementedError

    def train_images(self, category: str) -> List[SourceImage]:
        """Normal training images of ``category``, sorted by path."""
        raise NotImplementedError

    def test_images(self, category: str) -> List[SourceImage]:
        """Test images (normal and defective) of ``category``, sorted by path."""
        raise NotImplementedError

    def images_read(self, category: str) -> str:
        """What :meth:`train_images` reads for ``category``, in words for the card
        (``<category>`` stands for the category's folder, so categories read
        alike share one sentence)."""
        return "normal training images"

    def notes(self, category: str) -> List[str]:
        """Things a build of ``category`` should tell the user (e.g. images left out)."""
        return []

    def check_root(self) -> Path:
        """The root, which must be an existing directory.

        Raises
        ------
        SourceLayoutError
            No root was given, or it is missing or not a directory.
        """
        if self.root is None:
            raise SourceLayoutError(
                f"source {self.name!r} needs a dataset root (--root); expected layout: {self.expected_layout}"
            )
        if not self.root.exists():
            raise SourceLayoutError(f"{self.name} dataset root not found: {self.root}")
        if not self.root.is_dir():
            raise SourceLayoutError(f"{self.name} dataset root is not a directory: {self.root}")
        return self.root

    def layout_error(self, problem: str) -> SourceLayoutError:
        """A one-line layout error: ``problem`` plus the expected layout."""
        return SourceLayoutError(f"{problem}; expected {self.name} layout: {self.expected_layout}")

    def check_category(self, category: str) -> str:
        """``category`` if this source has it, else a one-line UserError.

        Raises
        ------
        UserError
            ``category`` is not a valid name (the message lists them).
        SourceLayoutError
            A valid name whose folder is missing under the root.
        """
        present = self.categories()
        if category in present:
            return category
        if category in self.known_categories:
            raise SourceLayoutError(
                f"{self.name} category {category!r} not found under {self.root}; "
                f"present: {', '.join(present) or 'none'}"
            )
        valid = self.known_categories or tuple(present)
        where = f" under {self.root}" if not self.known_categories else ""
        raise UserError(f"unknown {self.name} category {category!r}{where}; valid: {', '.join(valid)}")

    def check_categories(self, names: Optional[Iterable[str]] = None) -> List[str]:
        """Validated, de-duplicated, sorted category names.

        Parameters
        ----------
        names : iterable of str, optional
            Requested categories; None (default) means every present one.

        Returns
        -------
        list of str
            Sorted names, each checked with :meth:`check_category`.
        """
        if names is None:
            return list(self.categories())
        return sorted({self.check_category(name) for name in names})

    def is_texture(self, category: str) -> bool:
        """Whether the whole image of ``category`` counts as foreground."""
        return category in self.texture_categories

    # -- loading ---------------------------------------------------------
    def resolve(self, relpath: str) -> Path:
        """Absolute path of ``relpath`` inside the root; refuses to leave it."""
        from maphc2f_data.sources.imageio import safe_join

        return safe_join(self.root, relpath)

    def load_image(self, item: SourceImage) -> np.ndarray:
        """The image as uint8 RGB, shape (H, W, 3)."""
        from maphc2f_data.sources.imageio import read_rgb

        return read_rgb(self.resolve(item.path))

    def load_mask(self, item: SourceImage) -> Optional[np.ndarray]:
        """Ground-truth defect mask, bool (H, W), or None for normal images."""
        if item.mask_path is None:
            return None
        from maphc2f_data.sources.imageio import read_mask

        return read_mask(self.resolve(item.mask_path))

    def load_pair(self, item: SourceImage) -> Tuple[np.ndarray, np.ndarray]:
        """A test image and its ground truth, checked to have the same size.

        Returns
        -------
        image : ndarray of uint8, shape (H, W, 3)
        mask : ndarray of bool, shape (H, W)
            All False for normal images (no mask file).

        Raises
        ------
        CorruptImageError
            Either file cannot be decoded, or the mask's size differs from
            the image's (the message names both paths).
        """
        image = self.load_image(item)
        mask = self.load_mask(item)
        if mask is None:
            return image, np.zeros(image.shape[:2], dtype=bool)
        if mask.shape != image.shape[:2]:
            image_path = self.resolve(item.path) if self.root is not None else item.path
            mask_path = self.resolve(item.mask_path) if self.root is not None else item.mask_path
            raise CorruptImageError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path} is {image.shape[1]}x{image.shape[0]}"
            )
        return image, mask

    def known_foreground(self, item: SourceImage) -> Optional[np.ndarray]:
        """An exact foreground mask when the source knows it (rendered demo
        objects), else None and the foreground extractor decides."""
        return None


#: Registry of source classes by name; filled by ``register_source``.
SOURCES: Dict[str, Type[Source]] = {}


def register_source(cls: Type[Source]) -> Type[Source]:
    """Class decorator adding a source to :data:`SOURCES`."""
    SOURCES[cls.name] = cls
    return cls
