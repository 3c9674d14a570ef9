"""foreground_for (texture / known / cached / degenerate) and make_extractor."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.foreground import (
    MIN_FOREGROUND_FRACTION,
    ClassicalForeground,
    ForegroundCache,
    ForegroundExtractor,
    NoSamCheckpointWarning,
    classical_foreground,
    foreground_for,
    make_extractor,
)
from maphc2f_data.sources.base import Source, SourceImage


class StubSource(Source):
    """A source double: one texture category, rendered items know their mask."""

    name = "stub"
    texture_categories = frozenset({"carpet"})

    def __init__(self, known=None):
        super().__init__(None)
        self.known = dict(known or {})

    def known_foreground(self, item):
        return self.known.get(item.path)


class CountingExtractor:
    """Wraps a real extractor and counts calls (the cache must save them)."""

    def __init__(self, inner=None, method="classical"):
        self.inner = inner or classical_foreground
        self.method = method
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        return self.inner(image)


def _object_image(seed=0, size=64):
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 30, np.uint8)
    image[16:48, 20:44] = (210, 190, 70)
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def _item(category="screw", path="screw/train/good/000.png"):
    return SourceImage(source="stub", category=category, path=path)


def test_texture_category_is_the_whole_image_without_extracting():
    extractor = CountingExtractor()
    mask, method = foreground_for(StubSource(), _item("carpet"), _object_image(), extractor)
    assert method == "whole-image" and mask.dtype == np.bool_ and mask.shape == (64, 64) and mask.all()
    assert extractor.calls == 0


def test_known_foreground_is_resized_nearest_and_marked_rendered():
    known = np.zeros((128, 128), bool)
    known[32:96, 40:88] = True
    source = StubSource({"screw/train/good/000.png": known})
    extractor = CountingExtractor()
    mask, method = foreground_for(source, _item(), _object_image(), extractor)
    assert method == "rendered" and extractor.calls == 0
    assert mask.shape == (64, 64) and mask.dtype == np.bool_
    assert mask.sum() == 32 * 24 and mask[16:48, 20:44].all()


def test_extractor_result_is_cached_and_reused(tmp_path):
    cache = ForegroundCache(tmp_path / ".cache" / "foreground")
    extractor = CountingExtractor()
    image = _object_image()
    first, method = foreground_for(StubSource(), _item(), image, extractor, cache)
    assert method == "classical" and extractor.calls == 1
    # Another defect type / a later build on the same pixels: no recomputation.
    second, again = foreground_for(StubSource(), _item(path="elsewhere.png"), image.copy(), extractor, cache)
    assert extractor.calls == 1 and again == "classical" and np.array_equal(first, second)
    assert 0.1 < first.mean() < 0.3
    # Other pixels or another method miss.
    foreground_for(StubSource(), _item(), _object_image(seed=1), extractor, cache)
    assert extractor.calls == 2
    sam_like = CountingExtractor(method="sam-vit_b")
    foreground_for(StubSource(), _item(), image, sam_like, cache)
    assert sam_like.calls == 1
    assert sorted(p.name for p in (tmp_path / ".cache" / "foreground").iterdir()) == ["classical", "sam-vit_b"]


def test_without_cache_every_call_extracts():
    extractor = CountingExtractor()
    for _ in range(2):
        foreground_for(StubSource(), _item(), _object_image(), extractor)
    assert extractor.calls == 2


def test_cache_key_prefers_the_extractors_cache_key(tmp_path):
    cache = ForegroundCache(tmp_path)
    extractor = ClassicalForeground()
    _, method = foreground_for(StubSource(), _item(), _object_image(), extractor, cache)
    assert method == "classical"
    assert [p.name for p in tmp_path.iterdir()] == [extractor.cache_key]


@pytest.mark.parametrize(
    "make_mask",
    [
        lambda shape: np.zeros(shape, bool),
        lambda shape: np.pad(np.ones((2, 2), bool), ((0, shape[0] - 2), (0, shape[1] - 2))),
        lambda shape: np.ones(shape, bool),
    ],
    ids=["empty", "speck", "everything"],
)
def test_degenerate_results_become_the_whole_image(tmp_path, make_mask):
    assert 4 / (64 * 64) < MIN_FOREGROUND_FRACTION
    extractor = CountingExtractor(inner=lambda image: make_mask(image.shape[:2]))
    cache = ForegroundCache(tmp_path)
    for _ in range(2):  # the raw result is cached; the fallback applies on a hit too
        mask, method = foreground_for(StubSource(), _item(), _object_image(), extractor, cache)
        assert method == "whole-image" and mask.all()
    assert extractor.calls == 1


def test_extractor_returning_a_bad_mask_is_a_value_error():
    wrong_shape = CountingExtractor(inner=lambda image: np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="shape"):
        foreground_for(StubSource(), _item(), _object_image(), wrong_shape)
    wrong_dtype = CountingExtractor(inner=lambda image: np.ones(image.shape[:2], np.uint8))
    with pytest.raises(ValueError, match="bool"):
        foreground_for(StubSource(), _item(), _object_image(), wrong_dtype)
    with pytest.raises(ValueError, match="uint8"):
        foreground_for(StubSource(), _item(), _object_image().astype(np.float32), CountingExtractor())


def test_demo_source_end_to_end(tmp_path):
    from maphc2f_data.sources.demo import DemoSource

    source = DemoSource()
    cache = ForegroundCache(tmp_path)
    extractor = ClassicalForeground()
    nut = source.train_images("nut")[0]
    mask, method = foreground_for(source, nut, source.load_image(nut), extractor, cache)
    assert method == "rendered" and np.array_equal(mask, source.known_foreground(nut))
    brick = source.train_images("brick")[0]
    assert foreground_for(source, brick, source.load_image(brick), extractor, cache)[1] == "whole-image"
    coins = source.train_images("coins")[0]
    mask, method = foreground_for(source, coins, source.load_image(coins), extractor, cache)
    assert method == "classical" and 0.05 < mask.mean() < 0.95


# ---------------------------------------------------------------------------
# make_extractor
# ---------------------------------------------------------------------------
def test_no_checkpoint_warns_and_gives_the_classical_extractor():
    with pytest.warns(NoSamCheckpointWarning, match="--sam-checkpoint") as record:
        extractor = make_extractor()
    assert len(record) == 1 and issubclass(record[0].category, UserWarning)
    assert isinstance(extractor, ClassicalForeground) and isinstance(extractor, ForegroundExtractor)
    assert extractor.method == "classical"


def test_bad_model_name_is_a_user_error_listing_the_choices():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fails before any warning
        with pytest.raises(UserError, match="vit_h, vit_l, vit_b"):
            make_extractor(None, "vit_xl")


def test_missing_checkpoint_is_a_one_line_error_naming_the_path(tmp_path):
    path = tmp_path / "sam_vit_h_4b8939.pth"
    with pytest.raises(CheckpointError) as caught:
        make_extractor(path, "vit_h")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, UserError)


def test_classical_path_never_imports_torch():
    code = (
        "import sys, warnings, numpy as np\n"
        "from maphc2f_data.foreground import make_extractor\n"
        "warnings.simplefilter('ignore')\n"
        "extractor = make_extractor()\n"
        "extractor(np.zeros((32, 32, 3), np.uint8))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
