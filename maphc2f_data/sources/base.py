"""The one small interface every image source implements.

A source lists categories, the normal *training* images of a category (the only
images the dataset is ever built from) and the test images with their
ground-truth masks (for evaluation). Paths are POSIX strings relative to the
source root, so they are stable across machines and safe to publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Type

import numpy as np


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
