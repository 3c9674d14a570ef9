"""``datasets`` loads the shards with no custom code: bare shards, card configs, bare name, helper.

The suite's conftest points HF_HOME/HF_DATASETS_CACHE at a temporary folder and
sets HF_HUB_OFFLINE/HF_DATASETS_OFFLINE, so these loads are offline and never
see a stale cache in ~/.cache.
"""

import os
import shutil

import datasets
import numpy as np
import pytest
from PIL import Image
from tiny_dataset import LAYOUT, total_rows

from maphc2f_data.dataset.load import load
from maphc2f_data.errors import UserError


def test_offline_environment_is_in_force():
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert not datasets.config.HF_DATASETS_CACHE.is_relative_to(os.path.expanduser("~/.cache"))


def _assert_decodes(ds):
    row = ds[0]
    assert isinstance(row["image"], Image.Image) and row["image"].mode == "RGB"
    assert isinstance(row["mask"], Image.Image) and row["mask"].mode == "L"
    assert set(np.unique(np.asarray(row["mask"]))) <= {0, 255}
    assert isinstance(ds.features["defect_type"], datasets.ClassLabel)
    assert ds.features["defect_type"].names == ["crack", "corrosion", "deformation"]


@pytest.fixture(scope="module")
def shards_only(built_dataset, tmp_path_factory):
    """Only data/ and the decoy .cache/ of the built dataset: no README, no manifest."""
    root = tmp_path_factory.mktemp("bare") / "shards"
    shutil.copytree(built_dataset / "data", root / "data")
    shutil.copytree(built_dataset / ".cache", root / ".cache")
    return root


def test_bare_shards_load_with_the_parquet_builder(shards_only):
    ds = datasets.load_dataset("parquet", data_files=str(shards_only / "data" / "*" / "train-*.parquet"),
                               split="train")
    assert len(ds) == total_rows()
    _assert_decodes(ds)


def test_bare_shard_folder_loads_and_ignores_the_cache(shards_only):
    ds = datasets.load_dataset(str(shards_only), split="train")
    assert len(ds) == total_rows()  # the .cache decoys (a .png, a fake shard) are not picked up
    _assert_decodes(ds)


def test_card_configs_load_all_and_each_category(built_dataset):
    everything = datasets.load_dataset(str(built_dataset), split="train")
    assert len(everything) == total_rows()
    _assert_decodes(everything)
    candle = datasets.load_dataset(str(built_dataset), "candle", split="train")
    assert set(candle["category"]) == {"candle"} and len(candle) == sum(LAYOUT["candle"][1])
    btad = datasets.load_dataset(str(built_dataset), "01", split="train")
    assert set(btad["category"]) == {"01"}


def test_bare_name_loads_from_the_parent_folder(built_dataset, monkeypatch):
    monkeypatch.chdir(built_dataset.parent)
    ds = datasets.load_dataset("maphc2f", "bottle", split="train")
    assert set(ds["category"]) == {"bottle"} and len(ds) == sum(LAYOUT["bottle"][1])
    assert sorted(datasets.load_dataset("maphc2f")) == ["train"]


def test_load_helper_resolves_relative_paths(built_dataset, monkeypatch):
    monkeypatch.chdir(built_dataset.parent)
    ds = load("maphc2f", category="01")
    assert set(ds["sample_id"]) == {f"01-{d}-{i:05d}" for i, d in enumerate(["crack", "corrosion", "deformation"])}
    assert len(load("./maphc2f", split=None)["train"]) == total_rows()


def test_load_helper_refuses_what_is_not_a_dataset(built_dataset, tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        load(tmp_path)
    with pytest.raises(UserError, match="unknown category 'wood'.*bottle"):
        load(built_dataset, category="wood")
    with pytest.raises(UserError, match="split 'validation'.*valid: \\['train'\\]"):
        load(built_dataset, split="validation")


def test_card_configs_carry_the_content_fingerprint(built_dataset, dataset_copy):
    """``datasets`` keys its cache on the card's configurations: a changed
    shard changes the fingerprint in every configuration."""
    import yaml

    from maphc2f_data.dataset.card import write_card
    from maphc2f_data.dataset.manifest import content_fingerprint, read_manifest

    def descriptions(root):
        header = yaml.safe_load((root / "README.md").read_text().split("---")[1])
        return {config["description"] for config in header["configs"]}

    manifest = read_manifest(dataset_copy)
    assert descriptions(built_dataset) == {f"MaPhC2F shards {content_fingerprint(manifest)}"}
    manifest["categories"]["candle"]["shards"][0]["sha256"] = "0" * 64
    write_card(dataset_copy, manifest)
    assert descriptions(dataset_copy) == {f"MaPhC2F shards {content_fingerprint(manifest)}"}
    assert descriptions(dataset_copy) != descriptions(built_dataset)


def test_load_helper_refuses_rows_a_stale_cache_returns(dataset_copy):
    """Shards changed behind the manifest's back: the cache still holds the
    old rows, and the helper says so instead of returning them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert len(load(dataset_copy, category="candle")) == sum(LAYOUT["candle"][1])  # fills the cache
    shard = next((dataset_copy / "data" / "candle").glob("train-*.parquet"))
    table = pq.read_table(shard)
    ids = pa.array([f"other-{sid}" for sid in table.column("sample_id").to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index("sample_id"), "sample_id", ids), shard)
    with pytest.raises(UserError, match=r"other rows than the shards of .* \(candle, train\) hold"):
        load(dataset_copy, category="candle")
