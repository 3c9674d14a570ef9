"""PNG bytes for the dataset's Image columns, via OpenCV (deterministic, fast).

OpenCV's encoder writes no timestamps or text chunks, so the same pixels and
compression level always give the same bytes; that is what makes shards
byte-identical between runs.
"""

from __future__ import annotations

import cv2
import numpy as np

from maphc2f_data.dataset.config import DEFAULT_PNG_COMPRESSION, DEFAULT_PNG_FILTER
from maphc2f_data.errors import CorruptImageError

#: PNG row filters by name (libpng's filter flags via OpenCV). "adaptive"
#: tries all five per row and keeps the best (libpng's default, slowest);
#: a single filter skips that search.
PNG_FILTERS = {
    "adaptive": cv2.IMWRITE_PNG_ALL_FILTERS,
    "fast": cv2.IMWRITE_PNG_FAST_FILTERS,
    "none": cv2.IMWRITE_PNG_FILTER_NONE,
    "sub": cv2.IMWRITE_PNG_FILTER_SUB,
    "up": cv2.IMWRITE_PNG_FILTER_UP,
    "avg": cv2.IMWRITE_PNG_FILTER_AVG,
    "paeth": cv2.IMWRITE_PNG_FILTER_PAETH,
}


def encode_png(array: np.ndarray, compression: int = DEFAULT_PNG_COMPRESSION,
               png_filter: str = DEFAULT_PNG_FILTER) -> bytes:
    """Encode an RGB image or a single-channel mask as PNG bytes.

    Parameters
    ----------
    array : ndarray
        ``(H, W, 3)`` uint8 RGB image, ``(H, W)`` uint8 grayscale image, or
        ``(H, W)`` bool mask (stored as 0/255).
    compression : int, optional
        zlib level 0-9 (``cv2.IMWRITE_PNG_COMPRESSION``); see
        :data:`~maphc2f_data.dataset.config.DEFAULT_PNG_COMPRESSION`.
    png_filter : str, optional
        Row filter, a key of :data:`PNG_FILTERS`; see
        :data:`~maphc2f_data.dataset.config.DEFAULT_PNG_FILTER`.

    Returns
    -------
    bytes
        A PNG file: colour type RGB for 3-channel input, L (8-bit gray) otherwise.

    Raises
    ------
    ValueError
        For another dtype, shape, an out-of-range compression level or an
        unknown filter.

    Examples
    --------
    >>> data = encode_png(np.zeros((4, 4), dtype=bool))
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    if not isinstance(compression, (int, np.integer)) or not 0 <= int(compression) <= 9:
        raise ValueError(f"PNG compression must be an int in 0..9, got {compression!r}")
    if png_filter not in PNG_FILTERS:
        raise ValueError(f"PNG filter must be one of {sorted(PNG_FILTERS)}, got {png_filter!r}")
    array = np.asarray(array)
    if array.ndim == 2 and array.dtype == bool:
        pixels = array.astype(np.uint8) * np.uint8(255)
    elif array.ndim == 2 and array.dtype == np.uint8:
        pixels = array
    elif array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        pixels = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR)
    else:
        raise ValueError(
            "encode_png expects (H, W, 3) uint8 RGB, (H, W) uint8 or (H, W) bool, "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(f"encode_png got an empty image of shape {array.shape}")
    ok, buffer = cv2.imencode(
        ".png", np.ascontiguousarray(pixels),
        [cv2.IMWRITE_PNG_COMPRESSION, int(compression), cv2.IMWRITE_PNG_FILTER, PNG_FILTERS[png_filter]],
    )
    if not ok:  # pragma: no cover - OpenCV fails only on invalid input, checked above
        raise ValueError(f"OpenCV could not encode an image of shape {array.shape}")
    return buffer.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`encode_png`.

    Parameters
    ----------
    data : bytes
        An 8-bit PNG file (RGB, RGBA, gray or palette).

    Returns
    -------
    ndarray
        ``(H, W, 3)`` uint8 RGB for colour PNGs (alpha dropped), ``(H, W)``
        uint8 for gray ones.

    Raises
    ------
    CorruptImageError
        When the bytes are not a decodable 8-bit PNG.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or not bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        raise CorruptImageError("not PNG data (missing PNG signature)")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise CorruptImageError("PNG data could not be decoded (truncated or corrupt)")
    if decoded.dtype != np.uint8:
        raise CorruptImageError(f"PNG has {decoded.dtype} samples, expected 8-bit")
    if decoded.ndim == 2:
        return decoded
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
