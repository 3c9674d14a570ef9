"""Size and encode time of PNG compression levels, to choose DEFAULT_PNG_COMPRESSION.

Encodes skimage's astronaut (a natural 512x512 RGB photograph) and a binary
512x512 mask with ``cv2.imencode`` at levels 0-9, and with Pillow's default
PNG writer for reference, and prints one table row per setting.

Usage::

    python scripts/bench_png.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import io
import time

import cv2
import numpy as np
import skimage.data
from PIL import Image

from maphc2f_data.dataset.config import DEFAULT_PNG_COMPRESSION
from maphc2f_data.dataset.png import encode_png


def _best_ms(encode, repeats: int) -> tuple:
    """Smallest wall time in ms over ``repeats`` calls, and the output size."""
    best, size = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(encode())
        best = min(best, time.perf_counter() - start)
    return best * 1000.0, size


def _pillow_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="encodes per setting (best time is kept)")
    args = parser.parse_args(argv)

    image = cv2.resize(skimage.data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:512, :512]
    mask = ((yy - 256) ** 2 / 90.0**2 + (xx - 300) ** 2 / 40.0**2) < 1.0

    print(f"opencv {cv2.__version__}; image 512x512 RGB (astronaut), mask 512x512 binary ellipse")
    print(f"{'setting':<22}{'RGB bytes':>12}{'RGB ms':>9}{'mask bytes':>12}{'mask ms':>9}")
    for level in range(10):
        rgb_ms, rgb_size = _best_ms(lambda: encode_png(image, level), args.repeats)
        mask_ms, mask_size = _best_ms(lambda: encode_png(mask, level), args.repeats)
        marker = "  <- default" if level == DEFAULT_PNG_COMPRESSION else ""
        print(f"{'cv2 level ' + str(level):<22}{rgb_size:>12,}{rgb_ms:>9.1f}{mask_size:>12,}{mask_ms:>9.1f}{marker}")
    mask_l = mask.astype(np.uint8) * 255
    rgb_ms, rgb_size = _best_ms(lambda: _pillow_png(image), args.repeats)
    mask_ms, mask_size = _best_ms(lambda: _pillow_png(mask_l), args.repeats)
    print(f"{'Pillow default':<22}{rgb_size:>12,}{rgb_ms:>9.1f}{mask_size:>12,}{mask_ms:>9.1f}")


if __name__ == "__main__":
    main()
