"""DRAEM-style anomaly synthesis: the baseline MaPhC2F is compared against.

For comparison only, not the method. It follows DRAEM (Zavrtanik et al.,
ICCV 2021, ``data_loader.py``): a Perlin noise field at a random lattice
scale, thresholded at 0.5 (the project's own :func:`~maphc2f_data.synthesis.perlin.perlin_grid`),
gives the mask; a texture image (DTD in the original; any folder of images
here, or scikit-image photos as offline stand-ins) passed through three random
image augmenters fills it, blended with the normal image by a factor
``beta ~ U(0, 0.8)``: ``out = x (1 - M) + (1 - beta) t M + beta x M``.
DRAEM draws the mask anywhere in the image; like its later versions for
objects, it is confined to the foreground here when one is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np

from maphc2f_data.synthesis.perlin import perlin_grid

#: scikit-image photos used as textures when no ``texture_dir`` is given
#: (none of them is a demo category).
STAND_IN_TEXTURES = ("astronaut", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
                     "chelsea", "camera", "moon", "cell")
#: DRAEM's blend factor range: beta ~ U(0, BETA_MAX).
BETA_MAX = 0.8
#: DRAEM's Perlin scales are 2**k for k in [MIN_SCALE_EXP, MAX_SCALE_EXP).
MIN_SCALE_EXP, MAX_SCALE_EXP = 0, 6
PERLIN_THRESHOLD = 0.5


def load_textures(texture_dir: Optional[os.PathLike] = None, size: int = 256) -> List[np.ndarray]:
    """Texture images as uint8 RGB (size, size, 3).

    Parameters
    ----------
    texture_dir : path, optional
        A folder of images (e.g. a local copy of DTD's ``images/``), read
        recursively in sorted order; default: :data:`STAND_IN_TEXTURES`.
    size : int

    Raises
    ------
    UserError
        ``texture_dir`` holds no readable image.
    """
    from maphc2f_data.errors import UserError

    images = []
    if texture_dir is None:
        import skimage.data

        for name in STAND_IN_TEXTURES:
            image = getattr(skimage.data, name)()
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            images.append(np.ascontiguousarray(image[:, :, :3]))
    else:
        from maphc2f_data.errors import CorruptImageError
        from maphc2f_data.sources.imageio import list_images, read_rgb

        root = Path(texture_dir).expanduser()
        if not root.is_dir():
            raise UserError(f"--texture-dir {root} is not a folder")
        for rel in list_images(root, root, recursive=True):
            try:
                images.append(read_rgb(root / rel))
            except CorruptImageError:
                continue
        if not images:
            raise UserError(f"--texture-dir {root} holds no readable image")
    return [cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images]


def _augmenters() -> List[Callable[[np.ndarray, np.random.Generator], np.ndarray]]:
    """DRAEM's texture augmenters (imgaug ops re-done in numpy/OpenCV)."""

    def gamma(t, rng):
        return np.clip(255.0 * (t / 255.0) ** rng.uniform(0.5, 2.0), 0, 255)

    def multiply_add(t, rng):
        return np.clip(t * rng.uniform(0.8, 1.2) + rng.uniform(-30, 30), 0, 255)

    def sharpen(t, rng):
        blurred = cv2.GaussianBlur(t.astype(np.float32), (0, 0), 1.0)
        return np.clip(t + rng.uniform(0.0, 1.0) * (t - blurred), 0, 255)

    def hue_saturation(t, rng):
        hsv = cv2.cvtColor(t.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-25, 25)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)

    def solarize(t, rng):
        threshold = rng.uniform(32, 128)
        return np.where(t > threshold, 255 - t, t)

    def posterize(t, rng):
        bits = int(rng.integers(4, 9))
        return (t.astype(np.uint8) >> (8 - bits) << (8 - bits)).astype(np.float32)

    def invert(t, rng):
        return 255 - t

    def autocontrast(t, rng):
        low, high = np.percentile(t, 1), np.percentile(t, 99)
        return np.clip((t - low) * 255.0 / max(high - low, 1.0), 0, 255)

    def equalize(t, rng):
        return np.stack([cv2.equalizeHist(t[..., c].astype(np.uint8)) for c in range(3)], -1).astype(np.float32)

    def rotate(t, rng):
        h, w = t.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-45, 45), 1.0)
        return cv2.warpAffine(t, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)

    return [gamma, multiply_add, sharpen, hue_saturation, solarize, posterize, invert, autocontrast,
            equalize, rotate]


AUGMENTERS = _augmenters()


def draem_anomaly(image: np.ndarray, textures: Sequence[np.ndarray], rng: np.random.Generator,
                  foreground: Optional[np.ndarray] = None) -> "tuple[np.ndarray, np.ndarray]":
    """One DRAEM-style anomaly on ``image``.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    textures : sequence of uint8 (h, w, 3) arrays
    rng : numpy.random.Generator
    foreground : ndarray of bool, shape (H, W), optional
        Confine the mask to it.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
        Empty when the thresholded noise misses the foreground (the caller
        then has a normal sample).
    """
    height, width = image.shape[:2]
    scale = float(2 ** rng.integers(MIN_SCALE_EXP, MAX_SCALE_EXP))
    noise = perlin_grid(height, width, scale, int(rng.integers(1, 2**31 - 1)))
    angle = rng.uniform(-90, 90)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    noise = cv2.warpAffine(noise.astype(np.float32), matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    # perlin_grid is roughly in [-0.5, 0.5]; DRAEM thresholds its [-1, 1] noise at 0.5.
    mask = noise > PERLIN_THRESHOLD * float(np.abs(noise).max() or 1.0)
    if foreground is not None:
        mask &= foreground
    texture = textures[int(rng.integers(len(textures)))]
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    for index in rng.choice(len(AUGMENTERS), size=3, replace=False):
        texture = AUGMENTERS[int(index)](texture, rng).astype(np.float32)
    beta = rng.uniform(0.0, BETA_MAX)
    m = mask[:, :, None].astype(np.float32)
    x = image.astype(np.float32)
    out = x * (1 - m) + (1 - beta) * texture * m + beta * x * m
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask
