"""Named limits and constants of the published dataset, in one place.

The values follow the limits ``datasets`` itself uses (``datasets/config.py``:
``MAX_SHARD_SIZE = "500MB"``, ``MAX_ROW_GROUP_SIZE = "100MB"``) translated
into row counts for 512 px samples, because the builder plans shards by rows
before any pixel exists.
"""

from __future__ import annotations

from typing import Tuple

from maphc2f_data.synthesis import DEFECT_TYPES  # noqa: F401  (re-exported: the ClassLabel names)

#: Name of the dataset (default output folder, ``load_dataset("maphc2f")``).
DATASET_NAME = "maphc2f"

#: Version of the ``manifest.json`` layout.
MANIFEST_FORMAT_VERSION = 1

#: Folder (relative to the dataset root) that holds the Parquet shards.
DATA_DIR = "data"

#: Folder for build caches; the leading dot makes ``datasets`` ignore it when
#: it infers data files, and the card's ``data_files`` globs never reach it.
CACHE_DIR = ".cache"

MANIFEST_NAME = "manifest.json"
CARD_NAME = "README.md"

#: Splits a shard can belong to, in the order the card lists them.
SPLITS: Tuple[str, ...] = ("train", "validation")

# ``defect_type`` ClassLabel names are maphc2f_data.synthesis.DEFECT_TYPES (the
# registry's order, imported above); the stored int64 is the index there.

#: Row columns in their exact on-disk order (see :mod:`.schema` for types).
COLUMNS: Tuple[str, ...] = (
    "image",
    "mask",
    "foreground",
    "sample_id",
    "source_dataset",
    "category",
    "defect_type",
    "source_image",
    "seed",
    "params",
    "foreground_method",
    "stage",
    "anomaly_area",
    "on_foreground",
    "contrast",
    "quality",
)

#: Columns holding PNG bytes in the ``datasets`` Image struct.
IMAGE_COLUMNS: Tuple[str, ...] = ("image", "mask", "foreground")

#: Rows per shard. A 512x512 row is about 0.47 MB (RGB PNG ~456 KB at
#: compression 3 for a natural image, plus two binary masks of a few KB), so
#: 500 rows is ~235 MB: well under ``datasets``' 500 MB ``MAX_SHARD_SIZE``
#: even for noisy textures that compress worse (up to ~0.8 MB/row, ~400 MB).
MAX_ROWS_PER_SHARD = 500

#: Rows per Parquet row group: ~47 MB at 512 px, under ``datasets``'
#: ``MAX_ROW_GROUP_SIZE`` of 100 MB and far under the ~300 MB at which the
#: Hub's dataset viewer gives up on a row group.
ROWS_PER_ROW_GROUP = 100

#: zlib level passed to ``cv2.IMWRITE_PNG_COMPRESSION``. Measured with
#: ``python scripts/bench_png.py`` on skimage's astronaut (512x512 RGB) on the
#: 2-core build machine, opencv 5.0 (size, best ms per encode; timings are
#: noisy on a shared machine, sizes are exact):
#:
#:   level 0  788,279 B   ~10 ms   (stored, no deflate)
#:   level 1  463,953 B   ~21 ms   <- chosen
#:   level 2  461,427 B   ~22 ms
#:   level 3  456,059 B   ~28 ms
#:   level 4  450,446 B   ~31 ms
#:   level 5  447,686 B   ~44 ms
#:   level 6  446,008 B   ~75 ms
#:   level 7  445,837 B  ~103 ms
#:   level 8  445,551 B  ~107 ms
#:   level 9  445,428 B   ~79 ms
#:   Pillow default (zlib 6 + adaptive filters)  424,520 B  ~124 ms
#:
#: A 512x512 binary mask is ~2.1 KB at levels 1-3 (~1.1 KB at 4-7), so the
#: RGB image decides. Level 1 is 1.7 % larger than level 3 for ~25 % less
#: time (PNG encoding is the largest share of a build's per-sample cost);
#: levels above 3 buy under 2.5 % in size for 1.5-4x the time.
DEFAULT_PNG_COMPRESSION = 1

#: PNG row filter (a key of :data:`maphc2f_data.dataset.png.PNG_FILTERS`).
#: libpng's default ("adaptive") tries all five filters on every row; one
#: fixed filter skips that search. Measured with ``python
#: scripts/bench_png.py`` at level 1, mean over six skimage photographs and
#: textures (512x512 RGB; mean of the best ms per picture; 2-core build
#: machine, opencv 5.0):
#:
#:   adaptive  389,019 B  ~19-22 ms
#:   up        397,031 B  ~12 ms   <- chosen
#:   avg       392,987 B  ~13 ms
#:   paeth     392,505 B  ~16 ms
#:   sub       419,792 B  ~14 ms
#:   none      506,742 B  ~15 ms
#:
#: "up" is 2 % larger for ~40 % less time; a binary mask grows from ~2.1 KB
#: to ~3.2 KB and encodes in 0.5 ms instead of 2.
DEFAULT_PNG_FILTER = "up"

#: Licences of the sources, as the card states them per source config;
#: derived images inherit the licence of the image they were made from.
SOURCE_LICENSES = {
    "mvtec": "CC BY-NC-SA 4.0",
    "visa": "CC BY 4.0",
    "btad": "CC BY-SA 4.0",
}

#: Pretty names of the sources for the card.
SOURCE_PRETTY_NAMES = {
    "mvtec": "MVTec AD",
    "visa": "VisA",
    "btad": "BTAD",
    "folder": "Local image folder",
    "demo": "Rendered demo scenes",
}
