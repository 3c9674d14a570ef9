"""MVTec AD reader on a fake tree in the shipped layout."""

from __future__ import annotations

import numpy as np
import pytest
from fake_trees import make_mvtec_tree, write_image, write_mask

from maphc2f_data.errors import CorruptImageError, SourceLayoutError, UserError
from maphc2f_data.sources import get_source
from maphc2f_data.sources.mvtec import MVTEC_CATEGORIES, MVTecSource


def test_metadata():
    assert MVTecSource.license == "CC BY-NC-SA 4.0"
    assert len(MVTEC_CATEGORIES) == 15
    assert MVTecSource.texture_categories == {"carpet", "grid", "leather", "tile", "wood"}


def test_categories_are_those_present_sorted(mvtec_root):
    source = get_source("mvtec", mvtec_root)
    assert source.categories() == ["bottle", "carpet"]
    assert source.is_texture("carpet") and not source.is_texture("bottle")


def test_train_images_exact_sorted_relative(mvtec_root):
    items = get_source("mvtec", mvtec_root).train_images("bottle")
    assert [item.path for item in items] == [f"bottle/train/good/{i:03d}.png" for i in range(3)]
    assert {(item.source, item.category, item.split, item.defect, item.mask_path) for item in items} == {
        ("mvtec", "bottle", "train", "good", None)
    }
    assert all((mvtec_root / item.path).is_file() for item in items)


def test_test_images_pair_masks_by_name(mvtec_root):
    items = get_source("mvtec", mvtec_root).test_images("carpet")
    assert len(items) == 2 + 2 * 2
    assert [item.path for item in items] == sorted(item.path for item in items)
    good = [item for item in items if item.defect == "good"]
    assert [item.path for item in good] == ["carpet/test/good/000.png", "carpet/test/good/001.png"]
    assert all(item.mask_path is None and item.split == "test" for item in good)
    cracks = [item for item in items if item.defect == "crack"]
    assert [(item.path, item.mask_path) for item in cracks] == [
        (f"carpet/test/crack/{i:03d}.png", f"carpet/ground_truth/crack/{i:03d}_mask.png") for i in range(2)
    ]


def test_load_image_and_pair(mvtec_root):
    source = get_source("mvtec", mvtec_root)
    defective = next(item for item in source.test_images("bottle") if item.defect == "broken_large")
    image, mask = source.load_pair(defective)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert mask.dtype == bool and mask.sum() == 8 * 8
    good = source.test_images("bottle")[-1]
    assert good.defect == "good"
    image, mask = source.load_pair(good)
    assert mask.shape == (32, 32) and not mask.any()


def test_unknown_category_lists_valid_names(mvtec_root):
    source = get_source("mvtec", mvtec_root)
    with pytest.raises(UserError) as info:
        source.train_images("bottel")
    message = str(info.value)
    assert "\n" not in message and "'bottel'" in message
    assert all(name in message for name in MVTEC_CATEGORIES)


def test_known_but_absent_category_names_the_root(mvtec_root):
    with pytest.raises(SourceLayoutError, match="zipper") as info:
        get_source("mvtec", mvtec_root).test_images("zipper")
    assert str(mvtec_root.resolve()) in str(info.value)


def test_check_categories_validates_and_sorts(mvtec_root):
    source = get_source("mvtec", mvtec_root)
    assert source.check_categories(None) == ["bottle", "carpet"]
    assert source.check_categories(["carpet", "bottle", "carpet"]) == ["bottle", "carpet"]
    with pytest.raises(UserError, match="nope"):
        source.check_categories(["bottle", "nope"])


def test_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(SourceLayoutError) as info:
        get_source("mvtec", missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_wrong_layout_names_root_and_expected_layout(tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(SourceLayoutError) as info:
        get_source("mvtec", tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "train/good" in message and "\n" not in message


def test_single_category_folder_gets_a_hint(tmp_path):
    make_mvtec_tree(tmp_path, ["bottle"], n_train=1, n_test_good=0, defects=())
    with pytest.raises(SourceLayoutError, match="pass its parent"):
        get_source("mvtec", tmp_path / "bottle")


def test_missing_train_folder_and_missing_mask_are_layout_errors(tmp_path):
    make_mvtec_tree(tmp_path, ["bottle", "cable"], n_train=1, n_test_good=1, defects=("cut",), n_defect=2)
    (tmp_path / "cable" / "train" / "good" / "000.png").unlink()
    (tmp_path / "cable" / "train" / "good").rmdir()
    (tmp_path / "bottle" / "ground_truth" / "cut" / "001_mask.png").unlink()
    source = get_source("mvtec", tmp_path)
    with pytest.raises(SourceLayoutError, match="cable/train/good"):
        source.train_images("cable")
    with pytest.raises(SourceLayoutError, match="001_mask"):
        source.test_images("bottle")


def test_mask_size_mismatch_names_both_paths(tmp_path):
    make_mvtec_tree(tmp_path, ["pill"], n_train=1, n_test_good=0, defects=("crack",), n_defect=1)
    mask = tmp_path / "pill" / "ground_truth" / "crack" / "000_mask.png"
    write_mask(mask, size=16)
    source = get_source("mvtec", tmp_path)
    (item,) = source.test_images("pill")
    with pytest.raises(CorruptImageError) as info:
        source.load_pair(item)
    message = str(info.value)
    assert str(mask) in message and str(tmp_path / "pill" / "test" / "crack" / "000.png") in message
    assert "\n" not in message


def test_corrupt_training_image_is_listed_and_fails_alone(tmp_path):
    make_mvtec_tree(tmp_path, ["screw"], n_train=2, n_test_good=0, defects=())
    broken = tmp_path / "screw" / "train" / "good" / "001.png"
    broken.write_bytes(broken.read_bytes()[:60])
    source = get_source("mvtec", tmp_path)
    first, second = source.train_images("screw")  # listing never decodes
    assert source.load_image(first).shape == (32, 32, 3)
    with pytest.raises(CorruptImageError, match="001.png"):
        source.load_image(second)


def test_hidden_and_non_image_files_are_not_listed(tmp_path):
    make_mvtec_tree(tmp_path, ["tile"], n_train=2, n_test_good=0, defects=())
    write_image(tmp_path / "tile" / "train" / "good" / "._000.png", tmp_path)
    (tmp_path / "tile" / "train" / "good" / "Thumbs.db").write_bytes(b"x")
    assert len(get_source("mvtec", tmp_path).train_images("tile")) == 2
