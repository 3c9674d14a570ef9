"""VisA reader: the downloaded layout (split by 1cls.csv) and the prepared one."""

from __future__ import annotations

import os

import pytest
from fake_trees import VISA_DEFECT_LABELS, make_visa_tree, write_image

from maphc2f_data.errors import SourceLayoutError, UserError
from maphc2f_data.sources import get_source
from maphc2f_data.sources.imageio import read_rgb
from maphc2f_data.sources.visa import VISA_CATEGORIES, VisASource


def test_metadata():
    assert VisASource.license == "CC BY 4.0"
    assert len(VISA_CATEGORIES) == 12
    assert VisASource.texture_categories == frozenset()


def test_raw_layout_categories_and_train_split_from_csv(visa_root):
    source = get_source("visa", visa_root)
    assert source.layout == "raw"
    assert source.categories() == ["candle", "pcb1"]
    items = source.train_images("candle")
    # The CSV rows are shuffled; the listing is sorted and holds train normals only
    # (0003 and 0004 are normal *test* images in the same Normal folder).
    assert [item.path for item in items] == [f"candle/Data/Images/Normal/{i:04d}.JPG" for i in range(3)]
    assert all(item.split == "train" and item.defect == "good" and item.mask_path is None for item in items)


def test_raw_layout_test_images_masks_and_defect_names(visa_root):
    items = get_source("visa", visa_root).test_images("pcb1")
    assert [item.path for item in items] == sorted(item.path for item in items)
    normal = [item.path for item in items if item.defect == "good"]
    assert normal == ["pcb1/Data/Images/Normal/0003.JPG", "pcb1/Data/Images/Normal/0004.JPG"]
    anomalies = [(item.path, item.mask_path, item.defect) for item in items if item.mask_path]
    assert anomalies == [
        (f"pcb1/Data/Images/Anomaly/{i:03d}.JPG", f"pcb1/Data/Masks/Anomaly/{i:03d}.png", VISA_DEFECT_LABELS[i])
        for i in range(2)
    ]


def test_class_id_masks_count_any_nonzero_as_defect(visa_root):
    source = get_source("visa", visa_root)
    anomaly = [item for item in source.test_images("candle") if item.mask_path][1]
    raw = read_rgb(visa_root / anomaly.mask_path)
    assert raw.max() == 2  # class id 2: looks black
    image, mask = source.load_pair(anomaly)
    assert image.shape == (32, 32, 3)
    assert mask.sum() == 64 and mask[8:16, 8:16].all()


def test_defect_name_defaults_without_image_anno(tmp_path):
    make_visa_tree(tmp_path, ["fryum"], n_train=1, n_test_normal=0, n_anomaly=1, image_anno=False)
    (item,) = get_source("visa", tmp_path).test_images("fryum")
    assert item.defect == "bad" and item.mask_path == "fryum/Data/Masks/Anomaly/000.png"


def test_csv_with_bom_and_total_counts(tmp_path):
    make_visa_tree(tmp_path, ["cashew", "pcb4"], n_train=4, n_test_normal=1, n_anomaly=1)
    split = tmp_path / "split_csv" / "1cls.csv"
    split.write_bytes(b"\xef\xbb\xbf" + split.read_bytes())
    source = get_source("visa", tmp_path)
    assert sum(len(source.train_images(c)) for c in source.categories()) == 8


def test_prepared_layout(visa_prepared_root):
    source = get_source("visa", visa_prepared_root)
    assert source.layout == "prepared"
    assert source.categories() == ["candle", "pcb1"]
    assert [item.path for item in source.train_images("pcb1")] == [
        f"pcb1/train/good/{i:04d}.JPG" for i in range(3)
    ]
    bad = [item for item in source.test_images("pcb1") if item.defect == "bad"]
    assert [(item.path, item.mask_path) for item in bad] == [
        (f"pcb1/test/bad/{i:03d}.JPG", f"pcb1/ground_truth/bad/{i:03d}.png") for i in range(2)
    ]
    _, mask = source.load_pair(bad[0])
    assert mask.sum() == 64


@pytest.mark.parametrize("bad_path", ["../outside.JPG", "candle/../../outside.JPG", "/etc/hostname"])
def test_csv_path_leaving_the_root_is_refused(tmp_path, bad_path):
    (tmp_path / "outside.JPG").write_bytes(b"x")
    root = make_visa_tree(tmp_path / "visa", ["candle"], n_train=1, n_test_normal=0, n_anomaly=0,
                          extra_rows=[["candle", "train", "normal", bad_path, ""]])
    with pytest.raises(UserError) as info:
        get_source("visa", root)
    message = str(info.value)
    assert bad_path in message and "1cls.csv line" in message and "\n" not in message


def test_symlinked_image_leaving_the_root_is_refused_on_load(tmp_path):
    root = make_visa_tree(tmp_path / "visa", ["candle"], n_train=2, n_test_normal=0, n_anomaly=0)
    outside = write_image(tmp_path / "outside.JPG", tmp_path)
    target = root / "candle" / "Data" / "Images" / "Normal" / "0001.JPG"
    target.unlink()
    os.symlink(outside, target)
    source = get_source("visa", root)
    first, second = source.train_images("candle")
    assert source.load_image(first).shape == (32, 32, 3)
    with pytest.raises(UserError, match="outside the dataset root"):
        source.load_image(second)


def test_prepared_symlink_leaving_the_root_is_refused_when_listing(tmp_path):
    root = make_visa_tree(tmp_path / "visa", ["pcb2"], n_train=1, n_test_normal=0, n_anomaly=0, prepared=True)
    os.symlink(write_image(tmp_path / "outside.JPG", tmp_path), root / "pcb2" / "train" / "good" / "9.JPG")
    with pytest.raises(UserError, match="9.JPG"):
        get_source("visa", root).train_images("pcb2")


def test_raw_layout_without_csv_names_the_csv(tmp_path):
    make_visa_tree(tmp_path, ["candle"], n_train=1, n_test_normal=0, n_anomaly=0)
    (tmp_path / "split_csv" / "1cls.csv").unlink()
    with pytest.raises(SourceLayoutError) as info:
        get_source("visa", tmp_path)
    assert str(tmp_path / "split_csv" / "1cls.csv") in str(info.value)


def test_wrong_csv_header_names_the_csv(tmp_path):
    make_visa_tree(tmp_path, ["candle"], n_train=1, n_test_normal=0, n_anomaly=0)
    (tmp_path / "split_csv" / "1cls.csv").write_text("name,path\ncandle,x.JPG\n")
    with pytest.raises(SourceLayoutError, match="object,split,label,image,mask") as info:
        get_source("visa", tmp_path)
    assert "1cls.csv" in str(info.value)


@pytest.mark.parametrize(
    "row, match",
    [
        (["candle", "val", "normal", "candle/x.JPG", ""], "split 'val'"),
        (["candle", "test", "broken", "candle/x.JPG", ""], "label 'broken'"),
        (["candle", "test", "anomaly", "candle/x.JPG", ""], "has no mask"),
    ],
)
def test_bad_csv_rows_name_the_line(tmp_path, row, match):
    make_visa_tree(tmp_path, ["candle"], n_train=1, n_test_normal=0, n_anomaly=0, extra_rows=[row])
    with pytest.raises(SourceLayoutError, match=match) as info:
        get_source("visa", tmp_path)
    assert "1cls.csv line 3" in str(info.value)


def test_unknown_and_absent_categories(visa_root):
    source = get_source("visa", visa_root)
    with pytest.raises(UserError) as info:
        source.train_images("pcb9")
    assert all(name in str(info.value) for name in VISA_CATEGORIES)
    with pytest.raises(SourceLayoutError, match="macaroni1"):
        source.train_images("macaroni1")


def test_empty_root_is_a_layout_error(tmp_path):
    with pytest.raises(SourceLayoutError) as info:
        get_source("visa", tmp_path)
    assert str(tmp_path) in str(info.value) and "1cls.csv" in str(info.value)


def test_listing_does_not_decode(tmp_path):
    make_visa_tree(tmp_path, ["candle"], n_train=2, n_test_normal=0, n_anomaly=0)
    (tmp_path / "candle" / "Data" / "Images" / "Normal" / "0000.JPG").write_bytes(b"corrupt")
    source = get_source("visa", tmp_path)
    items = source.train_images("candle")
    assert [item.path.rsplit("/", 1)[1] for item in items] == ["0000.JPG", "0001.JPG"]
    assert source.load_image(items[1]).shape == (32, 32, 3)
