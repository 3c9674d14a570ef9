"""Parquet shards: deterministic, atomic writes and cheap reads.

A shard holds the rows of one category and one split, in the column order
and types of :func:`~maphc2f_data.dataset.schema.arrow_schema`. Writer
options mirror ``datasets``' own ``ParquetWriter``
(``arrow_writer.get_parquet_column_options``): image columns are stored
PLAIN and uncompressed (PNG is already deflated), other columns are
dictionary-encoded and snappy-compressed, and pages are content-defined
chunked so re-uploads of a regenerated dataset deduplicate on the Hub.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from maphc2f_data.dataset.config import (
    COLUMNS,
    DEFECT_TYPES,
    IMAGE_COLUMNS,
    ROWS_PER_ROW_GROUP,
    SPLITS,
)
from maphc2f_data.dataset.schema import MAPHC2F_METADATA_KEY, arrow_schema

#: ``<split>-NNNNN-of-MMMMM.parquet``, the name ``datasets`` and the Hub use.
SHARD_NAME_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")

#: ``datasets``' content-defined chunking options (``config.DEFAULT_CDC_OPTIONS``).
_CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
#: Content-defined chunking arrived in pyarrow 21; older writers skip it.
_HAS_CDC = "use_content_defined_chunking" in inspect.signature(pq.ParquetWriter.__init__).parameters

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ShardInfo:
    """One written shard, as the manifest lists it.

    Attributes
    ----------
    path : str
        POSIX path relative to the dataset root, ``data/<category>/<file>``.
    split : str
        ``"train"`` or ``"validation"``.
    category : str
        Category of every row in the shard.
    rows : int
        Number of rows.
    sha256 : str
        Hex SHA-256 of the file bytes.
    node : str or None
        Host or Ray node that wrote it (informational; not part of the bytes).
    """

    path: str
    split: str
    category: str
    rows: int
    sha256: str
    node: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """The manifest entry of this shard."""
        return asdict(self)


def shard_filename(split: str, index: int, total: int) -> str:
    """File name of shard ``index`` (0-based) of ``total`` in ``split``.

    >>> shard_filename("train", 0, 3)
    'train-00000-of-00003.parquet'
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if not 0 <= index < total <= 99999:
        raise ValueError(f"need 0 <= index < total <= 99999, got index={index} total={total}")
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def parse_shard_filename(name: str) -> Optional[Dict[str, Any]]:
    """``{"split", "index", "total"}`` of a shard file name, or None if it is not one."""
    match = SHARD_NAME_RE.match(name)
    if match is None or match["split"] not in SPLITS:
        return None
    return {"split": match["split"], "index": int(match["index"]), "total": int(match["total"])}


def sha256_file(path: os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _image_cell(value: Any, column: str) -> Dict[str, Any]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, Mapping) and isinstance(value.get("bytes"), (bytes, bytearray)):
        return {"bytes": bytes(value["bytes"]), "path": None}
    raise ValueError(f"column {column!r} needs PNG bytes, got {type(value).__name__}")


def _defect_index(value: Any) -> int:
    if isinstance(value, str):
        if value not in DEFECT_TYPES:
            raise ValueError(f"defect_type must be one of {list(DEFECT_TYPES)}, got {value!r}")
        return DEFECT_TYPES.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(DEFECT_TYPES):
        return value
    raise ValueError(f"defect_type must be one of {list(DEFECT_TYPES)} or its index, got {value!r}")


def rows_to_table(rows: Sequence[Mapping[str, Any]], metadata: Optional[Mapping[str, Any]] = None) -> pa.Table:
    """Arrow table of ``rows`` in the dataset schema.

    Parameters
    ----------
    rows : sequence of mapping
        One dict per row with exactly the keys of :data:`~.config.COLUMNS`.
        Image columns are PNG bytes (or ``{"bytes": ..., "path": ...}`` as
        read back from a shard), ``defect_type`` is the class name (or its
        index), ``quality`` may be None.
    metadata : mapping, optional
        Stored under ``b"maphc2f"`` in the schema metadata.
    """
    expected = set(COLUMNS)
    columns: Dict[str, List[Any]] = {column: [] for column in COLUMNS}
    for position, row in enumerate(rows):
        keys = set(row)
        if keys != expected:
            missing, extra = sorted(expected - keys), sorted(keys - expected)
            raise ValueError(f"row {position} has missing columns {missing} and unknown columns {extra}")
        for column in COLUMNS:
            value = row[column]
            if column in IMAGE_COLUMNS:
                value = _image_cell(value, column)
            elif column == "defect_type":
                value = _defect_index(value)
            columns[column].append(value)
    return pa.Table.from_pydict(columns, schema=arrow_schema(metadata))


def _column_options(schema: pa.Schema) -> Dict[str, Any]:
    image_leaves = [f"{column}.{field}" for column in IMAGE_COLUMNS for field in ("bytes", "path")]
    other_leaves = [column for column in schema.names if column not in IMAGE_COLUMNS]
    options: Dict[str, Any] = {
        "compression": {**{leaf: "none" for leaf in image_leaves}, **{leaf: "snappy" for leaf in other_leaves}},
        "use_dictionary": other_leaves,
        "column_encoding": {leaf: "PLAIN" for leaf in image_leaves},
        # min/max of PNG bytes are useless and would bloat the footer.
        "write_statistics": other_leaves,
        "write_page_index": True,
    }
    return options


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """Serialise ``table`` as Parquet bytes with the dataset's writer options.

    No timestamps are written, so equal tables give equal bytes.
    """
    sink = pa.BufferOutputStream()
    options = _column_options(table.schema)
    if _HAS_CDC:
        options["use_content_defined_chunking"] = _CDC_OPTIONS
    writer = pq.ParquetWriter(sink, table.schema, **options)
    try:
        if _HAS_CDC:  # recorded as datasets records it
            writer.add_key_value_metadata({"content_defined_chunking": json.dumps(_CDC_OPTIONS)})
        writer.write_table(table, row_group_size=ROWS_PER_ROW_GROUP)
    finally:
        writer.close()
    return sink.getvalue().to_pybytes()


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` via ``<path>.tmp-<pid>``, fsync and ``os.replace``.

    A reader (or a killed writer) never sees a half-written ``path``; on any
    error the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_shard(
    rows: Sequence[Mapping[str, Any]],
    path: os.PathLike,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    node: Optional[str] = None,
) -> ShardInfo:
    """Write one category/split shard atomically and deterministically.

    Parameters
    ----------
    rows : sequence of mapping
        Non-empty; see :func:`rows_to_table`. All rows share one category.
    path : path-like
        ``<root>/data/<category>/<split>-NNNNN-of-MMMMM.parquet``; the parent
        folder is created if needed.
    metadata : mapping, optional
        JSON-able data stored under ``b"maphc2f"`` in the schema metadata
        (read back cheaply with :func:`read_shard_metadata`).
    node : str, optional
        Recorded in the returned :class:`ShardInfo` only.

    Returns
    -------
    ShardInfo
        With ``path`` relative to the dataset root (``data/<category>/<file>``).
    """
    path = Path(path)
    parsed = parse_shard_filename(path.name)
    if parsed is None:
        raise ValueError(f"shard file name must look like 'train-00000-of-00001.parquet', got {path.name!r}")
    if not rows:
        raise ValueError(f"refusing to write an empty shard {path}")
    categories = sorted({row.get("category") for row in rows}, key=str)
    if len(categories) != 1:
        raise ValueError(f"a shard holds one category, got {categories}")
    category = categories[0]
    if path.parent.name != category:
        raise ValueError(f"shard of category {category!r} must live in data/{category}/, got {path}")
    data = table_to_parquet_bytes(rows_to_table(rows, metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data, path)
    return ShardInfo(
        path=f"{path.parent.parent.name}/{category}/{path.name}",
        split=parsed["split"],
        category=category,
        rows=len(rows),
        sha256=hashlib.sha256(data).hexdigest(),
        node=node,
    )


def read_shard_metadata(path: os.PathLike) -> Optional[Dict[str, Any]]:
    """The ``b"maphc2f"`` metadata of a shard, reading only its footer.

    Returns None when the file is missing, is not readable Parquet (e.g. a
    torn write from an older tool), or carries no such entry.
    """
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    raw = (schema.metadata or {}).get(MAPHC2F_METADATA_KEY)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def iter_rows(
    path: os.PathLike, *, columns: Optional[Sequence[str]] = None, batch_size: int = ROWS_PER_ROW_GROUP
) -> Iterator[Dict[str, Any]]:
    """Rows of a shard as dicts (image columns as ``{"bytes", "path"}``, ``defect_type`` as int)."""
    parquet = pq.ParquetFile(path)
    try:
        for batch in parquet.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None):
            yield from batch.to_pylist()
    finally:
        parquet.close()


def shard_row_count(path: os.PathLike) -> int:
    """Number of rows recorded in a shard's footer."""
    return pq.read_metadata(path).num_rows
