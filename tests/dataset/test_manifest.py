"""manifest.json: canonical atomic writes, clear errors, safe shard paths."""

import json
import os

import pytest

from maphc2f_data.dataset.manifest import (
    listed_shards,
    package_versions,
    read_manifest,
    resolve_shard_path,
    write_manifest,
)
from maphc2f_data.errors import UserError


def test_round_trip_is_sorted_indented_and_atomic(tmp_path):
    manifest = {"total_rows": 3, "categories": {"b": {"shards": []}}, "name": "maphc2f", "format_version": 1}
    path = write_manifest(tmp_path, manifest)
    text = path.read_text()
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert read_manifest(tmp_path) == manifest
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_missing_manifest_is_none_and_broken_one_is_a_user_error(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a JSON object"):
        read_manifest(tmp_path)


def test_listed_shards_is_sorted_over_categories():
    manifest = {"categories": {"w": {"shards": [{"path": "data/w/train-00000-of-00001.parquet"}]},
                               "a": {"shards": [{"path": "data/a/train-00001-of-00002.parquet"},
                                                {"path": "data/a/train-00000-of-00002.parquet"}]}}}
    assert [s["path"] for s in listed_shards(manifest)] == [
        "data/a/train-00000-of-00002.parquet", "data/a/train-00001-of-00002.parquet",
        "data/w/train-00000-of-00001.parquet"]


def test_resolve_shard_path_accepts_only_shards_inside_data(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    good = resolve_shard_path(tmp_path, "data/a/train-00000-of-00001.parquet", "a")
    assert good == tmp_path / "data" / "a" / "train-00000-of-00001.parquet"
    for bad in ["../x/data/a/train-00000-of-00001.parquet", "/etc/passwd", "data/b/train-00000-of-00001.parquet",
                "data/a/../../train-00000-of-00001.parquet", "data/a/notes.txt", None]:
        assert resolve_shard_path(tmp_path, bad, "a") is None, bad
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "data" / "evil").symlink_to(outside)
    assert resolve_shard_path(tmp_path, "data/evil/train-00000-of-00001.parquet", "evil") is None


def test_package_versions_names_the_byte_shaping_packages():
    versions = package_versions()
    assert {"python", "numpy", "opencv", "scikit-image", "pyarrow", "datasets", "maphc2f-data"} <= set(versions)
    assert versions["pyarrow"][0].isdigit()
