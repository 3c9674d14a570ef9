"""export_yolo_seg: the Ultralytics layout; polygons rasterised back match the masks (IoU floor per type)."""

from collections import defaultdict

import numpy as np

from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.exporters.yolo import export_yolo_seg, mask_polygons, polygon_line, rasterize

#: Documented floor of the mean IoU (per defect type) of rasterised polygons vs masks.
#: Only holes are lost (outer contours only: a crack network closing a loop, a corrosion
#: ring). Measured with scripts/yolo_iou.py on demo builds: 1.0 for every type at 64 px;
#: 256 px (all categories) crack 0.9997, corrosion 0.9943, deformation 1.0; 512 px
#: (nut, capsule, brick) crack 0.9835, corrosion 0.9928, deformation 1.0, worst mask 0.86.
IOU_FLOOR = 0.95


def _iou(a, b):
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def test_small_regions_become_valid_polygons():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2, 3] = True  # one pixel
    mask[6, 1:6] = True  # a straight line
    mask[8, 8] = mask[9, 9] = True  # two diagonal pixels
    polygons = mask_polygons(mask)
    assert len(polygons) == 3 and all(len(p) >= 3 for p in polygons)
    lines = [polygon_line(0, p, 10, 10) for p in polygons]
    assert np.array_equal(rasterize(lines, 10, 10), mask)


def test_holes_are_filled():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:18, 2:18] = True
    mask[8:12, 8:12] = False
    lines = [polygon_line(1, p, 20, 20) for p in mask_polygons(mask)]
    filled = mask.copy()
    filled[8:12, 8:12] = True
    assert len(lines) == 1 and np.array_equal(rasterize(lines, 20, 20), filled)


def test_layout_and_round_trip_iou(demo_build_split, tmp_path):
    dest = tmp_path / "yolo"
    summary = export_yolo_seg(demo_build_split, dest)
    assert set(summary["splits"]) == {"train", "validation"} and summary["images"] == 24
    data = (dest / "data.yaml").read_text()
    assert f"path: '{dest}'" in data and "train: images/train\nval: images/validation\n" in data
    assert "names:\n  0: crack\n  1: corrosion\n  2: deformation\n" in data
    ious = defaultdict(list)
    for entry in read_manifest(demo_build_split)["categories"].values():
        for shard in entry["shards"]:
            split = shard["path"].split("/")[-1].split("-")[0]
            for row in iter_rows(demo_build_split / shard["path"]):
                mask = decode_png(row["mask"]["bytes"]) > 0
                assert (dest / "images" / split / f"{row['sample_id']}.png").read_bytes() == row["image"]["bytes"]
                lines = (dest / "labels" / split / f"{row['sample_id']}.txt").read_text().splitlines()
                assert all(int(line.split()[0]) == row["defect_type"] for line in lines)
                assert all(0 < float(v) < 1 for line in lines for v in line.split()[1:])
                ious[DEFECT_TYPES[row["defect_type"]]].append(_iou(rasterize(lines, *mask.shape[::-1]), mask))
    means = {kind: float(np.mean(values)) for kind, values in ious.items()}
    assert set(means) == set(DEFECT_TYPES)
    assert min(means.values()) >= IOU_FLOOR, means
