"""Contact sheets: layout, outlines, failed tiles, demo source and built datasets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maphc2f_data.errors import CorruptImageError, UserError
from maphc2f_data.preview import (
    OUTLINE_COLOUR,
    SheetLayout,
    contact_sheet,
    preview_dataset,
    preview_source,
)
from maphc2f_data.sources.base import Source, SourceImage
from maphc2f_data.sources.demo import DemoSource
from maphc2f_data.synthesis import DEFECT_TYPES


def _tile(sheet: np.ndarray, layout: SheetLayout, row: int, col: int) -> np.ndarray:
    y, x = layout.origin(row, col)
    return sheet[y : y + layout.tile, x : x + layout.tile]


def _outline_pixels(tile: np.ndarray) -> int:
    return int(np.all(tile == OUTLINE_COLOUR, axis=2).sum())


def _square_mask(size: int, start: int, stop: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[start:stop, start:stop] = True
    return mask


# -- contact_sheet -------------------------------------------------------------
def test_sheet_shape_is_the_grid():
    grey = np.full((40, 40, 3), 90, np.uint8)
    rows = [(f"row{i}", grey, [(k, grey, None) for k in DEFECT_TYPES]) for i in range(3)]
    sheet = contact_sheet(rows, tile=64)
    layout = SheetLayout.for_tile(64)
    assert sheet.dtype == np.uint8
    assert sheet.shape == layout.shape(3, 4)
    # header 22 + pad 4 + 3 rows of (64 + 4); margin 72 + pad 4 + 4 columns of (64 + 4)
    assert sheet.shape == (22 + 4 + 3 * 68, 72 + 4 + 4 * 68, 3)


def test_tiles_hold_the_scaled_images_and_masks_are_outlined():
    red = np.zeros((50, 50, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((50, 50, 3), np.uint8)
    blue[..., 2] = 200
    mask = _square_mask(50, 10, 30)
    sheet = contact_sheet([("cat", red, [("crack", blue, mask), ("corrosion", blue, None)])], tile=100)
    layout = SheetLayout.for_tile(100)
    original = _tile(sheet, layout, 0, 0)
    assert (original == (200, 0, 0)).all()  # scaled, not outlined
    outlined = _tile(sheet, layout, 0, 1)
    assert _outline_pixels(outlined) > 100  # a ~40 px square outline at 2x
    ys, xs = np.nonzero(np.all(outlined == OUTLINE_COLOUR, axis=2))
    # The outline follows the mask: rows/cols 10..30 of 50 -> 20..60 of 100.
    assert 17 <= ys.min() <= 22 and 57 <= ys.max() <= 62
    assert 17 <= xs.min() <= 22 and 57 <= xs.max() <= 62
    assert _outline_pixels(_tile(sheet, layout, 0, 2)) == 0


def test_thin_masks_still_get_an_outline():
    image = np.full((400, 400, 3), 120, np.uint8)
    mask = np.zeros((400, 400), bool)
    mask[200, 50:350] = True  # one pixel thick: vanishes at 1/4 scale unless handled
    sheet = contact_sheet([("thin", image, [("crack", image, mask)])], tile=100)
    assert _outline_pixels(_tile(sheet, SheetLayout.for_tile(100), 0, 1)) > 20


def test_non_square_images_are_letterboxed():
    wide = np.full((30, 90, 3), 250, np.uint8)
    sheet = contact_sheet([("wide", wide, [])], tile=90)
    tile = _tile(sheet, SheetLayout.for_tile(90), 0, 0)
    assert (tile[30:60] == 250).all()
    assert (tile[:20] != 250).all() and (tile[70:] != 250).all()


def test_missing_image_is_a_labelled_placeholder():
    grey = np.full((64, 64, 3), 128, np.uint8)
    sheet = contact_sheet([("cat", grey, [("crack", None, None), ("corrosion", None, None, "missing")])], tile=96)
    layout = SheetLayout.for_tile(96)
    for col in (1, 2):
        tile = _tile(sheet, layout, 0, col)
        assert (tile == (70, 70, 74)).all(axis=2).mean() > 0.8  # the placeholder fill
        assert (tile[..., 0] > 200).sum() > 10  # the red "failed"/"missing" text


def test_labels_and_titles_are_drawn():
    grey = np.full((64, 64, 3), 0, np.uint8)
    sheet = contact_sheet([("bottle_cap\nrendered", grey, [("crack", grey, None)])], tile=64)
    layout = SheetLayout.for_tile(64)
    assert (sheet[: layout.header] > 200).any()  # column titles
    assert (sheet[layout.header :, : layout.margin] > 150).any()  # row label


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [("a", np.zeros((8, 8, 3), np.uint8), [("crack", None, None)]), ("b", np.zeros((8, 8, 3), np.uint8), [])],
        [("a", np.zeros((8, 8, 3), np.float32), [])],
        [("a", np.zeros((8, 8, 4), np.uint8), [])],
        [("a", np.zeros((8, 8, 3), np.uint8), [("crack", np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), bool))])],
    ],
)
def test_bad_rows_are_value_errors(rows):
    with pytest.raises(ValueError):
        contact_sheet(rows, tile=32)


# -- preview_source ------------------------------------------------------------
def test_preview_of_the_demo_source():
    sheet = preview_source(DemoSource(), ["nut", "brick"], seed=0, size=96)
    layout = SheetLayout.for_tile(96)
    assert sheet.shape == layout.shape(2, 1 + len(DEFECT_TYPES))
    for row in range(2):
        assert _outline_pixels(_tile(sheet, layout, row, 0)) == 0
        for col in range(1, 4):
            assert _outline_pixels(_tile(sheet, layout, row, col)) > 0, (row, DEFECT_TYPES[col - 1])
    again = preview_source(DemoSource(), ["nut", "brick"], seed=0, size=96)
    assert np.array_equal(sheet, again)


def test_preview_unknown_category_names_the_valid_ones():
    with pytest.raises(UserError, match="bottle_cap.*brick"):
        preview_source(DemoSource(), ["screw"], size=64)


class _SpeckSource(Source):
    """A flat image whose known foreground is a single pixel: nothing fits."""

    name = "speck"

    def categories(self):
        return ["speck"]

    def train_images(self, category):
        return [SourceImage(source=self.name, category=category, path="speck.png")]

    def load_image(self, item):
        return np.full((64, 64, 3), 128, np.uint8)

    def known_foreground(self, item):
        return _square_mask(64, 30, 31)


def test_kinds_that_cannot_be_placed_show_failed_tiles():
    sheet = preview_source(_SpeckSource(), size=64)
    layout = SheetLayout.for_tile(64)
    for col in range(1, 4):
        tile = _tile(sheet, layout, 0, col)
        assert (tile == (70, 70, 74)).all(axis=2).mean() > 0.8


# -- preview_dataset -----------------------------------------------------------
def _png(array: np.ndarray) -> bytes:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", array)[1].tobytes()


def _write_shard(path: Path, rows) -> None:
    """Just the columns the preview reads, one row per row group."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "image": pa.array([{"bytes": _png(r["image"]), "path": None} for r in rows], image_type),
            "mask": pa.array([{"bytes": _png(r["mask"]), "path": None} for r in rows], image_type),
            "foreground": pa.array([{"bytes": _png(r["foreground"]), "path": None} for r in rows], image_type),
            "category": pa.array([r["category"] for r in rows], pa.string()),
            "defect_type": pa.array([r["defect_type"] for r in rows], pa.int64()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=1)


def _row(category: str, kind: int, colour) -> dict:
    image = np.zeros((48, 48, 3), np.uint8)
    image[:] = colour
    return {
        "image": image,
        "mask": _square_mask(48, 8 + 8 * kind, 20 + 8 * kind).astype(np.uint8) * 255,
        "foreground": _square_mask(48, 4, 44).astype(np.uint8) * 255,
        "category": category,
        "defect_type": kind,
    }


@pytest.fixture
def built(tmp_path):
    root = tmp_path / "maphc2f"
    # "alpha": deformation in the first shard, crack later in the second; no corrosion.
    _write_shard(root / "data" / "alpha" / "train-00000-of-00002.parquet",
                 [_row("alpha", 2, (0, 0, 200)), _row("alpha", 2, (0, 0, 10))])
    _write_shard(root / "data" / "alpha" / "train-00001-of-00002.parquet",
                 [_row("alpha", 2, (0, 0, 20)), _row("alpha", 0, (200, 0, 0)), _row("alpha", 0, (10, 0, 0))])
    _write_shard(root / "data" / "beta" / "train-00000-of-00001.parquet",
                 [_row("beta", k, (0, 150, 0)) for k in (1, 0, 2)])
    return root


def test_preview_dataset_takes_the_first_row_of_each_kind(built):
    sheet = preview_dataset(built, tile=48)
    layout = SheetLayout.for_tile(48)
    assert sheet.shape == layout.shape(2, 4)
    # Row 0 is "alpha" (sorted): the foreground column shows the stored mask as grey.
    foreground = _tile(sheet, layout, 0, 0)
    assert (foreground[4:44, 4:44] == 255).all() and (foreground[:4] == 0).all()
    crack = _tile(sheet, layout, 0, 1)
    assert (crack[30:40, 30:40] == (200, 0, 0)).all()  # the first crack row, from the second shard
    assert _outline_pixels(crack) > 0
    corrosion = _tile(sheet, layout, 0, 2)
    assert (corrosion == (70, 70, 74)).all(axis=2).mean() > 0.8  # none in "alpha": placeholder
    deformation = _tile(sheet, layout, 0, 3)
    assert (deformation[40:46, 40:46] == (0, 0, 200)).all()  # the very first row
    for col in (1, 2, 3):
        assert _outline_pixels(_tile(sheet, layout, 1, col)) > 0


def test_preview_dataset_category_subset_and_errors(built, tmp_path):
    assert preview_dataset(built, ["beta"], tile=32).shape == SheetLayout.for_tile(32).shape(1, 4)
    with pytest.raises(UserError, match="alpha, beta"):
        preview_dataset(built, ["gamma"], tile=32)
    with pytest.raises(UserError, match="no data/"):
        preview_dataset(tmp_path / "nowhere", tile=32)


def test_preview_dataset_reports_corrupt_png_and_shard(tmp_path):
    root = tmp_path / "bad"
    row = _row("alpha", 0, (1, 2, 3))
    _write_shard(root / "data" / "alpha" / "train-00000-of-00001.parquet", [row])
    table = pq.read_table(root / "data" / "alpha" / "train-00000-of-00001.parquet")
    image_type = table.schema.field("image").type
    table = table.set_column(0, "image", pa.array([{"bytes": b"not a png", "path": None}], image_type))
    pq.write_table(table, root / "data" / "alpha" / "train-00000-of-00001.parquet")
    with pytest.raises(CorruptImageError, match="train-00000-of-00001.parquet row 0 column 'image'"):
        preview_dataset(root, tile=32)
    (root / "data" / "alpha" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match="cannot read shard"):
        preview_dataset(root, tile=32)


def test_preview_dataset_reads_a_real_built_shard(tmp_path):
    from tiny_dataset import make_dataset

    root = tmp_path / "maphc2f"
    make_dataset(root)
    sheet = preview_dataset(root, ["bottle"], tile=32)
    layout = SheetLayout.for_tile(32)
    assert sheet.shape == layout.shape(1, 4)
    for col in (1, 2, 3):
        assert _outline_pixels(_tile(sheet, layout, 0, col)) > 0


def test_preview_of_a_build_shows_the_original_image(tmp_path):
    """A built dataset's sheet starts with the normal image the rows were made from."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "builder"))
    from build_helpers import run_build

    from maphc2f_data.sampling import load_square

    out = tmp_path / "maphc2f"
    assert run_build(out, "--categories", "nut") == 0
    sheet = preview_dataset(out, tile=64)
    layout = SheetLayout.for_tile(64)
    source = DemoSource()
    expected = load_square(source, source.train_images("nut")[0], 64)
    assert np.array_equal(_tile(sheet, layout, 0, 0), expected)
