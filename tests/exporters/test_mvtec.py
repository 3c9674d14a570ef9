"""export_mvtec: train/good from the build's normals, test/good from the source's test split, masks, provenance."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from build_helpers import run_build  # on sys.path through conftest.py


from maphc2f_data.dataset.config import DEFECT_TYPES
from maphc2f_data.dataset.export import file_stem
from maphc2f_data.dataset.manifest import content_fingerprint, read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.errors import UserError
from maphc2f_data.exporters import export_mvtec
from maphc2f_data.sampling import NormalImages, load_square
from maphc2f_data.sources import get_source
from maphc2f_data.sources.demo import DemoSource

CATEGORY = "nut"  # the category of the demo_build fixture


def _rows(dataset):
    for shard in read_manifest(dataset)["categories"][CATEGORY]["shards"]:
        yield from iter_rows(dataset / shard["path"])


@pytest.fixture(scope="module")
def exported(demo_build, tmp_path_factory):
    dest = tmp_path_factory.mktemp("mvtec") / "exported"
    return dest, export_mvtec(demo_build, dest)


def test_layout_counts_and_marker(exported, demo_build):
    dest, summary = exported
    assert summary["categories"][CATEGORY] == {"train/good": 8, "test/good": 2, "corrosion": 8, "crack": 8,
                                              "deformation": 8}
    assert summary["images"] == 24 and summary["normals"] == 10
    marker = json.loads((dest / "maphc2f_export.json").read_text())
    assert marker["complete"] is True and marker["format"] == "mvtec" and marker["categories"] == [CATEGORY]
    assert marker["dataset_fingerprint"] == content_fingerprint(read_manifest(demo_build))
    assert marker["written"]["categories"] == summary["categories"]
    assert sorted(p.name for p in dest.iterdir()) == ["maphc2f_export.json", CATEGORY]


def test_test_images_and_masks_are_the_rows(exported, demo_build):
    dest, _ = exported
    for row in _rows(demo_build):
        defect = DEFECT_TYPES[row["defect_type"]]
        stem = file_stem(row["sample_id"])
        assert (dest / CATEGORY / "test" / defect / f"{stem}.png").read_bytes() == row["image"]["bytes"]
        mask = decode_png((dest / CATEGORY / "ground_truth" / defect / f"{stem}_mask.png").read_bytes())
        assert np.array_equal(mask, decode_png(row["mask"]["bytes"]))


def test_train_good_holds_each_normal_once_resized_as_the_build(exported, demo_build):
    dest, _ = exported
    used = sorted({row["source_image"] for row in _rows(demo_build)})
    normals = NormalImages(demo_build)
    files = sorted((dest / CATEGORY / "train" / "good").iterdir())
    assert [f.stem for f in files] == [Path(p).stem for p in used]
    for path, file in zip(used, files):
        written = cv2.cvtColor(cv2.imread(str(file), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(written, normals.image(CATEGORY, path, 64))


def test_test_good_comes_from_the_source_test_split_never_from_training(exported):
    dest, _ = exported
    source = get_source("demo")
    goods = [item for item in source.test_images(CATEGORY) if item.defect == "good"]
    test_good = sorted((dest / CATEGORY / "test" / "good").iterdir())
    assert len(test_good) == len(goods) == 2
    train = [decode_png(f.read_bytes()) for f in (dest / CATEGORY / "train" / "good").iterdir()]
    for item, file in zip(goods, test_good):
        image = decode_png(file.read_bytes())
        assert np.array_equal(image, load_square(source, item, 64))
        assert not any(np.array_equal(image, t) for t in train)


def test_a_build_with_more_demo_renders_exports_them_all(tmp_path):
    # The manifest records --demo-train-count, so the renders past the demo's 8 are found again.
    build = tmp_path / "maphc2f"
    assert run_build(build, "--categories", CATEGORY, "--demo-train-count", "10") == 0
    assert read_manifest(build)["categories"][CATEGORY]["demo_train_count"] == 10
    summary = export_mvtec(build, tmp_path / "exported")
    assert summary["categories"][CATEGORY]["train/good"] == 10
    last = tmp_path / "exported" / CATEGORY / "train" / "good" / "009.png"
    item = next(i for i in DemoSource(train_count=10).train_images(CATEGORY) if i.path.endswith("/009.png"))
    assert np.array_equal(decode_png(last.read_bytes()), load_square(DemoSource(train_count=10), item, 64))


def test_categories_option_and_unknown_category(demo_build, tmp_path):
    with pytest.raises(UserError, match="category 'teapot' is not in .*; valid: nut"):
        export_mvtec(demo_build, tmp_path / "a", categories=["teapot"])
    assert not (tmp_path / "a").exists()
    assert export_mvtec(demo_build, tmp_path / "b", categories=["nut"])["normals"] == 10


def test_a_dataset_whose_source_is_not_here_is_refused_before_writing_images(built_dataset, tmp_path):
    # The tiny dataset records an mvtec source without a root.
    with pytest.raises(UserError, match="writes train/good from the mvtec source images of '01'|of 'bottle'"):
        export_mvtec(built_dataset, tmp_path / "x", categories=["bottle"])
    assert not list((tmp_path / "x").rglob("*.png"))


def _folder_build(tmp_path, size):
    """A folder-source build whose 4 images are already ``size`` px PNGs (linkable) and one JPEG twice that."""
    from maphc2f_data.cli.build import main

    root = tmp_path / "photos" / "tiles"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        image = np.full((size, size, 3), 60 + 30 * i, np.uint8)
        cv2.circle(image, (size // 2, size // 2), size // 3, (200, 180, 40), -1)
        cv2.imwrite(str(root / f"{i:03d}.png"), image)
    cv2.imwrite(str(root / "big.jpg"), rng.integers(0, 255, (2 * size, 2 * size, 3), dtype=np.uint8))
    out = tmp_path / "built"
    assert main(["--source", "folder", "--root", str(tmp_path / "photos"), "--size", str(size), "--count", "1",
                 "--serial", "--no-progress", "--out", str(out)]) == 0
    return out, root


def test_link_links_normals_already_at_size_and_writes_the_rest(tmp_path):
    out, root = _folder_build(tmp_path, 64)
    summary = export_mvtec(out, tmp_path / "linked", link=True)
    good = tmp_path / "linked" / "tiles" / "train" / "good"
    assert sorted(p.name for p in good.iterdir()) == ["000.png", "001.png", "002.png", "003.png", "big.png"]
    assert summary["files"].get("hardlink", 0) + summary["files"].get("symlink", 0) == 4
    assert summary["files"]["written"] == 1
    assert os.path.samefile(good / "000.png", root / "000.png")
    assert not os.path.samefile(good / "big.png", root / "big.jpg")
    assert summary["categories"]["tiles"]["test/good"] == 0  # a folder source has no test split
    # Re-exporting over the links replaces them and never writes into the source files.
    before = (root / "000.png").read_bytes()
    export_mvtec(out, tmp_path / "linked")
    assert (root / "000.png").read_bytes() == before
    assert not os.path.samefile(good / "000.png", root / "000.png")
