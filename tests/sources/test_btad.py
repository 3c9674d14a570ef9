"""BTAD reader: ok/ko folders and masks paired by stem across extensions."""

from __future__ import annotations

import pytest
from fake_trees import BTAD_EXTENSIONS, make_btad_tree, write_mask

from maphc2f_data.errors import SourceLayoutError, UserError
from maphc2f_data.sources import get_source
from maphc2f_data.sources.btad import BTADSource


def test_metadata():
    assert BTADSource.license == "CC BY-SA 4.0"
    assert BTADSource.known_categories == ("01", "02", "03")


def test_categories_and_train_counts(btad_root):
    source = get_source("btad", btad_root)
    assert source.categories() == ["01", "02", "03"]
    for category, (image_ext, _) in BTAD_EXTENSIONS.items():
        items = source.train_images(category)
        assert [item.path for item in items] == [f"{category}/train/ok/{i:04d}.{image_ext}" for i in range(3)]
        assert all(item.defect == "good" and item.split == "train" for item in items)
        assert not source.is_texture(category)


@pytest.mark.parametrize("category", ["01", "02", "03"])
def test_masks_pair_by_stem_across_extensions(btad_root, category):
    image_ext, mask_ext = BTAD_EXTENSIONS[category]
    items = get_source("btad", btad_root).test_images(category)
    assert [(item.path, item.defect, item.mask_path) for item in items] == [
        (f"{category}/test/ko/{i:04d}.{image_ext}", "ko", f"{category}/ground_truth/ko/{i:04d}.{mask_ext}")
        for i in range(2)
    ] + [(f"{category}/test/ok/{i:04d}.{image_ext}", "good", None) for i in range(2)]


def test_load_pair_reads_bmp_and_png_masks(btad_root):
    source = get_source("btad", btad_root)
    for category in ("01", "03"):
        image, mask = source.load_pair(source.test_images(category)[0])
        assert image.shape == (32, 32, 3) and mask.sum() == 64


def test_missing_and_ambiguous_masks(tmp_path):
    make_btad_tree(tmp_path, ["01", "02"], n_train=1, n_test_ok=0, n_test_ko=1)
    (tmp_path / "01" / "ground_truth" / "ko" / "0000.png").unlink()
    write_mask(tmp_path / "02" / "ground_truth" / "ko" / "0000.bmp")
    source = get_source("btad", tmp_path)
    with pytest.raises(SourceLayoutError, match="no mask for test image") as info:
        source.test_images("01")
    assert str(tmp_path / "01" / "test" / "ko" / "0000.bmp") in str(info.value)
    with pytest.raises(SourceLayoutError, match="ambiguous"):
        source.test_images("02")


def test_errors(tmp_path, btad_root):
    with pytest.raises(UserError) as info:
        get_source("btad", btad_root).train_images("1")
    assert "01, 02, 03" in str(info.value)
    (tmp_path / "01").mkdir()
    with pytest.raises(SourceLayoutError, match="01/train/ok"):
        get_source("btad", tmp_path).train_images("01")
    with pytest.raises(SourceLayoutError, match="ground_truth/ko"):
        get_source("btad", tmp_path / "01")
