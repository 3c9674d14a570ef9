"""Per-row figures: anomaly area, share on the foreground, CIEDE2000 contrast."""

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from maphc2f_data.sampling.statistics import anomaly_area, contrast, on_foreground, srgb_to_lab


def test_area_is_the_mask_fraction():
    mask = np.zeros((8, 8), bool)
    mask[:2] = True
    assert anomaly_area(mask) == 0.25
    assert anomaly_area(mask.astype(np.uint8) * 255) == 0.25
    assert anomaly_area(np.zeros((4, 4), bool)) == 0.0


def test_on_foreground_counts_mask_pixels_inside():
    mask = np.zeros((4, 4), bool)
    mask[0, :] = True
    foreground = np.zeros((4, 4), bool)
    foreground[:, :1] = True
    assert on_foreground(mask, foreground) == 0.25
    assert on_foreground(mask, np.ones((4, 4), bool)) == 1.0
    assert on_foreground(np.zeros((4, 4), bool), foreground) == 0.0
    with pytest.raises(ValueError, match="does not match"):
        on_foreground(mask, np.ones((5, 4), bool))


def test_contrast_is_the_mean_ciede2000_inside_the_mask():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    after = before.copy()
    after[4:8, 4:8] = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[2:10, 2:10] = True
    full = deltaE_ciede2000(rgb2lab(before), rgb2lab(after))
    assert contrast(before, after, mask) == pytest.approx(full[mask].mean(), rel=1e-9)
    assert contrast(before, after, mask) > 0
    assert contrast(before, before, mask) == 0.0
    assert contrast(before, after, np.zeros((16, 16), bool)) == 0.0


def test_contrast_of_black_to_white_is_100():
    before = np.zeros((2, 2, 3), np.uint8)
    assert contrast(before, before + 255, np.ones((2, 2), bool)) == pytest.approx(100.0, abs=1e-4)


def test_contrast_rejects_bad_inputs():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        contrast(image.astype(float), image, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="shapes differ"):
        contrast(image, image, np.ones((3, 4), bool))


def test_srgb_to_lab_matches_skimage_over_the_colour_cube():
    levels = np.arange(0, 256, 3, dtype=np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(srgb_to_lab(cube), rgb2lab(cube[:, None, :])[:, 0], rtol=0, atol=1e-9)


def test_contrast_only_looks_inside_the_masks_bounding_box():
    rng = np.random.default_rng(1)
    before = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    after = before.copy()
    after[20:24, 3:9] = 255 - after[20:24, 3:9]
    after[0:3, 28:32] = 0  # changed, but outside the mask: must not count
    mask = np.zeros((32, 32), bool)
    mask[19:25, 2:10] = True
    full = deltaE_ciede2000(rgb2lab(before), rgb2lab(after))
    assert contrast(before, after, mask) == pytest.approx(full[mask].mean(), rel=1e-9)
