"""Mean IoU of ``maphc2f export --format yolo-seg`` polygons rasterised back (cv2.fillPoly) vs the masks.

    python scripts/yolo_iou.py DATASET      # prints mean IoU per defect type and overall
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.exporters.yolo import mask_polygons, polygon_line, rasterize


def main(dataset: str) -> None:
    from pathlib import Path

    root = Path(dataset)
    ious = defaultdict(list)
    for entry in read_manifest(root)["categories"].values():
        for shard in entry["shards"]:
            for row in iter_rows(root / shard["path"], columns=["mask", "defect_type"]):
                mask = decode_png(row["mask"]["bytes"]) > 0
                h, w = mask.shape
                lines = [polygon_line(0, p, w, h) for p in mask_polygons(mask)]
                back = rasterize(lines, w, h)
                union = (back | mask).sum()
                ious[DEFECT_TYPES[row["defect_type"]]].append(1.0 if union == 0 else (back & mask).sum() / union)
    for kind in DEFECT_TYPES:
        print(f"{kind}: mean IoU {np.mean(ious[kind]):.4f}, min {np.min(ious[kind]):.4f} ({len(ious[kind])} masks)")
    every = [v for values in ious.values() for v in values]
    print(f"all: mean IoU {np.mean(every):.4f} ({len(every)} masks)")


if __name__ == "__main__":
    main(sys.argv[1])
