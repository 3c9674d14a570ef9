"""export_coco: pycocotools reads it, and every image's decoded annotations are its mask exactly."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.exporters.coco import export_coco, rle_encode

mask_api = pytest.importorskip("pycocotools.mask")
coco_api = pytest.importorskip("pycocotools.coco")


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_encode_matches_pycocotools(mask):
    ours = rle_encode(mask)
    theirs = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours == {"size": theirs["size"], "counts": theirs["counts"].decode("ascii")}


def test_rle_of_large_runs_round_trips():
    mask = np.zeros((300, 500), dtype=bool)
    mask[10:290, 7:480] = True
    mask[100:101, :] = False
    rle = rle_encode(mask)
    assert np.array_equal(mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode()}), mask)


def _check_split(dest, dataset, split):
    coco = coco_api.COCO(str(dest / "annotations" / f"instances_{split}.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(DEFECT_TYPES)
    by_name = {image["file_name"]: image for image in coco.dataset["images"]}
    rows = [row for entry in read_manifest(dataset)["categories"].values() for shard in entry["shards"]
            if shard["path"].split("/")[-1].startswith(split) for row in iter_rows(dataset / shard["path"])]
    assert len(rows) == len(by_name) > 0
    for row in rows:
        image = by_name[f"{row['sample_id']}.png"]
        assert (dest / "images" / split / image["file_name"]).read_bytes() == row["image"]["bytes"]
        expected = decode_png(row["mask"]["bytes"]) > 0
        assert (image["height"], image["width"]) == expected.shape
        union = np.zeros_like(expected)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
            region = coco.annToMask(ann).astype(bool)
            assert ann["category_id"] == row["defect_type"] + 1 and ann["iscrowd"] == 0
            assert ann["area"] == region.sum() and not (union & region).any()  # regions are disjoint
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(region)
            assert [x, y, w, h] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
            union |= region
        assert np.array_equal(union, expected)
    return len(rows)


def test_pycocotools_reads_the_export_and_masks_are_exact(demo_build, tmp_path):
    summary = export_coco(demo_build, tmp_path / "coco")
    assert sorted(p.name for p in (tmp_path / "coco" / "annotations").iterdir()) == ["instances_train.json"]
    assert _check_split(tmp_path / "coco", demo_build, "train") == summary["images"] == 24
    marker = json.loads((tmp_path / "coco" / "maphc2f_export.json").read_text())
    assert marker["format"] == "coco" and marker["complete"]


def test_validation_split_gets_its_own_file(demo_build_split, tmp_path):
    summary = export_coco(demo_build_split, tmp_path / "coco")
    assert set(summary["splits"]) == {"train", "validation"}
    total = sum(_check_split(tmp_path / "coco", demo_build_split, split) for split in ("train", "validation"))
    assert total == 24
