"""Folder reader: one category, or one per sub-folder, searched recursively."""

from __future__ import annotations

import os

import pytest
from fake_trees import write_image

from maphc2f_data.errors import SourceLayoutError, UserError
from maphc2f_data.sources import get_source
from maphc2f_data.sources.folder import FolderSource

SINGLE_FILES = ["img_00.png", "img_01.png", "img_02.png", "nested/deep.jpg"]


def test_metadata():
    assert FolderSource.license == "unknown (inherits the folder's own licence)"


def test_single_category_named_after_the_folder(folder_single_root):
    source = get_source("folder", folder_single_root)
    assert source.categories() == [folder_single_root.name]
    items = source.train_images(folder_single_root.name)
    # Hidden files and notes.txt are skipped; nested images count.
    assert [item.path for item in items] == SINGLE_FILES
    assert all(item.split == "train" and item.defect == "good" for item in items)
    assert source.test_images(folder_single_root.name) == []
    assert source.load_image(items[-1]).shape == (32, 32, 3)


def test_one_category_per_subfolder(folder_multi_root):
    source = get_source("folder", folder_multi_root)
    assert source.categories() == ["alpha", "beta"]  # "gamma" holds no image
    assert [item.path for item in source.train_images("beta")] == [f"beta/{name}" for name in SINGLE_FILES]
    assert source.texture_categories == frozenset()


def test_unknown_category_lists_present_ones(folder_multi_root):
    with pytest.raises(UserError) as info:
        get_source("folder", folder_multi_root).train_images("gamma")
    message = str(info.value)
    assert "'gamma'" in message and "alpha, beta" in message and "\n" not in message


def test_no_images_is_a_layout_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceLayoutError) as info:
        get_source("folder", tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_symlink_leaving_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    write_image(root / "a.png", root)
    os.symlink(write_image(tmp_path / "secret.png", tmp_path), root / "b.png")
    source = get_source("folder", root)
    with pytest.raises(UserError, match="b.png"):
        source.train_images("root")


def test_folder_source_never_reads_test_or_ground_truth_images(tmp_path):
    """An MVTec-layout tree given as a folder source contributes train/good only, and says so."""
    from fake_trees import make_mvtec_tree

    from maphc2f_data.builder.plan import BuildConfig, make_plan

    root = make_mvtec_tree(tmp_path / "tree", ["widget"], n_train=3, n_test_good=2, defects=("crack",),
                           n_defect=2, size=8)
    source = get_source("folder", root)
    paths = [item.path for item in source.train_images("widget")]
    assert len(paths) == 3 and all("/train/good/" in path for path in paths)
    (note,) = source.notes("widget")
    assert note.startswith("widget: 6 images below test/defect/label folders were not read")
    assert "ground_truth" in source.images_read("widget")
    plan = make_plan(BuildConfig(source="folder", root=str(root)))
    assert plan.categories["widget"].source_images == 3 and note in plan.warnings


def test_folder_of_only_excluded_images_is_a_layout_error(tmp_path):
    from maphc2f_data.errors import SourceLayoutError

    (tmp_path / "cat" / "test").mkdir(parents=True)
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "cat" / "test" / "a.png")
    source = get_source("folder", tmp_path)
    with pytest.raises(SourceLayoutError, match="every image of .* lies below a test, defect or label folder"):
        source.train_images("cat")
