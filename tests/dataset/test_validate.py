"""validate_dataset catches every kind of damage, one line per problem."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maphc2f_data.dataset.manifest import read_manifest, write_manifest
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.dataset.shards import iter_rows, write_shard
from maphc2f_data.dataset.validate import validate_dataset
from maphc2f_data.errors import UserError

SHARD = "data/bottle/train-00000-of-00002.parquet"


def _rewrite_shard(root, rel, change):
    """Rewrite a shard with ``change(rows)`` applied and update the manifest's hash to match."""
    path = root / rel
    rows = list(iter_rows(path))
    change(rows)
    info = write_shard(rows, path)
    manifest = read_manifest(root)
    for shard in manifest["categories"][info.category]["shards"]:
        if shard["path"] == rel:
            shard["sha256"] = info.sha256
    write_manifest(root, manifest)


def test_a_clean_dataset_has_no_problems(built_dataset):
    assert validate_dataset(built_dataset) == []


def test_flipped_byte_is_a_sha256_mismatch(dataset_copy):
    path = dataset_copy / SHARD
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = validate_dataset(dataset_copy)
    assert any(p.startswith(f"{SHARD}: sha256 mismatch") for p in problems), problems


def test_deleted_shard_is_missing(dataset_copy):
    (dataset_copy / SHARD).unlink()
    assert validate_dataset(dataset_copy) == [f"{SHARD}: listed in the manifest but missing"]


def test_unlisted_and_leftover_temporary_files_are_reported(dataset_copy):
    (dataset_copy / "data/bottle/train-00000-of-00002.parquet.tmp-123").write_bytes(b"x")
    (dataset_copy / "data/stray.txt").write_text("x")
    problems = validate_dataset(dataset_copy)
    assert problems == ["data/bottle/train-00000-of-00002.parquet.tmp-123: file in data/ not listed in the manifest",
                        "data/stray.txt: file in data/ not listed in the manifest"]


def test_non_binary_mask_and_size_mismatch_name_the_row(dataset_copy):
    def damage(rows):
        soft = np.zeros((32, 32), np.uint8)
        soft[3:6, 3:6] = 128
        rows[1]["mask"] = encode_png(soft)
        rows[2]["foreground"] = encode_png(np.ones((16, 32), bool))

    _rewrite_shard(dataset_copy, SHARD, damage)
    problems = validate_dataset(dataset_copy)
    assert f"{SHARD}: row 1: mask is not binary 0/255 (values 0, 128)" in problems
    assert f"{SHARD}: row 2: image/mask/foreground sizes differ: image 32x32, mask 32x32, foreground 32x16" in problems
    assert len(problems) == 2


def test_undecodable_png_and_gray_image_are_reported(dataset_copy):
    def damage(rows):
        rows[0]["image"] = b"\x89PNG\r\n\x1a\nbroken"
        rows[3]["image"] = encode_png(np.zeros((32, 32), np.uint8))

    _rewrite_shard(dataset_copy, SHARD, damage)
    problems = validate_dataset(dataset_copy)
    assert any(p.startswith(f"{SHARD}: row 0: image: PNG data could not be decoded") for p in problems)
    assert f"{SHARD}: row 3: image is not RGB (shape (32, 32))" in problems


def test_duplicate_sample_id_across_shards(dataset_copy):
    other = "data/bottle/train-00001-of-00002.parquet"
    first_id = next(iter_rows(dataset_copy / SHARD))["sample_id"]
    _rewrite_shard(dataset_copy, other, lambda rows: rows[0].update(sample_id=first_id))
    problems = validate_dataset(dataset_copy)
    assert problems == [f"{other}: row 0: duplicate sample_id {first_id!r} (also in {SHARD})"]


def test_manifest_row_counts_must_match(dataset_copy):
    manifest = read_manifest(dataset_copy)
    manifest["categories"]["bottle"]["shards"][0]["rows"] = 99
    manifest["categories"]["candle"]["rows"]["crack"] = 5
    write_manifest(dataset_copy, manifest)
    problems = validate_dataset(dataset_copy)
    assert f"{SHARD}: has 5 rows, manifest says 99" in problems
    assert "manifest: candle/crack lists 5 rows, shards hold 2" in problems
    assert any(p.startswith("manifest: total_rows 18, shards list 112") for p in problems)


def test_a_shard_without_the_features_metadata_is_a_schema_problem(dataset_copy):
    path = dataset_copy / SHARD
    table = pq.read_table(path).replace_schema_metadata(None)
    pq.write_table(table, path)
    manifest = read_manifest(dataset_copy)
    from maphc2f_data.dataset.shards import sha256_file

    manifest["categories"]["bottle"]["shards"][0]["sha256"] = sha256_file(path)
    write_manifest(dataset_copy, manifest)
    assert validate_dataset(dataset_copy) == [f"{SHARD}: the 'huggingface' features metadata is missing or differs"]


def test_wrong_column_type_is_a_schema_problem(dataset_copy):
    path = dataset_copy / SHARD
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index("seed"), "seed", pa.array([1.0] * table.num_rows))
    pq.write_table(table, path)
    problems = validate_dataset(dataset_copy)
    assert any(p.startswith(f"{SHARD}: schema differs") and "seed: double" in p for p in problems)


def test_manifest_problems(dataset_copy):
    manifest = read_manifest(dataset_copy)
    manifest["categories"]["bottle"]["shards"][0]["path"] = "../outside/train-00000-of-00001.parquet"
    write_manifest(dataset_copy, manifest)
    problems = validate_dataset(dataset_copy)
    assert any(p.startswith("manifest: shard path '../outside/train-00000-of-00001.parquet'") for p in problems)
    assert f"{SHARD}: file in data/ not listed in the manifest" in problems
    (dataset_copy / "manifest.json").write_text("{oops")
    assert len(validate_dataset(dataset_copy)) == 1 and "not valid JSON" in validate_dataset(dataset_copy)[0]


def test_missing_card_is_reported(dataset_copy):
    (dataset_copy / "README.md").unlink()
    assert validate_dataset(dataset_copy) == ["README.md: dataset card missing"]


def test_not_a_dataset_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        validate_dataset(tmp_path / "nope")
    with pytest.raises(UserError, match="no manifest.json"):
        validate_dataset(tmp_path)


def test_row_problems_are_capped_per_shard(dataset_copy, monkeypatch):
    from maphc2f_data.dataset import validate as validate_module

    monkeypatch.setattr(validate_module, "MAX_ROW_PROBLEMS_PER_SHARD", 2)
    _rewrite_shard(dataset_copy, SHARD, lambda rows: [row.update(sample_id="same") for row in rows])
    problems = validate_dataset(dataset_copy)
    assert problems == [f"{SHARD}: row 1: duplicate sample_id 'same' (also in {SHARD})",
                        f"{SHARD}: row 2: duplicate sample_id 'same' (also in {SHARD})",
                        f"{SHARD}: ... and 2 more row problems"]


def test_defect_type_out_of_range_is_reported(dataset_copy):
    from maphc2f_data.dataset.shards import atomic_write_bytes, sha256_file, table_to_parquet_bytes

    path = dataset_copy / SHARD
    table = pq.read_table(path)
    column = table.schema.get_field_index("defect_type")
    table = table.set_column(column, table.schema.field(column), pa.array([0, 1, 2, 7, 0], pa.int64()))
    atomic_write_bytes(table_to_parquet_bytes(table), path)
    manifest = read_manifest(dataset_copy)
    manifest["categories"]["bottle"]["shards"][0]["sha256"] = sha256_file(path)
    write_manifest(dataset_copy, manifest)
    problems = validate_dataset(dataset_copy)
    assert problems[0] == f"{SHARD}: row 3: defect_type 7 is not in 0..2"


def test_truncated_shard_is_unreadable_and_mismatched(dataset_copy):
    path = dataset_copy / SHARD
    path.write_bytes(path.read_bytes()[:200])
    problems = validate_dataset(dataset_copy)
    assert problems[0].startswith(f"{SHARD}: sha256 mismatch")
    assert problems[1].startswith(f"{SHARD}: not a readable Parquet file (")
    assert len(problems) == 2  # per-type counts of an unreadable category are not compared
