"""Parquet shards: deterministic, atomic writes and cheap reads.

A shard holds the rows of one category and one split, in the column order
and types of :func:`~maphc2f_data.dataset.schema.arrow_schema`. Writer
options mirror ``datasets``' own ``ParquetWriter``
(``arrow_writer.get_parquet_column_options``): image columns are stored
PLAIN and uncompressed (PNG is already deflated), other columns are
dictionary-encoded and snappy-compressed, and pages are content-defined
chunked so re-uploads of a regenerated dataset deduplicate on the Hub.

Shards are written by :class:`ShardWriter`, one row group
(:data:`~.config.ROWS_PER_ROW_GROUP` rows) at a time, so a build worker never
holds a whole shard in memory; :func:`write_shard` and
:func:`table_to_parquet_bytes` go through the same code and give the same
bytes.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Type

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

#: Footer key under which pyarrow stores the Arrow schema (base64 IPC message).
_ARROW_SCHEMA_KEY = b"ARROW:schema"


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


def _row_cells(row: Mapping[str, Any], position: int) -> Dict[str, Any]:
    """Validate one row and return its cells in column order, as Arrow takes them.

    Parameters
    ----------
    row : mapping
        See :func:`rows_to_table`.
    position : int
        Index of the row in its shard, for the error message.

    Raises
    ------
    ValueError
        On missing or unknown columns, a non-PNG image cell or an unknown
        ``defect_type``.
    """
    keys = set(row)
    expected = set(COLUMNS)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise ValueError(f"row {position} has missing columns {missing} and unknown columns {extra}")
    cells: Dict[str, Any] = {}
    for column in COLUMNS:
        value = row[column]
        if column in IMAGE_COLUMNS:
            value = _image_cell(value, column)
        elif column == "defect_type":
            value = _defect_index(value)
        cells[column] = value
    return cells


def _empty_columns() -> Dict[str, List[Any]]:
    return {column: [] for column in COLUMNS}


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
    columns = _empty_columns()
    for position, row in enumerate(rows):
        for column, value in _row_cells(row, position).items():
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


def _without_shard_metadata(schema: pa.Schema) -> pa.Schema:
    """``schema`` less its ``b"maphc2f"`` entry (which is only known when a shard is closed)."""
    metadata = {key: value for key, value in (schema.metadata or {}).items() if key != MAPHC2F_METADATA_KEY}
    return schema.with_metadata(metadata)


def _open_parquet_writer(sink: Any, schema: pa.Schema) -> pq.ParquetWriter:
    """A ``ParquetWriter`` on ``sink`` with the dataset's writer options.

    ``schema`` must not carry ``b"maphc2f"``: :func:`_close_parquet_writer`
    adds it, so streamed shards and whole tables give the same bytes.
    """
    options = _column_options(schema)
    if _HAS_CDC:
        options["use_content_defined_chunking"] = _CDC_OPTIONS
    writer = pq.ParquetWriter(sink, schema, **options)
    if _HAS_CDC:  # recorded as datasets records it
        writer.add_key_value_metadata({"content_defined_chunking": json.dumps(_CDC_OPTIONS)})
    return writer


def _write_row_groups(writer: pq.ParquetWriter, table: pa.Table) -> None:
    """Append ``table`` as row groups of :data:`~.config.ROWS_PER_ROW_GROUP` rows."""
    writer.write_table(table, row_group_size=ROWS_PER_ROW_GROUP)


def _close_parquet_writer(writer: pq.ParquetWriter, schema: pa.Schema) -> None:
    """Store the ``b"maphc2f"`` entry of ``schema`` (if any) in the footer and close ``writer``.

    Parameters
    ----------
    writer : pyarrow.parquet.ParquetWriter
        Opened by :func:`_open_parquet_writer` with ``schema`` less ``b"maphc2f"``.
    schema : pyarrow.Schema
        The shard's full schema, with its final metadata.
    """
    raw = (schema.metadata or {}).get(MAPHC2F_METADATA_KEY)
    if raw is not None:
        # pyarrow serialised the Arrow schema (ARROW:schema) when the writer
        # opened, before this entry was known, and readers (pq.read_schema,
        # datasets) take the schema metadata from that copy, not from the
        # plain key-value pairs. So the copy is replaced by the full schema,
        # encoded as pyarrow encodes it; the plain pair stays for other readers.
        writer.add_key_value_metadata({
            _ARROW_SCHEMA_KEY: base64.b64encode(schema.serialize().to_pybytes()),
            MAPHC2F_METADATA_KEY: raw,
        })
    writer.close()


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """Serialise ``table`` as Parquet bytes with the dataset's writer options.

    No timestamps are written, so equal tables give equal bytes, and the
    same bytes as :class:`ShardWriter` writes for the same rows and metadata.
    """
    sink = pa.BufferOutputStream()
    writer = _open_parquet_writer(sink, _without_shard_metadata(table.schema))
    try:
        _write_row_groups(writer, table)
    except BaseException:
        writer.close()
        raise
    _close_parquet_writer(writer, table.schema)
    return sink.getvalue().to_pybytes()


def _temporary_path(path: Path) -> Path:
    # Per process, so two writers of the same shard never share a temporary.
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` via ``<path>.tmp-<pid>``, fsync and ``os.replace``.

    A reader (or a killed writer) never sees a half-written ``path``; on any
    error the temporary file is removed.
    """
    path = Path(path)
    tmp = _temporary_path(path)
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


class ShardWriter:
    """Write one shard row group by row group, atomically (context manager).

    Rows are buffered until :data:`~.config.ROWS_PER_ROW_GROUP` of them are
    there, then written as one row group to ``<path>.tmp-<pid>`` and dropped,
    so at most one row group is held in memory. :meth:`close` adds the
    metadata, fsyncs and renames the temporary file onto ``path``; until
    then an older file at ``path`` stays untouched. The bytes depend only on
    the rows and the metadata (not on how the rows were fed) and equal those
    of :func:`table_to_parquet_bytes` of :func:`rows_to_table`.

    Parameters
    ----------
    path : path-like
        ``<root>/data/<category>/<split>-NNNNN-of-MMMMM.parquet``; the parent
        folders are created with the first row group. Nothing is created
        before the first row is added.
    node : str, optional
        Recorded in the returned :class:`ShardInfo` only.

    Raises
    ------
    ValueError
        If ``path`` does not have a shard file name.

    Examples
    --------
    The metadata is only known at the end, so leaving the ``with`` block
    without :meth:`close` discards the shard:

    >>> with ShardWriter(path) as writer:  # doctest: +SKIP
    ...     for row in rows:
    ...         writer.add(row)
    ...     info = writer.close({"plan_hash": plan_hash})
    """

    def __init__(self, path: os.PathLike, *, node: Optional[str] = None) -> None:
        self._path = Path(path)
        parsed = parse_shard_filename(self._path.name)
        if parsed is None:
            raise ValueError(
                f"shard file name must look like 'train-00000-of-00001.parquet', got {self._path.name!r}"
            )
        self._split: str = parsed["split"]
        self._node = node
        self._tmp = _temporary_path(self._path)
        self._schema = arrow_schema()
        self._category: Optional[str] = None
        self._columns = _empty_columns()
        self._buffered = 0
        self._rows = 0
        self._handle: Optional[BinaryIO] = None
        self._writer: Optional[pq.ParquetWriter] = None
        self._closed = False

    @property
    def rows(self) -> int:
        """Number of rows added so far."""
        return self._rows

    def add(self, row: Mapping[str, Any]) -> None:
        """Buffer ``row``; write the buffer as a row group once it is full.

        Parameters
        ----------
        row : mapping
            See :func:`rows_to_table`.

        Raises
        ------
        ValueError
            On an invalid row (as :func:`rows_to_table`), a row of another
            category than the first, a first row whose category is not the
            shard's folder, or a closed writer. A rejected row is not added.
            If writing a row group fails, the writer aborts before re-raising.
        """
        self._check_open()
        cells = _row_cells(row, self._rows)
        self._accept_category(cells["category"])
        for column, value in cells.items():
            self._columns[column].append(value)
        self._rows += 1
        self._buffered += 1
        if self._buffered == ROWS_PER_ROW_GROUP:
            self._flush()

    def close(self, metadata: Optional[Mapping[str, Any]] = None) -> ShardInfo:
        """Write the last rows and the footer, then move the shard into place.

        Parameters
        ----------
        metadata : mapping, optional
            JSON-able data stored under ``b"maphc2f"`` in the schema metadata
            (read back cheaply with :func:`read_shard_metadata`).

        Returns
        -------
        ShardInfo
            With ``path`` relative to the dataset root
            (``data/<category>/<file>``) and the sha256 of the final file.

        Raises
        ------
        ValueError
            If no row was added (nothing is written then) or the writer is
            closed. Any error while writing aborts the writer before it
            propagates, so no temporary file is left behind.
        """
        self._check_open()
        if self._rows == 0:
            raise ValueError(f"refusing to write an empty shard {self._path}")
        # Built first: metadata that is not JSON fails before anything is written.
        schema = arrow_schema(metadata)
        try:
            self._flush()
            sha256 = self._finish_temporary(schema)
            os.replace(self._tmp, self._path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        _fsync_dir(self._path.parent)
        return ShardInfo(
            path=f"{self._path.parent.parent.name}/{self._category}/{self._path.name}",
            split=self._split,
            category=self._category,
            rows=self._rows,
            sha256=sha256,
            node=self._node,
        )

    def abort(self) -> None:
        """Discard the shard: remove the temporary file, leave ``path`` as it is.

        A no-op once the writer is closed or aborted.
        """
        if self._closed:
            return
        self._closed = True
        self._columns = _empty_columns()
        self._buffered = 0
        writer, handle = self._writer, self._handle
        self._writer = self._handle = None
        if writer is not None:
            # Its footer is thrown away with the file, but an unclosed writer
            # would try to write it from __del__, after the file is closed.
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - best effort; the file is removed anyway
                pass
        if handle is not None:
            handle.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        # Closing needs the metadata, so leaving the block without close()
        # (with or without an exception) discards the shard.
        self.abort()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self._path} is closed")

    def _accept_category(self, category: Any) -> None:
        if self._category is None:
            if self._path.parent.name != category:
                raise ValueError(f"shard of category {category!r} must live in data/{category}/, got {self._path}")
            self._category = category
        elif category != self._category:
            raise ValueError(f"a shard holds one category, got {sorted([self._category, category], key=str)}")

    def _flush(self) -> None:
        """Write the buffered rows as one row group and drop them."""
        if not self._buffered:
            return
        table = pa.Table.from_pydict(self._columns, schema=self._schema)
        # Drop the Python copies now: only the Arrow table stays alive while it is written.
        self._columns = _empty_columns()
        self._buffered = 0
        try:
            if self._writer is None:
                self._open_temporary()
            _write_row_groups(self._writer, table)
            # Hand the bytes to the OS now rather than keep them in a user-space buffer.
            self._handle.flush()
        except BaseException:
            self.abort()
            raise

    def _open_temporary(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self._tmp, "wb")
        self._writer = _open_parquet_writer(self._handle, self._schema)

    def _finish_temporary(self, schema: pa.Schema) -> str:
        """Close the temporary file durably and return its sha256."""
        writer, handle = self._writer, self._handle
        _close_parquet_writer(writer, schema)
        self._writer = None
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        self._handle = None
        return sha256_file(self._tmp)


def write_shard(
    rows: Iterable[Mapping[str, Any]],
    path: os.PathLike,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    node: Optional[str] = None,
) -> ShardInfo:
    """Write one category/split shard atomically and deterministically.

    A thin wrapper around :class:`ShardWriter` (the one writing path).

    Parameters
    ----------
    rows : iterable of mapping
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

    Raises
    ------
    ValueError
        On a bad file name or folder, no rows, rows of several categories or
        an invalid row; nothing is written then.
    """
    with ShardWriter(path, node=node) as writer:
        for row in rows:
            writer.add(row)
        return writer.close(metadata)


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
