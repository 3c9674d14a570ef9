"""Reading source images and masks safely (Pillow + numpy only, no torch).

Three jobs:

* :func:`read_rgb` decodes any image file Pillow can read into 8-bit RGB;
* :func:`read_mask` decodes a ground-truth mask into a boolean defect map;
* :func:`safe_join` / :func:`list_images` keep every path inside a dataset
  root, so a crafted CSV row or symlink can never make us read elsewhere.

Mode conversions of :func:`read_rgb` (pixel data as stored; EXIF orientation
is ignored so images stay aligned with their masks):

==================  ======================================================
mode                conversion
==================  ======================================================
RGB                 unchanged
L, 1                grey replicated to the three channels (1 -> 0 / 255)
LA, RGBA, RGBX, PA  alpha dropped: the stored colour is kept, not composited
P                   palette looked up (via RGBA when it has transparency)
I;16*, I            16-bit: ``v >> 8`` (65535 -> 255); ``I`` clipped to
                    0..65535 first. A fixed shift, not per-image max
                    scaling, so the same value always gives the same grey.
F                   clipped to 0..255 and rounded
CMYK, YCbCr, ...    Pillow's conversion to RGB
==================  ======================================================
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path, PurePosixPath
from typing import List, Union

import numpy as np
from PIL import Image

from maphc2f_data.errors import CorruptImageError, UserError

#: File name endings (lower case) treated as images when listing folders.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_MAX_REASON_CHARS = 200

PathLike = Union[str, "os.PathLike[str]"]


def _one_line(exc: BaseException) -> str:
    """``exc`` as a short single line (decoder messages can be multi-line)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3] + "..."
    return text


def _open_loaded(path: PathLike) -> Image.Image:
    """Open and fully decode ``path`` (Pillow decodes lazily, so a truncated
    file only fails on ``load``); any failure becomes CorruptImageError."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (e.g. DecompressionBombWarning, odd EXIF) on files it
            # can still read; the pixels are what matter, and the test suite
            # turns warnings into errors.
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                # Closing the file also drops the pixels; keep a detached copy.
                return image.copy()
    except Exception as exc:  # noqa: BLE001 - decoders raise many types for bad bytes
        raise CorruptImageError(f"cannot read image {path}: {_one_line(exc)}") from exc


def _rgb_array(image: Image.Image, path: PathLike) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        grey = (np.clip(values, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        # Pillow warns when a palette with transparency goes straight to RGB.
        image = image.convert("RGBA")
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError as exc:
            raise CorruptImageError(
                f"cannot convert image {path} from mode {mode} to RGB: {_one_line(exc)}"
            ) from exc
    return np.array(image, dtype=np.uint8)


def read_rgb(path: PathLike) -> np.ndarray:
    """Decode an image file to 8-bit RGB.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (any format Pillow reads).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A fresh, writeable, C-contiguous array. See the module docstring for
        how grey, alpha, palette and 16-bit images are converted.

    Raises
    ------
    CorruptImageError
        The file is missing, unreadable, truncated or not an image; the
        one-line message names ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp()
    >>> Image.new("L", (4, 2), 7).save(os.path.join(d, "g.png"))
    >>> rgb = read_rgb(os.path.join(d, "g.png"))
    >>> rgb.shape, rgb.dtype, int(rgb[0, 0, 2])
    ((2, 4, 3), dtype('uint8'), 7)
    """
    image = _open_loaded(path)
    rgb = _rgb_array(image, path)
    return np.ascontiguousarray(rgb)


def read_mask(path: PathLike) -> np.ndarray:
    """Decode a ground-truth mask: any non-zero value is defect.

    Single-band masks are compared as stored (so VisA's class-id masks, which
    look black, and palette masks, by palette index, both work); for colour
    masks a pixel is defect when any colour channel is non-zero (alpha is
    ignored).

    Parameters
    ----------
    path : str or os.PathLike
        Mask file.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    CorruptImageError
        The file cannot be decoded; the message names ``path``.
    """
    image = _open_loaded(path)
    if image.mode in ("LA", "PA"):
        image = image.getchannel(0)
    if len(image.getbands()) == 1:
        # "1", "L", "P" (indices), "I;16", "I", "F": values as stored.
        return np.asarray(image) != 0
    if image.mode != "RGB":  # RGBA, CMYK, YCbCr, ...: alpha is not a defect
        try:
            image = image.convert("RGB")
        except ValueError as exc:
            raise CorruptImageError(
                f"cannot convert mask {path} from mode {image.mode}: {_one_line(exc)}"
            ) from exc
    return np.any(np.asarray(image) != 0, axis=2)


def check_relative(relpath: str, root: PathLike) -> str:
    """Normalise a root-relative POSIX path, refusing escapes lexically.

    Cheap (no file-system access), so listings can check thousands of CSV
    rows; :func:`safe_join` adds the symlink check when a file is opened.

    Parameters
    ----------
    relpath : str
        Path relative to ``root`` (as written in a CSV, for example).
    root : str or os.PathLike
        The dataset root, only named in the error message.

    Returns
    -------
    str
        The normalised POSIX path (no ``.`` parts, no trailing slash).

    Raises
    ------
    UserError
        ``relpath`` is empty, absolute, contains a NUL byte or a ``..`` part.
    """
    text = str(relpath).strip()
    if not text or "\x00" in text:
        raise UserError(f"refusing empty or invalid path {text!r} under {root}")
    posix = PurePosixPath(text)
    if posix.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise UserError(f"refusing absolute path {text!r}: paths must be relative to {root}")
    if ".." in posix.parts:
        raise UserError(f"refusing path {text!r}: '..' would leave the dataset root {root}")
    return posix.as_posix()


def safe_join(root: PathLike, relpath: PathLike) -> Path:
    """``root / relpath``, guaranteed to stay inside ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset root.
    relpath : str or os.PathLike
        POSIX path relative to ``root``.

    Returns
    -------
    pathlib.Path
        The absolute path under the resolved root.

    Raises
    ------
    UserError
        ``relpath`` is absolute, has a ``..`` part, or resolves (through a
        symlink) outside ``root``; the message names the path and the root.
    ValueError
        ``root`` is None (a programming error: rootless sources load their
        own images).
    """
    if root is None:
        raise ValueError("safe_join needs a root directory, got None")
    root_path = Path(root).resolve()
    rel = check_relative(os.fspath(relpath), root_path)
    joined = root_path / rel
    resolved = joined.resolve()
    if resolved != root_path and root_path not in resolved.parents:
        raise UserError(f"refusing path {rel!r}: it resolves to {resolved}, outside the dataset root {root_path}")
    return joined


def is_image_name(name: str) -> bool:
    """Whether ``name`` is a visible file name with an image extension."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(root: PathLike, directory: PathLike, *, recursive: bool = False) -> List[str]:
    """Image files in ``directory`` as sorted POSIX paths relative to ``root``.

    Hidden entries (names starting with ``.``, such as macOS ``._x.png``
    resource forks) are not images and are left out; symlinked directories
    are not descended into. Nothing is decoded.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset root; ``directory`` must lie inside it.
    directory : str or os.PathLike
        Folder to list.
    recursive : bool, optional
        Also list sub-folders (default False).

    Returns
    -------
    list of str
        Sorted root-relative POSIX paths.

    Raises
    ------
    UserError
        A listed file is a symlink that resolves outside ``root``.
    """
    root_path = Path(root)
    found: List[str] = []
    pending = [Path(directory)]
    while pending:
        current = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        pending.append(Path(entry.path))
                    continue
                if not is_image_name(entry.name):
                    continue
                rel = Path(entry.path).relative_to(root_path).as_posix()
                if entry.is_symlink():
                    safe_join(root_path, rel)  # raises if it escapes the root
                found.append(rel)
    found.sort()
    return found
