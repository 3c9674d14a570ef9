"""The dataset I/O layer: PNG bytes, Parquet shards, manifest, card, loading.

This is the only subpackage that imports ``datasets``, and it does so lazily
(in :func:`~maphc2f_data.dataset.schema.features` and
:func:`~maphc2f_data.dataset.load.load`), so build workers that only write
shards never pay for that import.
"""

from __future__ import annotations

from maphc2f_data.dataset.config import (
    COLUMNS,
    DEFAULT_PNG_COMPRESSION,
    DEFECT_TYPES,
    MAX_ROWS_PER_SHARD,
    ROWS_PER_ROW_GROUP,
)
from maphc2f_data.dataset.manifest import read_manifest, write_manifest
from maphc2f_data.dataset.png import decode_png, encode_png
from maphc2f_data.dataset.schema import arrow_schema, features
from maphc2f_data.dataset.shards import (
    ShardInfo,
    read_shard_metadata,
    sha256_file,
    shard_filename,
    write_shard,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_PNG_COMPRESSION",
    "DEFECT_TYPES",
    "MAX_ROWS_PER_SHARD",
    "ROWS_PER_ROW_GROUP",
    "ShardInfo",
    "arrow_schema",
    "decode_png",
    "encode_png",
    "features",
    "make_splits",
    "read_manifest",
    "read_shard_metadata",
    "sha256_file",
    "shard_filename",
    "validate_dataset",
    "write_card",
    "write_manifest",
    "write_shard",
]

# ``load`` is not re-exported here: the submodule ``dataset.load`` would
# shadow it once imported. Use ``maphc2f_data.dataset.load.load`` (or
# ``maphc2f_data.load``).
_LAZY = {
    "validate_dataset": "maphc2f_data.dataset.validate",
    "make_splits": "maphc2f_data.dataset.splits",
    "write_card": "maphc2f_data.dataset.card",
}


def __getattr__(name: str):
    """Import the heavier entry points on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
