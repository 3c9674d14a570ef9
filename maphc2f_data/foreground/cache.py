"""On-disk cache of foreground masks, keyed by image content and method.

A source image's foreground is computed once and reused by every later build
and every defect type. Layout (the builder uses ``<out>/.cache/foreground``)::

    <directory>/<method>/<hh>/<sha256>.png     PNG, 8-bit, 0 or 255

``sha256`` hashes the image's shape, dtype and bytes, so the same pixels hit
whatever file or source they came from, and a resized image misses. Writes go
to a temporary file in the same folder and are moved into place with
``os.replace`` (atomic), so parallel workers and interrupted builds never
leave a half-written mask; a file that does not decode to a 0/255 mask of the
right size is treated as a miss and overwritten by the next ``put``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

# Method names become one directory level: letters, digits, '.', '_', '-'.
_METHOD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def image_key(image: np.ndarray) -> str:
    """Hex sha256 of an image's shape, dtype and bytes.

    Parameters
    ----------
    image : ndarray
        Any array (normally uint8 (H, W, 3)).

    Returns
    -------
    str
        64 hex digits.
    """
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256()
    digest.update(f"{image.dtype.str}|{','.join(map(str, image.shape))}|".encode())
    digest.update(image.data)
    return digest.hexdigest()


def _check_method(method: str) -> str:
    if not isinstance(method, str) or not _METHOD.match(method):
        raise ValueError(f"cache method must match {_METHOD.pattern!r}, got {method!r}")
    return method


class ForegroundCache:
    """Foreground masks stored as PNG files under ``directory``.

    Parameters
    ----------
    directory : str or Path
        Cache root; created on the first ``put``. Nothing is written outside it.

    Examples
    --------
    >>> import tempfile
    >>> cache = ForegroundCache(tempfile.mkdtemp())
    >>> image = np.zeros((8, 8, 3), np.uint8)
    >>> cache.get(image, "classical") is None
    True
    >>> _ = cache.put(image, "classical", np.eye(8, dtype=bool))
    >>> bool((cache.get(image, "classical") == np.eye(8, dtype=bool)).all())
    True
    """

    def __init__(self, directory: Union[str, Path]):
        self.directory = Path(directory).expanduser().resolve()

    def path(self, image: np.ndarray, method: str) -> Path:
        """Where the mask of ``image`` made by ``method`` is (or would be) stored."""
        key = image_key(image)
        return self.directory / _check_method(method) / key[:2] / f"{key}.png"

    def get(self, image: np.ndarray, method: str) -> Optional[np.ndarray]:
        """The cached mask, bool (H, W), or None on a miss (absent or corrupt file)."""
        path = self.path(image, method)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
        if (
            decoded is None
            or decoded.dtype != np.uint8
            or decoded.shape != tuple(np.shape(image)[:2])
            or not np.isin(decoded, (0, 255)).all()
        ):
            return None
        return decoded == 255

    def put(self, image: np.ndarray, method: str, mask: np.ndarray) -> Path:
        """Store ``mask`` (bool (H, W), the size of ``image``) atomically; returns its path."""
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        if mask.shape != tuple(np.shape(image)[:2]):
            raise ValueError(f"mask shape {mask.shape} does not match image shape {np.shape(image)[:2]}")
        path = self.path(image, method)
        ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * np.uint8(255))
        if not ok:  # pragma: no cover - encoding a uint8 array cannot fail
            raise RuntimeError(f"could not encode a foreground mask for {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(encoded.tobytes())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp_name, path)
        except BaseException:
            try:
                os.unlink(temp_name)
            except FileNotFoundError:
                pass
            raise
        return path
