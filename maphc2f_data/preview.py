"""Contact sheets: the anomalies of many categories at a glance.

One row per category, columns *original* and one per anomaly type
(:data:`maphc2f_data.synthesis.DEFECT_TYPES`: crack / corrosion / deformation),
each anomaly mask outlined, like the paper's Figs 3 and 5-7. Three entry
points:

* :func:`contact_sheet` lays out arrays you already have (pure: arrays in,
  array out);
* :func:`preview_source` synthesises one anomaly of each kind on the first
  training image of every category of a source;
* :func:`preview_dataset` shows the first row of each kind per category of a
  *built* dataset, read straight from its Parquet shards (its first column is
  the stored foreground mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from maphc2f_data.dataset.config import DATA_DIR
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.errors import CorruptImageError, UserError
from maphc2f_data.synthesis import DEFECT_TYPES

# Colours (RGB).
_BACKGROUND = (28, 28, 30)
_TEXT = (236, 236, 236)
_DIM_TEXT = (160, 160, 166)
#: Mask outlines: magenta is rare in photos of objects and textures.
OUTLINE_COLOUR = (255, 0, 255)
_PLACEHOLDER = (70, 70, 74)
_FAILED_TEXT = (255, 96, 96)
_FONT = cv2.FONT_HERSHEY_SIMPLEX

#: A sample of a row: (column title, image or None, mask or None[, note]).
Sample = Tuple
#: A row of the sheet: (label, original image, samples).
Row = Tuple[str, np.ndarray, Sequence[Sample]]


@dataclass(frozen=True)
class SheetLayout:
    """Geometry of a contact sheet for a given tile size.

    Attributes
    ----------
    tile : int
        Side of every (square) tile in pixels.
    pad : int
        Gap between tiles and around the grid.
    header : int
        Height of the band holding the column titles.
    margin : int
        Width of the left band holding the row labels.
    """

    tile: int
    pad: int
    header: int
    margin: int

    @classmethod
    def for_tile(cls, tile: int) -> "SheetLayout":
        """The layout used for ``tile``-pixel tiles (text bands scale with it)."""
        if int(tile) < 16:
            raise ValueError(f"tile must be at least 16 pixels, got {tile}")
        tile = int(tile)
        return cls(tile=tile, pad=4, header=max(22, tile // 8), margin=max(72, tile // 2))

    def shape(self, n_rows: int, n_cols: int) -> Tuple[int, int, int]:
        """(height, width, 3) of a sheet with ``n_rows`` x ``n_cols`` tiles."""
        height = self.header + self.pad + n_rows * (self.tile + self.pad)
        width = self.margin + self.pad + n_cols * (self.tile + self.pad)
        return height, width, 3

    def origin(self, row: int, col: int) -> Tuple[int, int]:
        """(y, x) of the top-left pixel of tile (row, col)."""
        return (
            self.header + self.pad + row * (self.tile + self.pad),
            self.margin + self.pad + col * (self.tile + self.pad),
        )

    @property
    def font_scale(self) -> float:
        return float(np.clip(self.tile / 256 * 0.6, 0.35, 1.0))

    @property
    def outline_thickness(self) -> int:
        return 1 if self.tile < 192 else 2


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------
def _as_rgb(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must have shape (H, W, 3) or (H, W), got {image.shape}")
    return image


def _fit(image: np.ndarray, tile: int) -> Tuple[np.ndarray, int, int]:
    """``image`` scaled to fit a ``tile`` square (aspect kept); with its (dy, dx) offset."""
    height, width = image.shape[:2]
    scale = tile / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    fitted = cv2.resize(image, size, interpolation=interpolation)
    return fitted, (tile - size[1]) // 2, (tile - size[0]) // 2


def _fit_text(text: str, width: int, scale: float, thickness: int) -> Tuple[str, float]:
    """Shrink ``scale`` (then truncate ``text``) until it fits ``width`` pixels."""
    while scale > 0.3 and cv2.getTextSize(text, _FONT, scale, thickness)[0][0] > width:
        scale *= 0.9
    while len(text) > 2 and cv2.getTextSize(text, _FONT, scale, thickness)[0][0] > width:
        text = text[:-3] + ".."
    return text, scale


def _put_centred(sheet: np.ndarray, text: str, centre_x: int, baseline_y: int, width: int, scale: float, colour) -> None:
    text, scale = _fit_text(text, width, scale, 1)
    text_width = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
    cv2.putText(sheet, text, (int(centre_x - text_width // 2), int(baseline_y)), _FONT, scale, colour, 1, cv2.LINE_AA)


def _draw_tile(sheet: np.ndarray, layout: SheetLayout, row: int, col: int, image: Optional[np.ndarray],
               mask: Optional[np.ndarray], note: Optional[str]) -> None:
    y, x = layout.origin(row, col)
    tile = layout.tile
    if image is None:
        sheet[y : y + tile, x : x + tile] = _PLACEHOLDER
        _put_centred(sheet, note or "failed", x + tile // 2, y + tile // 2, tile - 8, layout.font_scale, _FAILED_TEXT)
        return
    fitted, dy, dx = _fit(image, tile)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
        # Area-resize then threshold keeps thin masks and gives smooth outlines.
        small = cv2.resize((mask != 0).astype(np.uint8) * 255, fitted.shape[1::-1], interpolation=cv2.INTER_AREA)
        contours, _ = cv2.findContours((small >= 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours and (small > 0).any():  # thinner than a pixel at this scale
            contours, _ = cv2.findContours((small > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        fitted = np.ascontiguousarray(fitted)
        cv2.drawContours(fitted, contours, -1, OUTLINE_COLOUR, layout.outline_thickness, cv2.LINE_8)
    sheet[y + dy : y + dy + fitted.shape[0], x + dx : x + dx + fitted.shape[1]] = fitted
    if note:
        _put_centred(sheet, note, x + tile // 2, y + tile - 8, tile - 8, layout.font_scale * 0.8, _FAILED_TEXT)


def contact_sheet(rows: Sequence[Row], *, tile: int = 256, first_title: str = "original") -> np.ndarray:
    """Lay out images and outlined masks as a labelled grid.

    Parameters
    ----------
    rows : sequence of (label, original, samples)
        One row per category. ``label`` is drawn in the left band (a ``"\\n"``
        starts a second, smaller line). ``original`` is uint8 RGB (H, W, 3) or
        grey (H, W). ``samples`` is a sequence of ``(column_title, image,
        mask)`` or ``(column_title, image, mask, note)``: ``image`` uint8 RGB
        or None (a grey placeholder tile reading ``note`` or "failed"),
        ``mask`` bool (H, W) outlined in :data:`OUTLINE_COLOUR`, or None,
        ``note`` optional text drawn on the tile. Every row needs the same
        number of samples; the first row's titles head the columns.
    tile : int
        Side of the square tiles; images are scaled to fit, aspect kept.
    first_title : str
        Title of the first column (the originals).

    Returns
    -------
    ndarray of uint8, shape SheetLayout.for_tile(tile).shape(len(rows), 1 + n_samples)
        The RGB sheet.

    Raises
    ------
    ValueError
        No rows, ragged rows, or an image/mask of the wrong dtype or shape.

    Examples
    --------
    >>> image = np.zeros((32, 32, 3), np.uint8)
    >>> mask = np.zeros((32, 32), bool); mask[8:20, 8:20] = True
    >>> contact_sheet([("demo", image, [("crack", image, mask)])], tile=64).shape
    (94, 212, 3)
    """
    rows = list(rows)
    if not rows:
        raise ValueError("contact_sheet needs at least one row")
    n_samples = len(rows[0][2])
    for label, _, samples in rows:
        if len(samples) != n_samples:
            raise ValueError(f"row {label!r} has {len(samples)} samples, the first row has {n_samples}")
    layout = SheetLayout.for_tile(tile)
    sheet = np.empty(layout.shape(len(rows), 1 + n_samples), np.uint8)
    sheet[:] = _BACKGROUND

    titles = [first_title] + [str(sample[0]) for sample in rows[0][2]]
    for col, title in enumerate(titles):
        _, x = layout.origin(0, col)
        baseline = layout.header - max(4, layout.header // 4)
        _put_centred(sheet, title, x + layout.tile // 2, baseline, layout.tile - 4, layout.font_scale, _TEXT)

    for r, (label, original, samples) in enumerate(rows):
        y, _ = layout.origin(r, 0)
        lines = str(label).split("\n")
        line_height = int(30 * layout.font_scale) + 4
        top = y + layout.tile // 2 - (len(lines) - 1) * line_height // 2
        for i, line in enumerate(lines):
            scale = layout.font_scale * (1.0 if i == 0 else 0.75)
            _put_centred(sheet, line, layout.margin // 2 + layout.pad // 2, top + i * line_height,
                         layout.margin - layout.pad, scale, _TEXT if i == 0 else _DIM_TEXT)
        _draw_tile(sheet, layout, r, 0, _as_rgb(original, f"original of row {label!r}"), None, None)
        for c, sample in enumerate(samples, start=1):
            title, image, mask = sample[:3]
            note = sample[3] if len(sample) > 3 else None
            if image is not None:
                image = _as_rgb(image, f"{title} image of row {label!r}")
            _draw_tile(sheet, layout, r, c, image, mask, note)
    return sheet


# ---------------------------------------------------------------------------
# From a source
# ---------------------------------------------------------------------------
def _select_categories(available: Sequence[str], requested: Optional[Iterable[str]], where: str) -> List[str]:
    """``requested`` (in the given order, deduplicated) or all of ``available``."""
    if requested is None:
        return list(available)
    chosen = list(dict.fromkeys(requested))
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise UserError(f"unknown category {unknown[0]!r} in {where}; valid: {', '.join(available) or '(none)'}")
    return chosen


def preview_source(
    source,
    categories: Optional[Iterable[str]] = None,
    *,
    seed: int = 0,
    size: int = 256,
    extractor=None,
    refiner=None,
    progress: Optional[Callable[[List[str]], Iterable[str]]] = None,
    refiners: Optional[Sequence] = None,
) -> np.ndarray:
    """Contact sheet of one synthetic anomaly of each type per category.

    Samples are made by the build's own sample path: for every category the
    first training image is loaded and resized with
    :func:`maphc2f_data.sampling.load_square`, its foreground found with
    :func:`maphc2f_data.foreground.foreground_for`, and each type made with
    :func:`maphc2f_data.sampling.make_sample` and ``seed``. A type that
    cannot be placed (``SynthesisError``) shows a "failed" tile.

    Parameters
    ----------
    source : maphc2f_data.sources.Source
    categories : iterable of str, optional
        Subset and order of rows; default all of ``source.categories()``.
    seed : int
        Synthesis seed (same for every row and kind).
    size : int
        Working image size and tile size of the sheet.
    extractor : optional
        Foreground extractor (``maphc2f_data.foreground.make_extractor``);
        sources with known foregrounds or textures may not need one.
    refiner : maphc2f_data.refine.Refiner, optional
        Refine the samples as a build with the same refiner would.
    refiners : sequence of Refiner, optional
        One row per category and refiner (e.g. raw / npcF / npcF++ to compare
        the stages on the same raw anomalies), labelled with its stage;
        replaces ``refiner``.
    progress : callable, optional
        Wraps the category list for progress reporting (e.g. ``tqdm``).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The RGB sheet; row labels are "<category>\\n<foreground method>".

    Raises
    ------
    UserError
        Unknown category, or a category without training images.
    """
    from maphc2f_data.foreground import foreground_for
    from maphc2f_data.sampling import load_square, make_sample
    from maphc2f_data.synthesis import SynthesisError

    if int(size) < 16:
        raise UserError(f"preview size must be at least 16 pixels, got {size}")
    chosen = _select_categories(source.categories(), categories, f"source {source.name!r}")
    rows = []
    for category in progress(chosen) if progress is not None else chosen:
        items = source.train_images(category)
        if not items:
            raise UserError(f"category {category!r} of source {source.name!r} has no training images")
        item = items[0]
        image = load_square(source, item, int(size))
        foreground, method = foreground_for(source, item, image, extractor)
        for stage_refiner in (refiners if refiners else [refiner]):
            samples = []
            for kind in DEFECT_TYPES:
                try:
                    result = make_sample(image, foreground, kind, seed, refiner=stage_refiner, measure=False)
                except SynthesisError:
                    samples.append((kind, None, None, "failed"))
                    continue
                samples.append((kind, result.image, result.mask))
            label = f"{category}\n{stage_refiner.stage}" if refiners else f"{category}\n{method}"
            rows.append((label, image, samples))
    return contact_sheet(rows, tile=int(size))


# ---------------------------------------------------------------------------
# From a built dataset
# ---------------------------------------------------------------------------
def _decode_png(data: bytes, where: str) -> np.ndarray:
    """PNG bytes -> uint8 RGB (H, W, 3) or grey (H, W); errors name ``where``."""
    try:
        return decode_png(data or b"")
    except CorruptImageError as exc:
        raise CorruptImageError(f"cannot decode PNG in {where}: {exc}") from None


def _first_rows_by_kind(shards: Sequence[Path]) -> Dict[int, Dict[str, np.ndarray]]:
    """{defect_type: decoded image/mask/foreground} of the first row of each kind.

    Reads the cheap ``defect_type`` column first, then only the row groups that
    hold the wanted rows (a shard can be hundreds of MB of PNGs).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: Dict[int, Dict[str, np.ndarray]] = {}
    for shard in shards:
        try:
            parquet = pq.ParquetFile(shard)
            kinds = parquet.read(columns=["defect_type"]).column("defect_type").to_numpy(zero_copy_only=False)
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise UserError(f"cannot read shard {shard}: {' '.join(str(exc).split())[:200]}") from exc
        group_starts = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
        for kind in range(len(DEFECT_TYPES)):
            if kind in found:
                continue
            hits = np.flatnonzero(kinds == kind)
            if hits.size == 0:
                continue
            index = int(hits[0])
            group = int(np.searchsorted(group_starts, index, side="right") - 1)
            names = ["image", "mask", "foreground"]
            if "source_image" in parquet.schema_arrow.names:
                names.append("source_image")
            try:
                table = parquet.read_row_group(group, columns=names)
            except (pa.ArrowException, OSError, KeyError) as exc:
                raise UserError(f"cannot read shard {shard}: {' '.join(str(exc).split())[:200]}") from exc
            offset = index - int(group_starts[group])
            where = f"{shard} row {index}"
            found[kind] = {
                column: _decode_png(table.column(column)[offset].as_py()["bytes"], f"{where} column {column!r}")
                for column in ("image", "mask", "foreground")
            }
            if "source_image" in names:
                found[kind]["source_image"] = table.column("source_image")[offset].as_py()
        if len(found) == len(DEFECT_TYPES):
            break
    return found


def preview_dataset(
    out_dir: Union[str, Path],
    categories: Optional[Iterable[str]] = None,
    *,
    tile: int = 256,
    progress: Optional[Callable[[List[str]], Iterable[str]]] = None,
) -> np.ndarray:
    """Contact sheet of a built dataset: the first row of each kind per category.

    Parameters
    ----------
    out_dir : path
        A dataset built by ``maphc2f-build`` (shards in
        ``out_dir/data/<category>/*.parquet``).
    categories : iterable of str, optional
        Subset and order of rows; default every category with shards.
    tile : int
        Tile size of the sheet.
    progress : callable, optional
        Wraps the category list for progress reporting (e.g. ``tqdm``).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The RGB sheet. The first column is the original (normal) image the
        rows were made from, re-read from the source the manifest records
        (:class:`maphc2f_data.sampling.NormalImages`); where the source
        cannot be read here (built on another machine) it is the stored
        foreground mask instead, and the column says so. A kind with no row
        in a category shows a "missing" tile.

    Raises
    ------
    UserError
        Not a built dataset, unknown category, or an unreadable shard/PNG.
    """
    root = Path(out_dir)
    data = root / DATA_DIR
    if not data.is_dir():
        raise UserError(f"{root} is not a built MaPhC2F dataset: no {DATA_DIR}/ folder")
    available = sorted(p.name for p in data.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
    if not available:
        raise UserError(f"{data} holds no <category>/*.parquet shards")
    chosen = _select_categories(available, categories, f"dataset {root}")
    normals = _normal_images(root)
    rows = []
    originals = 0
    for category in progress(chosen) if progress is not None else chosen:
        found = _first_rows_by_kind(sorted((data / category).glob("*.parquet")))
        if not found:
            raise UserError(f"no rows with a defect_type in {data / category}")
        first = next(iter(found.values()))
        original = _original(normals, category, first)
        originals += original is not None
        samples = []
        for kind_index, kind in enumerate(DEFECT_TYPES):
            if kind_index in found:
                samples.append((kind, found[kind_index]["image"], found[kind_index]["mask"] > 0))
            else:
                samples.append((kind, None, None, "missing"))
        rows.append((category, first["foreground"] if original is None else original, samples))
    # Mixed (some sources readable here, some not): the title says both.
    title = "original" if originals == len(rows) else "foreground" if originals == 0 else "original / fg"
    return contact_sheet(rows, tile=tile, first_title=title)


def _normal_images(root: Path):
    """The dataset's NormalImages, or None when it has no usable manifest."""
    from maphc2f_data.sampling import NormalImages

    try:
        return NormalImages(root)
    except UserError:
        return None


def _original(normals, category: str, row: Dict[str, object]) -> Optional[np.ndarray]:
    """The normal image ``row`` was made from, or None when its source cannot be read here."""
    if normals is None or "source_image" not in row:
        return None
    try:
        return normals.image(category, str(row["source_image"]), int(row["image"].shape[0]))
    except UserError:
        return None
