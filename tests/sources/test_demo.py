"""The built-in demo source: listing, determinism, foregrounds and test defects."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from maphc2f_data.errors import UserError
from maphc2f_data.sources import SOURCES, SourceImage, get_source
from maphc2f_data.sources import demo
from maphc2f_data.sources.demo import DEFECTS, DemoSource, render_demo_image

RENDERED = list(demo.RENDERED_CATEGORIES)
PHOTOS = ["brick", "coffee", "coins", "grass", "gravel"]


@pytest.fixture(scope="module")
def source():
    return DemoSource()


def _render_fresh(category, split="train", defect="good", index=0):
    """Render bypassing every cache, so determinism is really re-computed."""
    demo._render_normal.cache_clear()
    return render_demo_image.__wrapped__(category, split, defect, index)


def test_registered_and_listed(source):
    assert SOURCES["demo"] is DemoSource
    assert isinstance(get_source("demo"), DemoSource)
    assert source.categories() == sorted(RENDERED + PHOTOS)
    assert source.texture_categories == {"brick", "grass", "gravel"}
    assert [c for c in source.categories() if source.is_texture(c)] == ["brick", "grass", "gravel"]
    assert source.root is None
    assert "CC0-1.0" in source.license
    assert source.pretty_name == "MaPhC2F demo source"


def test_counts_and_virtual_paths(source):
    for category in source.categories():
        train = source.train_images(category)
        assert [item.path for item in train] == [f"{category}/train/good/{i:03d}.png" for i in range(8)]
        assert all(item.split == "train" and item.defect == "good" and item.mask_path is None for item in train)
        test = source.test_images(category)
        assert [item.path for item in test] == sorted(item.path for item in test)
        good = [item for item in test if item.defect == "good"]
        bad = [item for item in test if item.defect != "good"]
        assert len(good) == 2 and all(item.mask_path is None for item in good)
        assert sorted({item.defect for item in bad}) == sorted(DEFECTS)
        assert len(bad) == 2 * len(DEFECTS)
        for item in bad:
            match = re.fullmatch(rf"{category}/test/(\w+)/(\d{{3}})\.png", item.path)
            assert match and match[1] == item.defect
            assert item.mask_path == f"{category}/ground_truth/{item.defect}/{match[2]}_mask.png"


def test_images_are_512_rgb_uint8(source):
    for category in source.categories():
        image = source.load_image(source.train_images(category)[0])
        assert image.dtype == np.uint8 and image.shape == (512, 512, 3)
        assert image.std() > 5  # not a blank canvas


@pytest.mark.parametrize("category", ["nut", "bottle_cap", "capsule", "pcb", "coffee", "brick"])
def test_rendering_is_deterministic(category):
    first = _render_fresh(category, "train", "good", 3).image
    second = _render_fresh(category, "train", "good", 3).image
    assert first.tobytes() == second.tobytes()
    other = _render_fresh(category, "train", "good", 4).image
    assert other.tobytes() != first.tobytes()


def test_defective_images_are_deterministic():
    for defect in DEFECTS:
        first = _render_fresh("capsule", "test", defect, 1)
        second = _render_fresh("capsule", "test", defect, 1)
        assert first.image.tobytes() == second.image.tobytes()
        assert np.array_equal(first.defect_mask, second.defect_mask)


def test_loaded_arrays_are_private_copies(source):
    item = source.train_images("nut")[0]
    image = source.load_image(item)
    image[:] = 0
    assert source.load_image(item).any()


@pytest.mark.parametrize("category", RENDERED)
def test_rendered_foregrounds_are_plausible(source, category):
    for item in source.train_images(category)[:3]:
        image = source.load_image(item).astype(np.float64)
        foreground = source.known_foreground(item)
        assert foreground.dtype == np.bool_ and foreground.shape == (512, 512)
        assert 0.05 < foreground.mean() < 0.9
        # The object looks different from what surrounds it...
        inside = image[foreground].mean(axis=0)
        outside = image[~foreground].mean(axis=0)
        assert np.abs(inside - outside).max() > 20
        # ...and the mask's edge sits on an image edge (gradient peaks there).
        edge = foreground ^ (cv2.erode(foreground.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        gradient = np.abs(cv2.Laplacian(image.mean(axis=2), cv2.CV_64F, ksize=3))
        assert gradient[edge].mean() > 2 * gradient[~edge].mean()


def test_photos_have_no_known_foreground(source):
    for category in PHOTOS:
        assert source.known_foreground(source.train_images(category)[0]) is None


@pytest.mark.parametrize("category", RENDERED + PHOTOS)
def test_test_defects_are_labelled_where_the_image_changed(source, category):
    for item in source.test_images(category):
        if item.defect == "good":
            assert source.load_mask(item) is None
            continue
        if not item.path.endswith("000.png"):
            continue
        rendered = render_demo_image(category, "test", item.defect, 0)
        image = source.load_image(item)
        mask = source.load_mask(item)
        assert mask.dtype == np.bool_ and mask.shape == (512, 512)
        assert 30 <= mask.sum() < 0.1 * mask.size, item.path
        diff = np.abs(image.astype(int) - rendered.clean.astype(int)).max(axis=2)
        assert diff[mask].mean() > 4, item.path
        # Pixels clearly away from the label are (nearly) untouched.
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert diff[~near].max() <= 12, item.path
        if category in RENDERED:
            foreground = source.known_foreground(item)
            if item.defect == "missing":
                assert not (foreground & mask).any()  # the piece is gone from the object
            else:
                assert (mask <= foreground).all()  # defects sit on the object


def test_defect_clean_image_is_a_normal_test_render():
    rendered = render_demo_image("nut", "test", "dent", 1)
    assert rendered.defect_mask is not None
    assert not np.array_equal(rendered.image, rendered.clean)
    # No test image repeats a training image.
    train = {render_demo_image("nut", "train", "good", i).image.tobytes() for i in range(8)}
    assert rendered.clean.tobytes() not in train


@pytest.mark.parametrize(
    "path",
    ["nut/train/good/008.png", "bogus/train/good/000.png", "nut/test/crack/000.png", "nut/train/dent/000.png",
     "../nut/train/good/000.png", "nut/test/good/002.png", "/abs/nut.png"],
)
def test_unknown_image_paths_are_user_errors(source, path):
    with pytest.raises(UserError) as info:
        source.load_image(SourceImage(source="demo", category="nut", path=path))
    assert "\n" not in str(info.value)


def test_unknown_mask_paths_and_categories_are_user_errors(source):
    item = SourceImage(source="demo", category="nut", path="nut/test/dent/000.png", split="test",
                       defect="dent", mask_path="nut/ground_truth/dent/005_mask.png")
    with pytest.raises(UserError):
        source.load_mask(item)
    with pytest.raises(UserError, match="bottle_cap"):
        source.train_images("screw")
    with pytest.raises(UserError):
        source.resolve("nut/train/good/000.png")


def test_package_reexports_the_public_api():
    from maphc2f_data.sources.demo import source as source_module

    expected = {
        "CATEGORIES", "DEFECTS", "IMAGE_SIZE", "MAX_TRAIN_PER_CATEGORY", "PHOTO_CATEGORIES", "RENDERED_CATEGORIES",
        "TEST_GOOD_PER_CATEGORY", "TEST_PER_DEFECT", "TEXTURE_CATEGORIES", "TRAIN_PER_CATEGORY",
        "DemoImage", "DemoSource", "held_out_defects", "held_out_normals", "image_path", "mask_path", "parse_image_path",
        "parse_mask_path", "render_demo_image", "validation_split",
    }
    assert set(demo.__all__) == expected
    assert all(getattr(demo, name) is getattr(source_module, name) for name in expected)


def test_validation_split_draws_the_test_defects_on_renders_no_other_split_uses():
    split = demo.validation_split("capsule", per_defect=2, normals=3)
    kinds = [kind for kind, _ in split]
    assert kinds == ["good"] * 3 + [d for d in demo.DEFECTS for _ in range(2)]
    for kind, item in split:
        assert item.image.shape == (512, 512, 3) and item.image.dtype == np.uint8
        if kind == "good":
            assert item.defect_mask is None and np.array_equal(item.image, item.clean)
        else:
            # The defect changes the image, and only where (or near where) the mask says.
            assert item.defect_mask.sum() >= 30
            changed = np.abs(item.image.astype(int) - item.clean.astype(int)).max(-1) > 0
            assert changed[item.defect_mask].mean() > 0.5
    again = demo.validation_split("capsule", per_defect=2, normals=3)
    assert all(np.array_equal(a.image, b.image) for (_, a), (_, b) in zip(split, again))
    source = demo.DemoSource()
    seen = [source.load_image(item) for item in source.train_images("capsule") + source.test_images("capsule")]
    seen += demo.held_out_normals("capsule", 10)
    assert not any(np.array_equal(item.image, other) for _, item in split for other in seen)
    with pytest.raises(ValueError, match="per_defect"):
        demo.validation_split("capsule", per_defect=101)
    with pytest.raises(UserError):
        demo.validation_split("screw")


def test_held_out_normals_are_new_deterministic_defect_free_renders():
    extra = demo.held_out_normals("nut", 3)
    assert len(extra) == 3 and all(image.shape == (512, 512, 3) and image.dtype == np.uint8 for image in extra)
    assert all(np.array_equal(a, b) for a, b in zip(extra, demo.held_out_normals("nut", 3)))
    source = demo.DemoSource()
    seen = [source.load_image(item) for item in source.train_images("nut") + source.test_images("nut")]
    assert not any(np.array_equal(image, other) for image in extra for other in seen)
    assert not np.array_equal(extra[0], extra[1])
    with pytest.raises(UserError):
        demo.held_out_normals("screw", 1)


def test_held_out_defects_are_test_defects_on_renders_no_split_uses():
    extra = demo.held_out_defects("pcb", per_defect=2)
    assert [kind for kind, _ in extra] == [d for d in demo.DEFECTS for _ in range(2)]
    for kind, item in extra:
        assert item.defect_mask.sum() >= 30 and not np.array_equal(item.image, item.clean)
    again = demo.held_out_defects("pcb", per_defect=2)
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.defect_mask, b.defect_mask)
               for (_, a), (_, b) in zip(extra, again))
    # Their clean renders are new: no train, test, held-out-normal or validation image starts from them.
    source = demo.DemoSource()
    seen = [source.load_image(item) for item in source.train_images("pcb")]
    seen += [demo.render_demo_image("pcb", "test", kind, index).clean
             for kind in ("good",) + tuple(demo.DEFECTS) for index in range(2)]
    seen += demo.held_out_normals("pcb", 10)
    seen += [item.clean for _, item in demo.validation_split("pcb", per_defect=2, normals=3)]
    assert not any(np.array_equal(item.clean, other) for _, item in extra for other in seen)
    with pytest.raises(ValueError, match="per_defect"):
        demo.held_out_defects("pcb", per_defect=-1)
    with pytest.raises(UserError):
        demo.held_out_defects("screw", 1)


def test_more_train_images_extend_the_split_with_new_renders():
    default, more = demo.DemoSource(), demo.DemoSource(train_count=12)
    items = more.train_images("bottle_cap")
    assert len(items) == 12 and items[:8] == default.train_images("bottle_cap")
    assert np.array_equal(more.load_image(items[3]), default.load_image(items[3]))  # image i is the same render
    extra = [more.load_image(item) for item in items[8:]]
    assert all(image.shape == (512, 512, 3) for image in extra)
    assert more.known_foreground(items[10]).any()
    # Renders no other split uses (train variants stay below the test ones).
    seen = [default.load_image(item) for item in default.train_images("bottle_cap")]
    seen += [demo.render_demo_image("bottle_cap", "test", kind, index).clean
             for kind in ("good",) + tuple(demo.DEFECTS) for index in range(2)]
    seen += demo.held_out_normals("bottle_cap", 4)
    seen += [item.clean for _, item in demo.validation_split("bottle_cap", per_defect=1, normals=4)]
    assert not any(np.array_equal(image, other) for image in extra for other in seen)
    with pytest.raises(UserError, match="train has good/000-007"):
        default.load_image(items[8])
    with pytest.raises(UserError, match="train_count"):
        demo.DemoSource(train_count=demo.MAX_TRAIN_PER_CATEGORY + 1)
