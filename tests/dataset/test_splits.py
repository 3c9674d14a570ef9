"""make_splits: deterministic, nothing lost or duplicated, reversible, card updated."""

import hashlib
from collections import Counter

import datasets
import pytest
import yaml

from maphc2f_data.dataset import splits as splits_module
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.dataset.splits import is_validation, make_splits, validation_score
from maphc2f_data.dataset.validate import validate_dataset
from maphc2f_data.errors import UserError


def _rows_by_split(root):
    """{split: Counter(sample_id)} over the shards the manifest lists."""
    found = {"train": Counter(), "validation": Counter()}
    for entry in read_manifest(root)["categories"].values():
        for shard in entry["shards"]:
            for row in iter_rows(root / shard["path"], columns=["sample_id"]):
                found[shard["split"]][row["sample_id"]] += 1
    return found


def _snapshot(root):
    """sha256 of every file except the decoy cache."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".cache" not in p.parts}


def test_validation_score_is_a_stable_hash():
    assert validation_score("a", 0) == validation_score("a", 0)
    assert validation_score("a", 0) != validation_score("a", 1)
    assert 0.0 <= validation_score("x", 3) < 1.0
    scores = [validation_score(str(i), 0) for i in range(2000)]
    assert abs(sum(s < 0.25 for s in scores) / 2000 - 0.25) < 0.04


def test_split_keeps_every_row_once_and_follows_the_hash(dataset_copy, monkeypatch):
    monkeypatch.setattr(splits_module, "MAX_ROWS_PER_SHARD", 2)  # several output shards per split
    before = _rows_by_split(dataset_copy)["train"]
    summary = make_splits(dataset_copy, 0.4, seed=3)
    after = _rows_by_split(dataset_copy)
    assert after["train"] + after["validation"] == before
    assert max((after["train"] + after["validation"]).values()) == 1
    assert all(is_validation(s, 0.4, 3) for s in after["validation"])
    assert not any(is_validation(s, 0.4, 3) for s in after["train"])
    assert summary["validation"] == sum(after["validation"].values()) > 0
    assert summary["train"] + summary["validation"] == sum(before.values())
    assert validate_dataset(dataset_copy) == []
    manifest = read_manifest(dataset_copy)
    assert manifest["splits"] == {"val_fraction": 0.4, "seed": 3}
    names = sorted(p.name for p in (dataset_copy / "data" / "bottle").iterdir())
    assert names == sorted(s["path"].rsplit("/", 1)[1] for s in manifest["categories"]["bottle"]["shards"])
    assert not any(name.startswith(".") for name in names)  # no staged leftovers


def test_same_arguments_give_byte_identical_files(dataset_copy):
    make_splits(dataset_copy, 0.3, seed=1)
    first = _snapshot(dataset_copy)
    make_splits(dataset_copy, 0.3, seed=1)
    assert _snapshot(dataset_copy) == first


def test_other_fractions_then_zero_restore_train_only(dataset_copy):
    original = _rows_by_split(dataset_copy)["train"]
    make_splits(dataset_copy, 0.5, seed=0)
    half = _rows_by_split(dataset_copy)
    make_splits(dataset_copy, 0.2, seed=0)
    fifth = _rows_by_split(dataset_copy)
    assert fifth["train"] + fifth["validation"] == original
    assert set(fifth["validation"]) <= set(half["validation"])  # a smaller fraction selects a subset
    make_splits(dataset_copy, 0.0, seed=0)
    restored = _rows_by_split(dataset_copy)
    assert restored["train"] == original and not restored["validation"]
    assert read_manifest(dataset_copy)["splits"] == {"val_fraction": 0.0, "seed": None}
    assert not list((dataset_copy / "data").rglob("validation-*"))
    assert validate_dataset(dataset_copy) == []


def test_card_and_datasets_see_the_validation_split(dataset_copy):
    make_splits(dataset_copy, 0.5, seed=0)
    header = yaml.safe_load((dataset_copy / "README.md").read_text().split("---\n")[1])
    configs = {c["config_name"]: c for c in header["configs"]}
    assert [f["split"] for f in configs["all"]["data_files"]] == ["train", "validation"]
    loaded = datasets.load_dataset(str(dataset_copy))
    manifest = read_manifest(dataset_copy)
    for split in ("train", "validation"):
        expected = sum(s["rows"] for e in manifest["categories"].values() for s in e["shards"] if s["split"] == split)
        assert len(loaded[split]) == expected
    assert "falls below the fraction 0.5" in (dataset_copy / "README.md").read_text()


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2])
def test_bad_fraction_is_a_user_error(dataset_copy, fraction):
    with pytest.raises(UserError, match="val-fraction"):
        make_splits(dataset_copy, fraction, seed=0)


def test_changed_shard_stops_the_split_before_anything_is_written(dataset_copy):
    shard = dataset_copy / "data" / "candle" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    before = _snapshot(dataset_copy)
    with pytest.raises(UserError, match="changed since the build"):
        make_splits(dataset_copy, 0.3, seed=0)
    assert _snapshot(dataset_copy) == before


def test_not_a_dataset(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        make_splits(tmp_path, 0.1, seed=0)


def test_stale_staged_shards_of_a_killed_run_are_cleared(dataset_copy):
    stale = dataset_copy / "data" / "bottle" / ".validation-00000-of-00001.parquet.tmp-splits"
    stale.write_bytes(b"half a shard")
    make_splits(dataset_copy, 0.3, seed=0)
    assert not stale.exists()
    assert validate_dataset(dataset_copy) == []
