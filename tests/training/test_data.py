"""ShardRows streams a build's rows with their normal images; NormalImages finds them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from maphc2f_data.errors import UserError
from maphc2f_data.sampling import NormalImages, load_square
from maphc2f_data.sources import get_source
from maphc2f_data.training.data import ShardRows, shard_paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("rows") / "maphc2f"
    assert run_build(out, "--categories", "nut,brick") == 0
    return out


def test_rows_cover_the_build_once_with_stable_indices(build):
    rows = list(ShardRows(build, with_normal=False))
    assert len(rows) == len(ShardRows(build, with_normal=False)) == 48
    assert sorted(r["index"] for r in rows) == list(range(48))
    assert rows[0]["image"].shape == (3, 64, 64) and rows[0]["image"].dtype == torch.float32
    assert set(torch.unique(rows[0]["mask"]).tolist()) <= {0.0, 1.0} and rows[0]["mask"].sum() > 0


def test_shuffle_is_seeded_per_epoch(build):
    a = ShardRows(build, with_normal=False, seed=3)
    first = [r["sample_id"] for r in a]
    again = [r["sample_id"] for r in ShardRows(build, with_normal=False, seed=3)]
    a.set_epoch(1)
    other = [r["sample_id"] for r in a]
    assert first == again and first != other and sorted(first) == sorted(other)
    by_index = {r["index"]: r["sample_id"] for r in ShardRows(build, with_normal=False)}
    assert all(by_index[r["index"]] == r["sample_id"] for r in ShardRows(build, with_normal=False, seed=3))


def test_normal_image_matches_the_row_outside_the_mask(build):
    for row in ShardRows(build, categories=["nut"]):
        outside = row["mask"][0] == 0
        # Outside a small dilation of the label the anomalous image is the normal one.
        from scipy import ndimage

        far = torch.from_numpy(~ndimage.binary_dilation(~outside.numpy(), iterations=3))
        assert torch.equal(row["image"][:, far], row["normal"][:, far])


def test_dataloader_workers_split_row_groups(build):
    rows = list(ShardRows(build, with_normal=False))
    loader = DataLoader(ShardRows(build, with_normal=False), batch_size=None, num_workers=2)
    assert sorted(r["index"] for r in loader) == sorted(r["index"] for r in rows)


def test_normal_images_use_the_build_resize_rule(build):
    normals = NormalImages(build)
    source = get_source("demo")
    item = source.train_images("brick")[2]
    assert np.array_equal(normals.image("brick", item.path, 64), load_square(source, item, 64))
    assert normals.source_of("brick") == ("demo", None)
    with pytest.raises(UserError, match="valid: brick, nut"):
        normals.image("teapot", item.path, 64)


def test_unknown_categories_and_splits_are_user_errors(build, tmp_path):
    with pytest.raises(UserError, match="unknown category teapot"):
        shard_paths(build, ["teapot"])
    with pytest.raises(UserError, match="no validation shards"):
        shard_paths(build, split="validation")
    with pytest.raises(UserError, match="no manifest"):
        shard_paths(tmp_path)
