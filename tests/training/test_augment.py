"""Online augmentation: deterministic, fresh per epoch, through the build's sample path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from maphc2f_data.sampling import make_sample
from maphc2f_data.sources import get_source
from maphc2f_data.synthesis import DEFECT_TYPES
from maphc2f_data.training.augment import NORMAL, DraemStyleAnomalies, NormalPool, PhysicsAnomalies
from maphc2f_data.training.draem_style import draem_anomaly, load_textures


@pytest.fixture(scope="module")
def pool():
    return NormalPool(get_source("demo"), ["nut", "brick"], 64)


def _as_uint8(tensor):
    return (tensor.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_physics_items_are_deterministic_and_fresh_per_epoch(pool):
    data = PhysicsAnomalies(pool, seed=5, normal_ratio=0.25, length=24)
    first = [data[i] for i in range(24)]
    again = [PhysicsAnomalies(pool, seed=5, normal_ratio=0.25, length=24)[i] for i in range(24)]
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) for a, b in zip(first, again))
    data.set_epoch(1)
    assert any(not torch.equal(a["image"], data[i]["image"]) for i, a in enumerate(first))
    kinds = {item["defect_type"] for item in first}
    assert NORMAL in kinds and len(kinds - {NORMAL}) >= 2
    for item in first:
        assert (item["label"] == 1) == bool(item["mask"].sum() > 0)
        if item["defect_type"] == NORMAL:
            assert torch.equal(item["image"], item["normal"])


def test_physics_items_come_from_the_sample_path(pool, monkeypatch):
    import maphc2f_data.sampling as sampling

    calls = []
    real = sampling.make_sample

    def spy(image, foreground, kind, seed, **kwargs):
        calls.append(kind)
        return real(image, foreground, kind, seed, **kwargs)

    monkeypatch.setattr(sampling, "make_sample", spy)
    data = PhysicsAnomalies(pool, seed=1, normal_ratio=0.0, kinds=["corrosion"], length=3)
    items = [data[i] for i in range(3)]
    assert calls == ["corrosion"] * 3
    assert all(item["defect_type"] == DEFECT_TYPES.index("corrosion") for item in items)


def test_workers_see_the_same_items(pool):
    data = PhysicsAnomalies(pool, seed=2, length=8)
    serial = [data[i]["image"] for i in range(8)]
    loader = DataLoader(data, batch_size=None, num_workers=2)
    assert all(torch.equal(a, b["image"]) for a, b in zip(serial, loader))


def test_draem_style_anomalies_blend_a_texture_inside_a_perlin_mask(pool):
    textures = load_textures(size=64)
    image, foreground = pool.get(0)
    changed = 0
    for seed in range(6):
        out, mask = draem_anomaly(image, textures, np.random.default_rng(seed), foreground)
        assert out.dtype == np.uint8 and mask.dtype == bool
        assert np.array_equal(out[~mask], image[~mask])  # nothing outside the label
        assert not (mask & ~foreground).any()
        changed += int(mask.any())
    assert changed >= 3
    data = DraemStyleAnomalies(pool, textures, seed=0, normal_ratio=0.0, length=4)
    assert {data[i]["defect_type"] for i in range(4)} <= {0, NORMAL}


def test_bad_ratio_and_kinds_are_refused(pool):
    with pytest.raises(ValueError, match="normal_ratio"):
        PhysicsAnomalies(pool, seed=0, normal_ratio=1.0)
    with pytest.raises(ValueError, match="unknown anomaly types"):
        PhysicsAnomalies(pool, seed=0, kinds=["scratch"])


def test_per_kind_overrides_reach_the_generator(pool, monkeypatch):
    import maphc2f_data.sampling as sampling

    seen = []
    real = sampling.make_sample

    def spy(image, foreground, kind, seed, **kwargs):
        seen.append(kwargs)
        return real(image, foreground, kind, seed, **kwargs)

    monkeypatch.setattr(sampling, "make_sample", spy)
    data = PhysicsAnomalies(pool, seed=0, normal_ratio=0.0, kinds=["crack"], length=2,
                            overrides={"crack": {"max_darken": 0.2}})
    data[0]
    assert seen and all(call.get("max_darken") == 0.2 for call in seen)
    with pytest.raises(ValueError, match="overrides for unknown anomaly types"):
        PhysicsAnomalies(pool, seed=0, overrides={"scratch": {}})


def test_items_made_at_the_pool_size_are_resized_to_size(pool):
    from maphc2f_data.sampling import resize_label, resize_square

    small = PhysicsAnomalies(pool, seed=3, normal_ratio=0.0, kinds=["crack", "corrosion"], length=6, size=32)
    full = PhysicsAnomalies(pool, seed=3, normal_ratio=0.0, kinds=["crack", "corrosion"], length=6)
    anomalous = 0
    for index in range(6):
        item, made = small[index], full[index]  # the same anomaly, made at 64 px
        assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
        assert np.array_equal(_as_uint8(item["normal"]), resize_square(_as_uint8(made["normal"]), 32))
        label = resize_label(made["mask"][0].numpy() > 0, 32)
        if label.any():
            anomalous += 1
            assert np.array_equal(item["mask"][0].numpy() > 0, label)
            assert np.array_equal(_as_uint8(item["image"]), resize_square(_as_uint8(made["image"]), 32))
        else:  # thinner than half a pixel at 32 px: a normal item, image untouched
            assert item["defect_type"] == NORMAL and torch.equal(item["image"], item["normal"])
    assert anomalous >= 3
    with pytest.raises(ValueError, match="size must be in"):
        PhysicsAnomalies(pool, seed=0, size=128)
