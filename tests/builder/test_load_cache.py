"""Loading returns the rows of the folder asked for, whatever the ``datasets`` cache holds.

``datasets`` keys its cache of a local folder on the folder's name and the
card's configurations, so two builds in folders both named ``maphc2f`` (or a
folder rebuilt with another seed) used to share one cache entry: the second
load returned the first build's rows. The card's configurations now carry the
shards' content fingerprint. One HF cache serves the whole test session (the
suite's conftest sets HF_HOME).
"""

from __future__ import annotations

import shutil

import datasets
import pyarrow.parquet as pq

from build_helpers import run_build
from maphc2f_data import load


def _shard_ids(out) -> set:
    return {sid for path in (out / "data").rglob("*.parquet")
            for sid in pq.read_table(path, columns=["sample_id"]).column("sample_id").to_pylist()}


def _loaded(ds) -> tuple:
    return set(ds["sample_id"]), ds[0]["image"].size


def test_two_datasets_and_a_rebuild_each_load_their_own_rows(tmp_path):
    a, b = tmp_path / "A" / "maphc2f", tmp_path / "B" / "maphc2f"
    assert run_build(a, "--categories", "nut", "--seed", "1", "--size", "96") == 0
    assert run_build(b, "--categories", "nut", "--seed", "2", "--size", "128") == 0
    ids_a, ids_b = _shard_ids(a), _shard_ids(b)
    assert ids_a.isdisjoint(ids_b)

    first_a = datasets.load_dataset(str(a), split="train")
    first_b = datasets.load_dataset(str(b), split="train")
    assert _loaded(first_a) == (ids_a, (96, 96))
    assert _loaded(first_b) == (ids_b, (128, 128))
    assert first_a.cache_files[0]["filename"] != first_b.cache_files[0]["filename"]
    assert _loaded(load(a)) == (ids_a, (96, 96))
    assert _loaded(load(b, category="nut")) == (ids_b, (128, 128))

    shutil.rmtree(a)  # the same folder, rebuilt with another seed
    assert run_build(a, "--categories", "nut", "--seed", "3", "--size", "96") == 0
    ids_rebuilt = _shard_ids(a)
    assert ids_rebuilt.isdisjoint(ids_a)
    assert _loaded(datasets.load_dataset(str(a), split="train"))[0] == ids_rebuilt
    assert _loaded(load(a))[0] == ids_rebuilt
