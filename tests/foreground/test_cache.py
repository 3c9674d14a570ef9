"""The on-disk foreground cache: keys, hits, corrupt files, atomic writes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from maphc2f_data.foreground.cache import ForegroundCache, image_key


def _image(seed: int = 0, shape=(24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _mask(shape=(24, 32)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[5:15, 8:20] = True
    return mask


def _all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_miss_then_hit_with_the_documented_layout(tmp_path):
    cache = ForegroundCache(tmp_path / "fg")
    image, mask = _image(), _mask()
    assert cache.get(image, "classical") is None
    path = cache.put(image, "classical", mask)
    key = image_key(image)
    assert path == (tmp_path / "fg" / "classical" / key[:2] / f"{key}.png").resolve()
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 255}
    hit = cache.get(image, "classical")
    assert hit.dtype == np.bool_ and np.array_equal(hit, mask)
    # A fresh cache object on the same folder (a later build) hits too.
    assert np.array_equal(ForegroundCache(tmp_path / "fg").get(image.copy(), "classical"), mask)


def test_key_depends_on_content_shape_and_method(tmp_path):
    cache = ForegroundCache(tmp_path)
    image = _image()
    cache.put(image, "sam-vit_h", _mask())
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert cache.get(changed, "sam-vit_h") is None
    assert cache.get(image, "classical") is None
    reshaped = image.reshape(32, 24, 3)  # same bytes, other shape
    assert image_key(reshaped) != image_key(image)
    assert image_key(image) == image_key(np.asfortranarray(image))  # layout does not matter
    assert image_key(image[:, ::-1][:, ::-1]) == image_key(image)


def test_corrupt_or_wrong_file_is_a_miss_and_is_overwritten(tmp_path):
    cache = ForegroundCache(tmp_path)
    image, mask = _image(), _mask()
    path = cache.put(image, "classical", mask)
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert cache.get(image, "classical") is None
    path.write_bytes(b"")
    assert cache.get(image, "classical") is None
    cv2.imwrite(str(path), np.zeros((5, 5), np.uint8))  # decodes, wrong size
    assert cache.get(image, "classical") is None
    cv2.imwrite(str(path), np.full((24, 32), 7, np.uint8))  # right size, not 0/255
    assert cache.get(image, "classical") is None
    cache.put(image, "classical", mask)
    assert np.array_equal(cache.get(image, "classical"), mask)


def test_writes_leave_no_temporary_files(tmp_path):
    cache = ForegroundCache(tmp_path)
    for seed in range(4):
        cache.put(_image(seed), "classical", _mask())
        cache.put(_image(seed), "classical", ~_mask())  # overwrite in place
    files = _all_files(tmp_path)
    assert len(files) == 4 and all(name.endswith(".png") and not name.split("/")[-1].startswith(".") for name in files)


def test_failed_write_keeps_the_old_mask_and_cleans_up(tmp_path, monkeypatch):
    cache = ForegroundCache(tmp_path)
    image, mask = _image(), _mask()
    cache.put(image, "classical", mask)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cache.put(image, "classical", ~mask)
    monkeypatch.undo()
    assert np.array_equal(cache.get(image, "classical"), mask)
    assert len(_all_files(tmp_path)) == 1


@pytest.mark.parametrize("method", ["../escape", "a/b", "", ".hidden", "x" * 65, "sam vit"])
def test_method_names_cannot_leave_the_cache_folder(tmp_path, method):
    cache = ForegroundCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="cache method"):
        cache.put(_image(), method, _mask())
    assert not (tmp_path / "cache").exists()
    assert _all_files(tmp_path) == []


def test_put_checks_the_mask(tmp_path):
    cache = ForegroundCache(tmp_path)
    with pytest.raises(ValueError, match="bool"):
        cache.put(_image(), "classical", _mask().astype(np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        cache.put(_image(), "classical", _mask((10, 10)))
