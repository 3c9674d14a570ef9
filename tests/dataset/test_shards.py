"""Shard writing: deterministic bytes, atomic replace, datasets' column options."""

import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_dataset import make_row

from maphc2f_data.dataset import shards as shards_module
from maphc2f_data.dataset.config import IMAGE_COLUMNS, ROWS_PER_ROW_GROUP
from maphc2f_data.dataset.schema import arrow_schema, encode_metadata, huggingface_metadata
from maphc2f_data.dataset.shards import (
    ShardInfo,
    ShardWriter,
    iter_rows,
    parse_shard_filename,
    read_shard_metadata,
    rows_to_table,
    sha256_file,
    shard_filename,
    shard_row_count,
    table_to_parquet_bytes,
    write_shard,
)


def _rows(n, category="bottle", size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [make_row(category, "mvtec", i, rng, size=size) for i in range(n)]


def test_shard_filename_matches_the_hub_convention():
    assert shard_filename("train", 0, 3) == "train-00000-of-00003.parquet"
    assert shard_filename("validation", 11, 12) == "validation-00011-of-00012.parquet"
    assert parse_shard_filename("train-00002-of-00003.parquet") == {"split": "train", "index": 2, "total": 3}
    assert parse_shard_filename("train-00000-of-00001.parquet.tmp-12") is None
    assert parse_shard_filename("test-00000-of-00001.parquet") is None
    for bad in [("test", 0, 1), ("train", 3, 3), ("train", -1, 2)]:
        with pytest.raises(ValueError):
            shard_filename(*bad)


def test_write_shard_is_byte_deterministic_and_returns_its_info(tmp_path):
    rows = _rows(7)
    a = write_shard(rows, tmp_path / "a" / "data" / "bottle" / "train-00000-of-00001.parquet", metadata={"plan": "x"})
    b = write_shard(_rows(7), tmp_path / "b" / "data" / "bottle" / "train-00000-of-00001.parquet", metadata={"plan": "x"})
    bytes_a = (tmp_path / "a" / a.path).read_bytes()
    assert bytes_a == (tmp_path / "b" / b.path).read_bytes()
    assert a == ShardInfo(path="data/bottle/train-00000-of-00001.parquet", split="train", category="bottle",
                          rows=7, sha256=sha256_file(tmp_path / "a" / a.path), node=None)
    # A different plan hash is a different file.
    c = write_shard(rows, tmp_path / "c" / "data" / "bottle" / "train-00000-of-00001.parquet", metadata={"plan": "y"})
    assert c.sha256 != a.sha256


def test_rows_read_back_unchanged(tmp_path):
    rows = _rows(5)
    path = tmp_path / "data" / "bottle" / "train-00000-of-00001.parquet"
    write_shard(rows, path)
    back = list(iter_rows(path))
    assert [r["sample_id"] for r in back] == [r["sample_id"] for r in rows]
    assert back[0]["image"] == {"bytes": rows[0]["image"], "path": None}
    assert [r["defect_type"] for r in back] == [0, 1, 2, 0, 1]
    assert back[1]["quality"] is None and back[0]["quality"] == 0.75
    assert shard_row_count(path) == 5


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    folder = tmp_path / "data" / "bottle"
    write_shard(_rows(3), folder / "train-00000-of-00001.parquet")
    assert sorted(os.listdir(folder)) == ["train-00000-of-00001.parquet"]


def test_failed_replace_removes_the_temporary_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "data" / "bottle" / "train-00000-of-00001.parquet"
    old = write_shard(_rows(2), path)

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(shards_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_shard(_rows(4, seed=1), path)
    assert sorted(os.listdir(path.parent)) == [path.name]
    assert sha256_file(path) == old.sha256


def test_column_options_mirror_datasets(tmp_path):
    path = tmp_path / "data" / "bottle" / "train-00000-of-00001.parquet"
    write_shard(_rows(ROWS_PER_ROW_GROUP * 2 + 5, size=12), path)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 100, 5]
    columns = {meta.row_group(0).column(j).path_in_schema: meta.row_group(0).column(j)
               for j in range(meta.num_columns)}
    for leaf in ("image.bytes", "mask.bytes", "foreground.bytes", "image.path"):
        assert columns[leaf].compression == "UNCOMPRESSED"
        assert not columns[leaf].has_dictionary_page
        assert not columns[leaf].is_stats_set
    assert columns["sample_id"].compression == "SNAPPY"
    assert columns["category"].has_dictionary_page
    assert b"content_defined_chunking" in meta.metadata


def test_read_shard_metadata(tmp_path):
    path = tmp_path / "data" / "bottle" / "train-00000-of-00001.parquet"
    write_shard(_rows(2), path, metadata={"plan_hash": "abc", "n": 2})
    assert read_shard_metadata(path) == {"n": 2, "plan_hash": "abc"}
    bare = tmp_path / "data" / "bottle" / "train-00000-of-00002.parquet"
    write_shard(_rows(2), bare)
    assert read_shard_metadata(bare) is None
    assert read_shard_metadata(tmp_path / "missing.parquet") is None
    torn = tmp_path / "torn.parquet"
    torn.write_bytes(path.read_bytes()[:100])
    assert read_shard_metadata(torn) is None


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda rows: rows[0].pop("stage"), "missing columns"),
        (lambda rows: rows[0].update(extra=1), "unknown columns"),
        (lambda rows: rows[0].update(defect_type="scratch"), "defect_type"),
        (lambda rows: rows[0].update(image=np.zeros((2, 2), np.uint8)), "PNG bytes"),
        (lambda rows: rows[1].update(category="wood"), "one category"),
        (lambda rows: rows.clear(), "empty"),
    ],
)
def test_bad_rows_raise_value_error_and_write_nothing(tmp_path, change, match):
    rows = _rows(3)
    change(rows)
    path = tmp_path / "data" / "bottle" / "train-00000-of-00001.parquet"
    with pytest.raises(ValueError, match=match):
        write_shard(rows, path)
    assert not path.exists()


def test_shard_must_sit_in_its_category_folder_with_a_shard_name(tmp_path):
    with pytest.raises(ValueError, match="data/bottle"):
        write_shard(_rows(1), tmp_path / "data" / "wood" / "train-00000-of-00001.parquet")
    with pytest.raises(ValueError, match="file name"):
        write_shard(_rows(1), tmp_path / "data" / "bottle" / "part-0.parquet")


# --- ShardWriter: streaming, row group by row group ---------------------------

SHARD = os.path.join("data", "bottle", "train-00000-of-00001.parquet")


def _temporary(path):
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def _image_bytes(rows):
    return sum(len(row[column]) for row in rows for column in IMAGE_COLUMNS)


@pytest.mark.parametrize("n", [7, ROWS_PER_ROW_GROUP, ROWS_PER_ROW_GROUP * 2 + 5])
def test_streamed_bytes_equal_write_shard_and_table_bytes(tmp_path, n):
    rows = _rows(n, size=12)
    metadata = {"plan_hash": "abc", "rows": n}
    streamed = tmp_path / "a" / SHARD
    with ShardWriter(streamed, node="n1") as writer:
        for row in iter(rows):  # one row at a time, from an iterator
            writer.add(row)
        assert writer.rows == n
        info = writer.close(metadata)
    whole = write_shard(_rows(n, size=12), tmp_path / "b" / SHARD, metadata=metadata, node="n1")
    data = streamed.read_bytes()
    assert data == (tmp_path / "b" / SHARD).read_bytes()
    assert data == table_to_parquet_bytes(rows_to_table(rows, metadata))
    assert info == whole
    assert info.sha256 == sha256_file(streamed) and info.rows == n and info.node == "n1"


def test_streamed_rows_read_back_in_order_one_row_group_each(tmp_path):
    rows = _rows(250, size=64)
    path = tmp_path / SHARD
    with ShardWriter(path) as writer:
        for row in rows:
            writer.add(row)
        writer.close()
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == math.ceil(250 / ROWS_PER_ROW_GROUP)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 100, 50]
    back = list(iter_rows(path))
    assert back == rows_to_table(rows).to_pylist()
    assert [r["sample_id"] for r in back] == [r["sample_id"] for r in rows]
    assert [r["image"]["bytes"] for r in back] == [r["image"] for r in rows]


def test_rows_stream_to_the_temporary_file_one_row_group_at_a_time(tmp_path):
    rows = _rows(2 * ROWS_PER_ROW_GROUP + 1, size=64)
    path = tmp_path / SHARD
    tmp = _temporary(path)
    writer = ShardWriter(path)
    for row in rows[:ROWS_PER_ROW_GROUP - 1]:
        writer.add(row)
    assert not (tmp_path / "data").exists()  # still buffered
    baseline = pa.total_allocated_bytes()
    writer.add(rows[ROWS_PER_ROW_GROUP - 1])
    first = tmp.stat().st_size
    assert first >= _image_bytes(rows[:ROWS_PER_ROW_GROUP])  # PNGs are stored uncompressed
    for row in rows[ROWS_PER_ROW_GROUP:2 * ROWS_PER_ROW_GROUP]:
        writer.add(row)
    assert tmp.stat().st_size - first >= _image_bytes(rows[ROWS_PER_ROW_GROUP:2 * ROWS_PER_ROW_GROUP])
    # Written row groups are not kept alive in Arrow memory.
    assert pa.total_allocated_bytes() - baseline < _image_bytes(rows[:ROWS_PER_ROW_GROUP]) // 4
    assert not path.exists()
    writer.add(rows[-1])
    info = writer.close()
    assert sorted(os.listdir(path.parent)) == [path.name]
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    assert info.rows == len(rows) and info.sha256 == sha256_file(path)


def test_metadata_round_trips_through_the_schema(tmp_path):
    metadata = {"plan_hash": "abc", "rows": {"cutpaste": 1}, "failures": []}
    path = tmp_path / SHARD
    rows = _rows(3)
    with ShardWriter(path) as writer:
        for row in rows:
            writer.add(row)
        writer.close(metadata)
    assert read_shard_metadata(path) == metadata
    schema = pq.read_schema(path)
    assert schema.metadata[b"maphc2f"] == encode_metadata(metadata)
    assert schema.metadata[b"huggingface"] == huggingface_metadata()
    assert schema.equals(arrow_schema(metadata), check_metadata=True)
    # The stored Arrow schema is what pyarrow itself writes for the full schema.
    sink = pa.BufferOutputStream()
    pq.write_table(rows_to_table(rows, metadata), sink)
    expected = pq.ParquetFile(pa.BufferReader(sink.getvalue())).metadata.metadata[b"ARROW:schema"]
    footer = pq.ParquetFile(path).metadata.metadata
    assert footer[b"ARROW:schema"] == expected
    assert footer[b"maphc2f"] == encode_metadata(metadata)
    assert b"content_defined_chunking" in footer


def test_closing_an_empty_writer_raises_and_writes_nothing(tmp_path):
    writer = ShardWriter(tmp_path / SHARD)
    with pytest.raises(ValueError, match="empty"):
        writer.close({"plan_hash": "abc"})
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("how", ["exception", "abort", "no close"])
def test_a_discarded_shard_leaves_no_temporary_and_keeps_the_old_file(tmp_path, how):
    path = tmp_path / SHARD
    old = write_shard(_rows(2), path)
    rows = _rows(ROWS_PER_ROW_GROUP + 5, size=12, seed=1)

    def feed(writer):
        for row in rows:
            writer.add(row)
        assert _temporary(path).exists()  # a row group was written

    if how == "exception":
        with pytest.raises(RuntimeError, match="worker died"):
            with ShardWriter(path) as writer:
                feed(writer)
                raise RuntimeError("worker died")
    elif how == "abort":
        writer = ShardWriter(path)
        feed(writer)
        writer.abort()
        writer.abort()  # idempotent
    else:
        with ShardWriter(path) as writer:
            feed(writer)
    assert sorted(os.listdir(path.parent)) == [path.name]
    assert sha256_file(path) == old.sha256
    with pytest.raises(ValueError, match="closed"):
        writer.add(rows[0])


def test_a_bad_row_after_a_written_row_group_writes_nothing(tmp_path):
    rows = _rows(ROWS_PER_ROW_GROUP + 20, size=12)
    rows[ROWS_PER_ROW_GROUP + 10]["defect_type"] = "scratch"
    with pytest.raises(ValueError, match="defect_type"):
        write_shard(rows, tmp_path / SHARD)
    assert os.listdir(tmp_path / "data" / "bottle") == []


def test_a_row_of_another_category_is_refused(tmp_path):
    writer = ShardWriter(tmp_path / SHARD)
    writer.add(_rows(1)[0])
    with pytest.raises(ValueError, match="one category"):
        writer.add(_rows(1, category="wood")[0])
    assert writer.rows == 1  # the refused row was not added
    writer.abort()
    with pytest.raises(ValueError, match="data/wood"):
        ShardWriter(tmp_path / SHARD).add(_rows(1, category="wood")[0])
    with pytest.raises(ValueError, match="file name"):
        ShardWriter(tmp_path / "data" / "bottle" / "part-0.parquet")


def test_a_closed_writer_refuses_more_and_abort_keeps_the_shard(tmp_path):
    path = tmp_path / SHARD
    with ShardWriter(path) as writer:
        writer.add(_rows(1)[0])
        info = writer.close()
    writer.abort()
    assert sha256_file(path) == info.sha256
    with pytest.raises(ValueError, match="closed"):
        writer.add(_rows(1)[0])
    with pytest.raises(ValueError, match="closed"):
        writer.close()
