"""Planning: sample ids and seeds, round-robin assignment, shard tasks, paper counts."""

import hashlib
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from fake_trees import make_btad_tree, make_mvtec_tree, make_visa_tree  # noqa: E402

from maphc2f_data.builder.paper_counts import DEFECT_TYPES, PAPER_COUNTS  # noqa: E402
from maphc2f_data.builder.plan import (  # noqa: E402
    BuildConfig,
    bytes_fingerprint,
    check_config,
    default_rows_per_shard,
    derive_sample,
    parse_count,
    make_plan,
    plan_category,
    plan_hash,
    resolve_count,
    shard_tasks,
)
from maphc2f_data.errors import UserError  # noqa: E402
from maphc2f_data.sources import get_source  # noqa: E402
from maphc2f_data.sources.base import SourceImage  # noqa: E402


def _items(n, category="cat"):
    return [SourceImage("folder", category, f"{category}/img_{i:02d}.png") for i in range(n)]


# -- identity --------------------------------------------------------------

def test_sample_id_and_seed_follow_the_documented_sha256_derivation():
    text = "\x1f".join(["maphc2f-sample-v1", "7", "mvtec", "bottle", "crack", "bottle/train/good/000.png", "2"])
    digest = hashlib.sha256(text.encode()).digest()
    sample_id, seed = derive_sample(7, "mvtec", "bottle", "crack", "bottle/train/good/000.png", 2)
    assert sample_id == digest[:12].hex()
    assert seed == int.from_bytes(digest[12:20], "big") >> 1
    assert len(sample_id) == 24 and 0 <= seed < 2 ** 63


def test_every_input_of_the_identity_matters():
    base = (0, "mvtec", "bottle", "crack", "bottle/train/good/000.png", 0)
    variants = [
        (1,) + base[1:], base[:1] + ("visa",) + base[2:], base[:2] + ("cable",) + base[3:],
        base[:3] + ("corrosion",) + base[4:], base[:4] + ("bottle/train/good/001.png", 0), base[:5] + (1,),
    ]
    ids = {derive_sample(*base)[0]} | {derive_sample(*v)[0] for v in variants}
    seeds = {derive_sample(*base)[1]} | {derive_sample(*v)[1] for v in variants}
    assert len(ids) == len(seeds) == 7


# -- assignment ------------------------------------------------------------

def test_round_robin_over_sorted_images_in_shard_order():
    items = list(reversed(_items(3)))  # given unsorted: the plan sorts by path
    plan = plan_category("folder", "cat", items, {"crack": 7, "corrosion": 2, "deformation": 0}, 0)
    assert plan.source_images == 3
    uses = [(s.item.path[-6:-4], s.defect_type, s.repeat) for s in plan.samples]
    assert uses == [
        ("00", "crack", 0), ("00", "crack", 1), ("00", "crack", 2), ("00", "corrosion", 0),
        ("01", "crack", 0), ("01", "crack", 1), ("01", "corrosion", 0),
        ("02", "crack", 0), ("02", "crack", 1),
    ]
    assert len({s.sample_id for s in plan.samples}) == 9
    assert plan.summary() == {"source": "folder", "source_images": 3, "crack": 7, "corrosion": 2, "deformation": 0}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), count=st.integers(0, 40))
def test_counts_are_exact_and_images_used_evenly(n, count):
    plan = plan_category("folder", "cat", _items(n), {"crack": count, "corrosion": 1, "deformation": 0}, 3)
    cracks = [s for s in plan.samples if s.defect_type == "crack"]
    assert len(cracks) == count
    uses = {}
    for s in cracks:
        uses[s.item.path] = uses.get(s.item.path, 0) + 1
    assert not uses or max(uses.values()) - min(uses.values()) <= 1
    assert len(uses) == min(n, count)
    assert len({(s.item.path, s.repeat) for s in cracks}) == count


def test_category_without_images_is_a_user_error():
    with pytest.raises(UserError, match="no training images"):
        plan_category("folder", "empty", [], {"crack": 1, "corrosion": 1, "deformation": 1}, 0)


# -- shards ----------------------------------------------------------------

def test_shard_tasks_chunk_in_order_and_hash_their_content():
    plan = plan_category("folder", "cat", _items(4), {"crack": 4, "corrosion": 4, "deformation": 4}, 0)
    fingerprint = {"size": 64}
    tasks = shard_tasks(plan, 5, fingerprint)
    assert [(t.index, t.total, len(t.samples)) for t in tasks] == [(0, 3, 5), (1, 3, 5), (2, 3, 2)]
    assert tuple(s for t in tasks for s in t.samples) == plan.samples
    assert tasks[1].relpath == "data/cat/train-00001-of-00003.parquet"
    assert len({t.plan_hash for t in tasks}) == 3
    again = shard_tasks(plan, 5, {"size": 64})
    assert [t.plan_hash for t in again] == [t.plan_hash for t in tasks]
    other = shard_tasks(plan, 5, {"size": 128})
    assert all(a.plan_hash != b.plan_hash for a, b in zip(tasks, other))
    payload = {"config": fingerprint, "samples": [s.key() for s in tasks[2].samples]}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert tasks[2].plan_hash == expected == plan_hash(tasks[2].samples, fingerprint)


def test_fingerprint_names_every_bytes_setting():
    a = bytes_fingerprint(BuildConfig(source="demo", size=64))
    assert a["size"] == 64 and a["foreground"] == "classical" and 0 <= a["png_compression"] <= 9
    b = bytes_fingerprint(BuildConfig(source="demo", size=64, sam_checkpoint="x.pth", sam_model="vit_b"))
    assert b["foreground"] == "sam-vit_b"
    assert bytes_fingerprint(BuildConfig(source="demo", size=64, png_compression=9)) != a


def test_rows_per_shard_shrink_for_large_images():
    from maphc2f_data.dataset.config import MAX_ROWS_PER_SHARD

    assert default_rows_per_shard(64) == default_rows_per_shard(512) == MAX_ROWS_PER_SHARD
    assert default_rows_per_shard(1024) == MAX_ROWS_PER_SHARD // 4


# -- options ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["0", "-2", "lots", "1.5"])
def test_bad_count_is_a_user_error(text):
    with pytest.raises(UserError, match="--count"):
        parse_count(text)


def test_count_auto_and_paper_resolution():
    assert parse_count(" Paper ") == "paper" and parse_count("3") == 3
    assert resolve_count(BuildConfig(source="mvtec")) == "auto"  # per category: paper or 1
    assert resolve_count(BuildConfig(source="demo")) == 1
    with pytest.raises(UserError, match="--count paper"):
        resolve_count(BuildConfig(source="demo", count="paper"))
    with pytest.raises(UserError, match="--count paper"):
        resolve_count(BuildConfig(source="folder", count="paper"))


@pytest.mark.parametrize("change, match", [
    ({"size": 31}, "--size"), ({"size": 100_000}, "between 32 and 2048"), ({"seed": -1}, "--seed"), ({"png_compression": 10}, "--png-compression"),
    ({"sam_model": "vit_x"}, "--sam-model"), ({"rows_per_shard": 0}, "--rows-per-shard"),
    ({"demo_train_count": 0}, "--demo-train-count must be an integer in \\[1, 100\\]"),
    ({"demo_train_count": 101}, "got 101"), ({"demo_train_count": True}, "--demo-train-count"),
    ({"compile": True}, "--compile needs --npcf"),
])
def test_bad_options_are_user_errors(change, match):
    with pytest.raises(UserError, match=match):
        check_config(BuildConfig(source="demo", **change))


def test_demo_plan_with_count_n_and_categories():
    source = get_source("demo")
    plan = make_plan(BuildConfig(source="demo", count=2, categories=("nut", "brick", "nut")))
    assert list(plan.categories) == ["brick", "nut"]
    n = plan.categories["nut"].source_images
    assert plan.summary()["categories"]["nut"] == {"source": "demo", "source_images": n,
                                                   "crack": 2 * n, "corrosion": 2 * n, "deformation": 2 * n}
    assert plan.total == 2 * 3 * 2 * n
    with pytest.raises(UserError, match="unknown category.*valid:"):
        make_plan(BuildConfig(source="demo", categories=("nut", "teapot")))


def test_demo_train_count_adds_images_and_keeps_the_others_samples():
    default = make_plan(BuildConfig(source="demo", count=1, categories=("nut",)))
    more = make_plan(BuildConfig(source="demo", count=1, categories=("nut",), demo_train_count=11))
    assert (default.categories["nut"].source_images, more.categories["nut"].source_images) == (8, 11)
    assert more.total == 3 * 11
    old = {tuple(sample.key()) for sample in default.categories["nut"].samples}
    new = {tuple(sample.key()) for sample in more.categories["nut"].samples}
    assert old < new
    assert {key[5] for key in new - old} == {f"nut/train/good/{i:03d}.png" for i in (8, 9, 10)}


def test_demo_train_count_is_for_the_demo_only(tmp_path):
    # Refused before the root is opened: the message names the option, not a layout.
    with pytest.raises(UserError, match="--demo-train-count is for the demo source only, not 'mvtec'"):
        make_plan(BuildConfig(source="mvtec", root=str(tmp_path / "missing"), demo_train_count=4))
    with pytest.raises(UserError, match="--demo-train-count is for the demo source only"):
        get_source("visa", tmp_path, demo_train_count=4)


# -- the paper's composition on fake trees ----------------------------------

@pytest.fixture(scope="module")
def paper_trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("paper-trees")
    small = dict(n_train=2, size=8)
    return {
        "mvtec": make_mvtec_tree(base / "mvtec", list(PAPER_COUNTS["mvtec"]), n_test_good=1, defects=("crack",),
                                 n_defect=1, **small),
        "visa": make_visa_tree(base / "visa", list(PAPER_COUNTS["visa"]), n_test_normal=1, n_anomaly=1, **small),
        "btad": make_btad_tree(base / "btad", n_test_ok=1, n_test_ko=1, **small),
    }


def test_paper_plan_reproduces_tables_7_to_9_exactly(paper_trees):
    total = 0
    for name, root in paper_trees.items():
        plan = make_plan(BuildConfig(source=name, root=str(root), count="paper"))
        summary = plan.summary()
        assert set(summary["categories"]) == set(PAPER_COUNTS[name])
        for category, entry in summary["categories"].items():
            assert {k: entry[k] for k in DEFECT_TYPES} == PAPER_COUNTS[name][category]
            assert entry["source"] == name and entry["source_images"] == 2
        # Two images instead of the real counts: warned, counts still exact.
        assert len(plan.warnings) == len(PAPER_COUNTS[name])
        assert "training images" in plan.warnings[0]
        total += summary["total"]
    assert total == 115_987


def test_paper_plan_btad_03_has_998_deformations(paper_trees):
    root = paper_trees["btad"]
    plan = make_plan(BuildConfig(source="btad", root=str(root), categories=("03",)))
    assert plan.summary() == {"total": 2998, "categories": {"03": {
        "source": "btad", "source_images": 2, "crack": 1000, "corrosion": 1000, "deformation": 998}}}
    kinds = [s.defect_type for s in plan.categories["03"].samples]
    assert kinds.count("deformation") == 998


@pytest.fixture(scope="module")
def mixed_mvtec(tmp_path_factory):
    """An MVTec-layout tree with one official and one user category."""
    return make_mvtec_tree(tmp_path_factory.mktemp("mixed") / "mvtec", ["bottle", "my_part"], n_test_good=1,
                           defects=("crack",), n_defect=1, n_train=2, size=8)


def test_own_categories_in_an_mvtec_tree_are_read(mixed_mvtec):
    plan = make_plan(BuildConfig(source="mvtec", root=str(mixed_mvtec)))  # --count auto
    summary = plan.summary()["categories"]
    assert summary["bottle"]["crack"] == PAPER_COUNTS["mvtec"]["bottle"]["crack"]  # paper counts kept
    assert {k: summary["my_part"][k] for k in DEFECT_TYPES} == {k: 2 for k in DEFECT_TYPES}  # 1 per image
    assert any("my_part: not in the paper's mvtec table" in w for w in plan.warnings)
    counted = make_plan(BuildConfig(source="mvtec", root=str(mixed_mvtec), count=3, categories=("my_part",)))
    assert counted.summary()["categories"]["my_part"]["crack"] == 6


def test_count_paper_refuses_own_categories_in_one_line(mixed_mvtec):
    with pytest.raises(UserError, match=r"my_part not in the paper's mvtec table.*--count N") as info:
        make_plan(BuildConfig(source="mvtec", root=str(mixed_mvtec), count="paper"))
    assert "\n" not in str(info.value)
    # Leaving it out with --categories builds the paper's category.
    plan = make_plan(BuildConfig(source="mvtec", root=str(mixed_mvtec), count="paper", categories=("bottle",)))
    assert list(plan.categories) == ["bottle"]


def test_a_tree_of_only_foreign_folders_says_why(tmp_path):
    (tmp_path / "parts" / "images").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    from maphc2f_data.errors import SourceLayoutError

    with pytest.raises(SourceLayoutError, match="folders notes, parts have no train/good/ sub-folder"):
        get_source("mvtec", tmp_path)
