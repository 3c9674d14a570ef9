"""Size and encode time of PNG settings, to choose DEFAULT_PNG_COMPRESSION and DEFAULT_PNG_FILTER.

Encodes six 512x512 RGB pictures shipped with scikit-image (photographs and
textures: astronaut, coffee, chelsea, rocket, grass, gravel) and a binary
512x512 mask with ``cv2.imencode`` at every zlib level (adaptive filters,
libpng's default), then at the chosen level with each single row filter, and
with Pillow's default PNG writer for reference. Prints the mean size and the
mean of the best encode time per picture.

Usage::

    python scripts/bench_png.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
import skimage.data
from PIL import Image

from maphc2f_data.dataset.config import DEFAULT_PNG_COMPRESSION, DEFAULT_PNG_FILTER
from maphc2f_data.dataset.png import PNG_FILTERS, encode_png

PICTURES = ("astronaut", "coffee", "chelsea", "rocket", "grass", "gravel")


def _pictures() -> Dict[str, np.ndarray]:
    pictures = {}
    for name in PICTURES:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.dstack([image] * 3)
        pictures[name] = cv2.resize(image[..., :3], (512, 512), interpolation=cv2.INTER_AREA)
    return pictures


def _best_ms(encode: Callable[[], bytes], repeats: int) -> Tuple[float, int]:
    """Smallest wall time in ms over ``repeats`` calls, and the output size."""
    best, size = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(encode())
        best = min(best, time.perf_counter() - start)
    return best * 1000.0, size


def _mean(images: List[np.ndarray], encode: Callable[[np.ndarray], bytes], repeats: int) -> Tuple[float, float]:
    results = [_best_ms(lambda: encode(image), repeats) for image in images]
    return float(np.mean([size for _, size in results])), float(np.mean([ms for ms, _ in results]))


def _pillow_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="encodes per setting and picture (best kept)")
    args = parser.parse_args(argv)

    images = list(_pictures().values())
    yy, xx = np.mgrid[:512, :512]
    mask = ((yy - 256) ** 2 / 90.0**2 + (xx - 300) ** 2 / 40.0**2) < 1.0

    print(f"opencv {cv2.__version__}; mean over {len(images)} 512x512 RGB pictures ({', '.join(PICTURES)}); "
          "mask: 512x512 binary ellipse")
    print(f"{'setting':<26}{'RGB bytes':>12}{'RGB ms':>9}{'mask bytes':>12}{'mask ms':>9}")

    def row(label: str, encode: Callable[[np.ndarray], bytes], mask_input: np.ndarray, marker: str = "") -> None:
        size, ms = _mean(images, encode, args.repeats)
        mask_ms, mask_size = _best_ms(lambda: encode(mask_input), args.repeats)
        print(f"{label:<26}{size:>12,.0f}{ms:>9.1f}{mask_size:>12,}{mask_ms:>9.1f}{marker}", flush=True)

    for level in range(10):
        row(f"level {level}, adaptive", lambda a, level=level: encode_png(a, level, "adaptive"), mask)
    for name in sorted(PNG_FILTERS):
        default = name == DEFAULT_PNG_FILTER
        row(f"level {DEFAULT_PNG_COMPRESSION}, {name}",
            lambda a, name=name: encode_png(a, DEFAULT_PNG_COMPRESSION, name), mask,
            "  <- default" if default else "")
    row("Pillow default", _pillow_png, mask.astype(np.uint8) * 255)


if __name__ == "__main__":
    main()
