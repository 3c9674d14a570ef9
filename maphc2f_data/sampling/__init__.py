"""The one sample path: normal image -> synthetic anomaly -> refined sample.

Builds (the shard worker), ``maphc2f preview --source``, the Python API and
online training augmentation all make samples through :func:`make_sample`,
with one resize rule (:func:`resize_square`), so a preview shows exactly what
a build writes and refinement plugs in at one place.

* :mod:`.sample` - load and resize, synthesise, refine, measure;
* :mod:`.normals` - the normal image a built row was made from;
* :mod:`.statistics` - per-sample figures stored with every row (anomaly
  area, share on the foreground, CIEDE2000 contrast).
"""

from maphc2f_data.sampling.normals import NormalImages
from maphc2f_data.sampling.sample import (
    STAGES,
    Sample,
    StageTimes,
    load_square,
    make_sample,
    make_samples,
    make_samples_batch,
    params_json,
    resize_label,
    resize_square,
)

__all__ = ["STAGES", "NormalImages", "Sample", "StageTimes", "load_square", "make_sample", "make_samples",
           "make_samples_batch", "params_json", "resize_label",
           "resize_square"]
