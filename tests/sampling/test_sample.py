"""The one sample path: builds, previews and the API make the same pixels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from maphc2f_data.dataset.png import decode_png, encode_png
from maphc2f_data.foreground import foreground_for
from maphc2f_data.sampling import StageTimes, load_square, make_sample, params_json, resize_label, resize_square
from maphc2f_data.sources import get_source
from maphc2f_data.synthesis import DEFECT_TYPES, synthesize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402


@pytest.fixture(scope="module")
def nut_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-path") / "maphc2f"
    assert run_build(out, "--categories", "nut") == 0
    return out


def test_make_sample_reproduces_every_built_row(nut_build):
    source = get_source("demo")
    items = {item.path: item for item in source.train_images("nut")}
    rows = [row for path in sorted((nut_build / "data").rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert len(rows) == 3 * len(items)
    for row in rows:
        image = load_square(source, items[row["source_image"]], 64)
        foreground, method = foreground_for(source, items[row["source_image"]], image, None)
        made = make_sample(image, foreground, DEFECT_TYPES[row["defect_type"]], row["seed"])
        assert encode_png(made.image) == encode_png(decode_png(row["image"]["bytes"]))
        assert np.array_equal(made.mask, decode_png(row["mask"]["bytes"]) > 0)
        assert params_json(made.params) == row["params"]
        assert (made.stage, made.contrast, made.anomaly_area) == (row["stage"], row["contrast"], row["anomaly_area"])
        assert method == row["foreground_method"]


def test_preview_goes_through_the_sample_path(monkeypatch):
    import maphc2f_data.sampling as sampling
    from maphc2f_data.preview import preview_source

    calls = []
    real = sampling.make_sample

    def spy(image, foreground, kind, seed, **kwargs):
        calls.append((image.shape, kind))
        return real(image, foreground, kind, seed, **kwargs)

    monkeypatch.setattr(sampling, "make_sample", spy)
    preview_source(get_source("demo"), ["nut", "brick"], size=64)
    assert calls == [((64, 64, 3), kind) for _ in range(2) for kind in DEFECT_TYPES]


def test_refiner_output_and_stage_are_used():
    class Invert:
        stage = "npcf"
        fingerprint = {"weights": "test"}

        def refine(self, normal, raw, mask):
            return 255 - raw

    image = get_source("demo").load_image(get_source("demo").train_images("nut")[0])
    image = resize_square(image, 64)
    foreground = np.ones((64, 64), bool)
    made = make_sample(image, foreground, "crack", 3, refiner=Invert())
    raw = synthesize("crack", image, foreground, 3)
    assert made.stage == "npcf" and np.array_equal(made.image, 255 - raw.image)
    assert np.array_equal(made.mask, raw.mask)


def test_refiner_with_a_wrong_shape_is_a_bug_not_silence():
    class Broken:
        stage = "npcf"
        fingerprint = {}

        def refine(self, normal, raw, mask):
            return raw[:-1]

    image = np.full((32, 32, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="returned"):
        make_sample(image, np.ones((32, 32), bool), "crack", 1, refiner=Broken())


def test_measure_false_skips_the_statistics_and_times_are_recorded():
    image = np.full((32, 32, 3), 128, np.uint8)
    times = StageTimes()
    made = make_sample(image, np.ones((32, 32), bool), "corrosion", 2, measure=False, times=times)
    assert made.contrast is None and made.anomaly_area is None
    assert times.seconds["synthesis"] > 0 and times.seconds["metrics"] == 0


def test_resize_square_rule():
    wide = np.zeros((40, 80, 3), np.uint8)
    assert resize_square(wide, 32).shape == (32, 32, 3)
    same = np.zeros((32, 32, 3), np.uint8)
    assert resize_square(same, 32) is not None and resize_square(same, 32).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="uint8"):
        resize_square(np.zeros((8, 8), np.float32), 4)


def test_extreme_aspect_ratios_are_centre_cropped_not_stretched():
    strip = np.zeros((16, 4096, 3), np.uint8)
    strip[:, 2048 - 16:2048 + 16] = 200  # the centre 32 columns
    out = resize_square(strip, 64)
    assert out.shape == (64, 64, 3) and out.min() == 200  # only the centre survives
    tall = np.zeros((900, 100, 3), np.uint8)
    tall[350:550] = 255
    assert resize_square(tall, 50).min() == 255
    # Moderate ratios (VisA's ~3:2) are squeezed as the benchmarks do: nothing is cut.
    visa_like = np.zeros((100, 150, 3), np.uint8)
    visa_like[:, 0] = 255
    assert resize_square(visa_like, 50)[:, 0].min() > 0  # the first column is still in the image


class BatchOnlyRefiner:
    """A refiner with ``refine_batch`` only (``refine`` fails), recording each call's size."""

    stage = "npcf"
    fingerprint: dict = {}

    def __init__(self, transform):
        self.transform, self.calls = transform, []

    def refine(self, normal, raw, mask):
        raise AssertionError("per-sample refine used although refine_batch exists")

    def refine_batch(self, normals, raws, masks):
        self.calls.append(len(raws))
        return np.stack([self.transform(n, r, m) for n, r, m in zip(normals, raws, masks)])


def test_make_samples_refines_an_image_in_one_batch_and_keeps_failures_in_place(monkeypatch):
    import maphc2f_data.sampling.sample as sample_path
    from maphc2f_data.sampling import make_samples
    from maphc2f_data.synthesis import SynthesisError

    refiner = BatchOnlyRefiner(lambda normal, raw, mask: 255 - raw)
    calls = refiner.calls

    def no_corrosion(kind, image, foreground, seed, **overrides):
        if kind == "corrosion":
            raise SynthesisError("no room (test)")
        return synthesize(kind, image, foreground, seed, **overrides)

    monkeypatch.setattr(sample_path, "synthesize", no_corrosion)
    source = get_source("demo")
    image = resize_square(source.load_image(source.train_images("nut")[0]), 64)
    foreground = np.ones((64, 64), bool)
    made = make_samples(image, foreground, [("crack", 1), ("corrosion", 2), ("deformation", 3)], refiner=refiner)
    assert calls == [2]  # one batch with the two samples that were placed
    assert isinstance(made[1], SynthesisError) and str(made[1]) == "no room (test)"
    for (kind, seed), result in ((("crack", 1), made[0]), (("deformation", 3), made[2])):
        raw = synthesize(kind, image, foreground, seed)
        assert result.stage == "npcf" and np.array_equal(result.image, 255 - raw.image)
        assert np.array_equal(result.mask, raw.mask)


def test_make_samples_batch_refines_several_images_in_one_call_with_their_own_normals():
    from maphc2f_data.sampling import make_samples, make_samples_batch

    # Depends on each sample's own normal: a wrong pairing changes the output.
    refiner = BatchOnlyRefiner(lambda normal, raw, mask: np.where(mask[..., None], 255 - raw, normal))
    calls = refiner.calls

    source = get_source("demo")
    images = [resize_square(source.load_image(item), 64) for item in source.train_images("nut")[:2]]
    foreground = np.ones((64, 64), bool)
    requests = [[("crack", 1), ("deformation", 3)], [("corrosion", 2)]]
    together = make_samples_batch([(image, foreground, r) for image, r in zip(images, requests)], refiner=refiner)
    assert calls == [3]  # one call for both images
    apart = [make_samples(image, foreground, r, refiner=refiner) for image, r in zip(images, requests)]
    assert calls[1:] == [2, 1]
    assert [len(group) for group in together] == [2, 1]
    for group_together, group_apart in zip(together, apart):
        for a, b in zip(group_together, group_apart):
            assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
            assert a.params == b.params and a.contrast == b.contrast


def test_resize_label_keeps_pixels_at_least_half_covered():
    mask = np.zeros((64, 64), bool)
    mask[8:24, 8:24] = True  # 4 x 4 target pixels, exactly
    mask[40, :] = True  # one source row: a quarter of a target pixel's height
    mask[48:51, :] = True  # three rows of four: 0.75
    small = resize_label(mask, 16)
    assert small.dtype == bool and small.shape == (16, 16)
    expected = np.zeros((16, 16), bool)
    expected[2:6, 2:6] = True
    expected[12] = True  # row 10 (a quarter covered) is not
    assert np.array_equal(small, expected)
    grown = resize_label(mask[:32, :32], 64)
    assert grown.sum() == 4 * mask[:32, :32].sum()
    with pytest.raises(ValueError, match="square"):
        resize_label(np.zeros((4, 8), bool), 2)
