"""The row schema: Arrow types plus the ``datasets`` features metadata.

:func:`arrow_schema` is pure pyarrow so shard writers (build workers) need not
import ``datasets``; it carries, under the ``b"huggingface"`` key, the same
features JSON ``datasets`` writes itself (``ArrowWriter._build_metadata``), so
``load_dataset`` decodes ``image``/``mask``/``foreground`` as ``Image`` and
``defect_type`` as ``ClassLabel`` with no README at all. A test checks that
it equals ``features().arrow_schema``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import pyarrow as pa

from maphc2f_data.dataset.config import COLUMNS, DEFECT_TYPES, IMAGE_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: Metadata key of the ``datasets`` features JSON.
HF_METADATA_KEY = b"huggingface"
#: Metadata key of this package's per-shard JSON (e.g. the build plan hash).
MAPHC2F_METADATA_KEY = b"maphc2f"

#: Arrow storage type of ``datasets.Image`` (``features/image.py: Image.pa_type``).
IMAGE_STRUCT = pa.struct({"bytes": pa.binary(), "path": pa.string()})

_VALUE_TYPES = {
    "sample_id": "string",
    "source_dataset": "string",
    "category": "string",
    "source_image": "string",
    "seed": "int64",
    "params": "string",
    "foreground_method": "string",
    "stage": "string",
    "anomaly_area": "float64",
    "on_foreground": "float64",
    "contrast": "float64",
    "quality": "float64",
}
_ARROW_VALUE_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}


def _feature_dict(column: str) -> Dict[str, Any]:
    """The ``datasets`` ``Features.to_dict()`` entry of one column."""
    if column in IMAGE_COLUMNS:
        return {"_type": "Image"}
    if column == "defect_type":
        return {"names": list(DEFECT_TYPES), "_type": "ClassLabel"}
    return {"dtype": _VALUE_TYPES[column], "_type": "Value"}


def _arrow_type(column: str) -> pa.DataType:
    if column in IMAGE_COLUMNS:
        return IMAGE_STRUCT
    if column == "defect_type":
        return pa.int64()
    return _ARROW_VALUE_TYPES[_VALUE_TYPES[column]]


def features_dict() -> Dict[str, Dict[str, Any]]:
    """Features of the rows as ``datasets.Features.to_dict()`` would give them."""
    return {column: _feature_dict(column) for column in COLUMNS}


def huggingface_metadata() -> bytes:
    """The ``b"huggingface"`` schema metadata value, byte for byte as ``datasets`` writes it."""
    # datasets uses json.dumps with default separators and insertion order.
    return json.dumps({"info": {"features": features_dict()}}).encode()


def arrow_schema(metadata: Optional[Mapping[str, Any]] = None) -> pa.Schema:
    """Arrow schema of a shard, columns in :data:`~.config.COLUMNS` order.

    Parameters
    ----------
    metadata : mapping, optional
        JSON-able per-shard data stored under ``b"maphc2f"`` (sorted keys,
        compact separators so equal data gives equal bytes).

    Returns
    -------
    pyarrow.Schema
        All fields nullable (as ``datasets`` writes them), with the
        ``b"huggingface"`` features metadata.
    """
    schema_metadata = {HF_METADATA_KEY: huggingface_metadata()}
    if metadata is not None:
        schema_metadata[MAPHC2F_METADATA_KEY] = encode_metadata(metadata)
    return pa.schema(
        [pa.field(column, _arrow_type(column)) for column in COLUMNS], metadata=schema_metadata
    )


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of the per-shard metadata."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def features() -> "datasets.Features":
    """The rows as ``datasets.Features`` (imports ``datasets``)."""
    import datasets

    return datasets.Features.from_dict(features_dict())
