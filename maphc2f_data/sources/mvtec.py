"""MVTec AD reader, plus the listing helpers every MVTec-like layout shares.

Layout, exactly as the dataset ships::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/<defect>/*.png              ("good" = normal)
    <root>/<category>/ground_truth/<defect>/<name>_mask.png

The helpers :func:`list_train_folder` and :func:`list_test_folders` also
serve the prepared VisA layout (``bad`` defects, masks named like the image)
and BTAD (``ok``/``ko``, masks with the image's stem and another extension).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Dict, List, Sequence, Tuple

from maphc2f_data.sources.base import Source, SourceImage, register_source
from maphc2f_data.sources.imageio import list_images

MVTEC_CATEGORIES: Tuple[str, ...] = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)
MVTEC_TEXTURES = frozenset({"carpet", "grid", "leather", "tile", "wood"})


def present_categories(source: Source) -> List[str]:
    """Category folders under ``source``'s root, sorted.

    A category is a known one with a folder, or any other visible folder with
    the source's layout (``<name>/train/<good folder>/``): a user's own
    category in an MVTec-layout tree is read like the official ones (only the
    paper's count tables do not list it).

    Raises
    ------
    SourceLayoutError
        The root is missing, or holds no category folder (the message names
        the root, the folders that lack the layout and the expected layout).
    """
    root = source.check_root()
    good = getattr(source, "good_folder", "good")
    folders = _subfolders(root)
    present = sorted(name for name in folders
                     if name in source.known_categories or (root / name / "train" / good).is_dir())
    if present:
        return present
    problem = f"no {source.name} category folder found under {root}"
    if (root / "train").is_dir():
        problem += " (it looks like a single category folder: pass its parent as the root)"
    elif folders:
        shown = ", ".join(folders[:4]) + (", ..." if len(folders) > 4 else "")
        problem += f" (folders {shown} have no train/{good}/ sub-folder)"
    raise source.layout_error(problem)


def _subfolders(directory: Path) -> List[str]:
    """Visible sub-folder names of ``directory``, sorted."""
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_train_folder(source: Source, category: str, folder: str) -> List[SourceImage]:
    """Normal training images in ``<root>/<category>/train/<folder>``.

    Raises
    ------
    SourceLayoutError
        The folder is missing or holds no images.
    """
    directory = source.root / category / "train" / folder
    if not directory.is_dir():
        raise source.layout_error(f"missing training folder {directory}")
    paths = list_images(source.root, directory)
    if not paths:
        raise source.layout_error(f"no images in training folder {directory}")
    return [SourceImage(source.name, category, path, "train", "good") for path in paths]


def _index_masks(source: Source, directory: Path) -> Dict[str, List[str]]:
    """Mask files of ``directory`` grouped by file stem."""
    if not directory.is_dir():
        raise source.layout_error(f"missing ground-truth folder {directory}")
    by_stem: Dict[str, List[str]] = {}
    for path in list_images(source.root, directory):
        by_stem.setdefault(PurePosixPath(path).stem, []).append(path)
    return by_stem


def _pair_mask(source: Source, image: str, masks: Dict[str, List[str]], directory: Path,
               suffixes: Sequence[str]) -> str:
    """The mask of ``image``: ``<stem><suffix>.<any image extension>``, first
    suffix that matches wins; exactly one file may match."""
    stem = PurePosixPath(image).stem
    for suffix in suffixes:
        candidates = masks.get(stem + suffix, [])
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise source.layout_error(f"ambiguous masks for {source.root / image}: {', '.join(candidates)}")
    raise source.layout_error(
        f"no mask for test image {source.root / image} (looked for {directory / (stem + suffixes[0])}.*)"
    )


def list_test_folders(source: Source, category: str, *, good: str, mask_suffixes: Sequence[str]
                      ) -> List[SourceImage]:
    """Test images of ``<root>/<category>/test/<defect>/`` with their masks.

    Parameters
    ----------
    source : Source
        The reader (gives the root and the name for messages).
    category : str
        Category folder name.
    good : str
        Folder name of normal test images ("good", BTAD "ok"); they get
        ``defect="good"`` and no mask.
    mask_suffixes : sequence of str
        Stem suffixes tried in order to pair ``ground_truth/<defect>/`` masks
        ("_mask" for MVTec, "" for BTAD); the extension may differ.

    Returns
    -------
    list of SourceImage
        ``split="test"``, sorted by path.

    Raises
    ------
    SourceLayoutError
        The test or a ground-truth folder is missing, or a defective image
        has no (or an ambiguous) mask.
    """
    test_dir = source.root / category / "test"
    if not test_dir.is_dir():
        raise source.layout_error(f"missing test folder {test_dir}")
    items: List[SourceImage] = []
    for defect in _subfolders(test_dir):
        paths = list_images(source.root, test_dir / defect)
        if defect == good:
            items.extend(SourceImage(source.name, category, p, "test", "good") for p in paths)
            continue
        if not paths:
            continue
        mask_dir = source.root / category / "ground_truth" / defect
        masks = _index_masks(source, mask_dir)
        items.extend(
            SourceImage(source.name, category, p, "test", defect,
                        _pair_mask(source, p, masks, mask_dir, mask_suffixes))
            for p in paths
        )
    items.sort(key=lambda item: item.path)
    return items


class MVTecLikeSource(Source):
    """Shared reader of MVTec-style trees (``train/<good>``, ``test/<defect>``,
    ``ground_truth/<defect>``); subclasses set the normal folder's name and
    the mask suffixes they accept."""

    #: Name of the normal-image folder under ``train/`` and ``test/``.
    good_folder = "good"
    #: Mask file stem suffixes tried in order (``""`` = the image's own stem).
    mask_suffixes: Tuple[str, ...] = ("_mask",)

    def __init__(self, root=None):
        super().__init__(root)
        self._categories = present_categories(self)

    def categories(self) -> List[str]:
        return list(self._categories)

    def train_images(self, category: str) -> List[SourceImage]:
        return list_train_folder(self, self.check_category(category), self.good_folder)

    def images_read(self, category: str) -> str:
        return f"the normal training images in `<category>/train/{self.good_folder}/`"

    def test_images(self, category: str) -> List[SourceImage]:
        return list_test_folders(
            self, self.check_category(category), good=self.good_folder, mask_suffixes=self.mask_suffixes
        )


@register_source
class MVTecSource(MVTecLikeSource):
    """MVTec AD (Bergmann et al., CVPR 2019), 15 categories."""

    name = "mvtec"
    license = "CC BY-NC-SA 4.0"
    pretty_name = "MVTec AD (Bergmann et al., CVPR 2019)"
    texture_categories = MVTEC_TEXTURES
    known_categories = MVTEC_CATEGORIES
    needs_root = True
    expected_layout = (
        "<root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png, "
        "<root>/<category>/ground_truth/<defect>/<name>_mask.png"
    )
