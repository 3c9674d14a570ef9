"""Shard writing: deterministic bytes, atomic replace, datasets' column options."""

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from tiny_dataset import make_row

from maphc2f_data.dataset import shards as shards_module
from maphc2f_data.dataset.config import ROWS_PER_ROW_GROUP
from maphc2f_data.dataset.shards import (
    ShardInfo,
    iter_rows,
    parse_shard_filename,
    read_shard_metadata,
    sha256_file,
    shard_filename,
    shard_row_count,
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
