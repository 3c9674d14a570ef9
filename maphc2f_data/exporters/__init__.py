"""Exports of a built dataset in the layouts other tools read as they are.

* :func:`export_mvtec` - MVTec AD folders (anomalib ``MVTecAD``/``Folder``):
  ``<category>/train/good`` (the normal images the anomalies were made from),
  ``test/good`` (the source's own normal test images), ``test/<defect>`` and
  ``ground_truth/<defect>/<stem>_mask.png``;
* :func:`export_coco` - COCO instance segmentation, one annotation (RLE) per
  8-connected anomaly region, ``annotations/instances_<split>.json``;
* :func:`export_yolo_seg` - Ultralytics segmentation: ``images/<split>``,
  ``labels/<split>/<stem>.txt`` polygons, ``data.yaml``.

These sit at the builder's layer because the MVTec export re-reads normal
images through :mod:`maphc2f_data.sampling` (the build's resize rule); the
file handling they share (safe destination, lock, provenance marker) is
:mod:`maphc2f_data.dataset.export`.
"""

from typing import Any, Callable, Dict

from maphc2f_data.exporters.coco import export_coco, rle_encode
from maphc2f_data.exporters.mvtec import export_mvtec
from maphc2f_data.exporters.yolo import export_yolo_seg, mask_polygons

#: ``--format`` name -> export function ``(dataset, dest, *, categories, link) -> summary``.
EXPORTERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "mvtec": export_mvtec,
    "coco": export_coco,
    "yolo-seg": export_yolo_seg,
}

__all__ = ["EXPORTERS", "export_coco", "export_mvtec", "export_yolo_seg", "mask_polygons", "rle_encode"]
