"""read_rgb / read_mask conversions, corrupt files, and path confinement."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from maphc2f_data.errors import CorruptImageError, UserError
from maphc2f_data.sources.imageio import check_relative, list_images, read_mask, read_rgb, safe_join


def _assert_rgb(rgb: np.ndarray, shape) -> None:
    assert rgb.dtype == np.uint8
    assert rgb.shape == (*shape, 3)
    assert rgb.flags.c_contiguous and rgb.flags.writeable


# -- read_rgb conversions --------------------------------------------------
def test_rgb_png_round_trips_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    rgb = read_rgb(tmp_path / "x.png")
    _assert_rgb(rgb, (5, 7))
    np.testing.assert_array_equal(rgb, pixels)


def test_grayscale_is_replicated_to_three_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    rgb = read_rgb(tmp_path / "g.png")
    _assert_rgb(rgb, (3, 4))
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], grey)


def test_grey_with_alpha_keeps_grey_and_drops_alpha(tmp_path):
    la = np.stack([np.full((2, 2), 90, np.uint8), np.zeros((2, 2), np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "la.png"), np.full((2, 2, 3), 90, np.uint8))


def test_rgba_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 10, 200, 30
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its stored colour
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    rgb = read_rgb(tmp_path / "a.png")
    _assert_rgb(rgb, (2, 3))
    np.testing.assert_array_equal(rgb, rgba[..., :3])


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_colours_are_looked_up(tmp_path, transparent):
    palette = [0, 0, 0, 255, 0, 0, 0, 128, 255] + [0] * (768 - 9)
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    options = {"transparency": 0} if transparent else {}
    image.save(tmp_path / "p.png", **options)
    # Warnings are errors in this suite: a palette with transparency must not warn.
    rgb = read_rgb(tmp_path / "p.png")
    expected = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 128, 255], [255, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(rgb, expected)


def test_sixteen_bit_is_shifted_to_eight_bit(tmp_path):
    values = np.array([[0, 255, 256, 1000, 40000, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "w.png")
    with Image.open(tmp_path / "w.png") as stored:
        assert stored.mode.startswith("I")  # really a 16-bit file
    rgb = read_rgb(tmp_path / "w.png")
    _assert_rgb(rgb, (1, 6))
    np.testing.assert_array_equal(rgb[0, :, 1], [0, 0, 1, 3, 156, 255])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_thirty_two_bit_integers_are_clipped_then_shifted(tmp_path):
    values = np.array([[-5, 512, 70000]], np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "i.tif")[0, :, 0], [0, 2, 255])


def test_float_images_are_clipped_and_rounded(tmp_path):
    values = np.array([[-3.0, 12.6, 300.0]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "f.tif")[0, :, 0], [0, 13, 255])


def test_bilevel_becomes_black_and_white(tmp_path):
    bits = np.array([[True, False, True]])
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "b.png")[0, :, 0], [255, 0, 255])


def test_cmyk_is_converted(tmp_path):
    Image.new("CMYK", (2, 2), (0, 0, 0, 0)).save(tmp_path / "c.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "c.tif"), np.full((2, 2, 3), 255, np.uint8))


# -- corrupt files -------------------------------------------------------
def _valid_bytes(fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, content",
    [
        ("truncated.png", lambda: _valid_bytes("PNG")[:200]),
        ("truncated.jpg", lambda: _valid_bytes("JPEG")[:300]),
        ("garbage.png", lambda: b"this is not an image at all"),
        ("empty.bmp", lambda: b""),
    ],
)
def test_corrupt_image_raises_one_line_error_naming_the_path(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content())
    for reader in (read_rgb, read_mask):
        with pytest.raises(CorruptImageError) as info:
            reader(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message
        assert isinstance(info.value, UserError)


def test_missing_image_is_reported_as_unreadable(tmp_path):
    with pytest.raises(CorruptImageError, match="missing.png"):
        read_rgb(tmp_path / "missing.png")


# -- read_mask -----------------------------------------------------------
def test_mask_any_nonzero_class_id_is_defect(tmp_path):
    ids = np.array([[0, 1, 2], [0, 0, 255]], np.uint8)  # VisA-style class ids look black
    Image.fromarray(ids, mode="L").save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == bool and mask.shape == (2, 3)
    np.testing.assert_array_equal(mask, ids != 0)


def test_colour_mask_ignores_alpha(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, 3] = 255  # opaque black: not defect
    rgba[0, 1, 2] = 7  # any colour channel: defect
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[False, True, False]])


def test_palette_mask_uses_indices_and_sixteen_bit_mask_works(tmp_path):
    indices = np.array([[0, 3]], np.uint8)
    palette_mask = Image.fromarray(indices, mode="P")
    palette_mask.putpalette([9, 9, 9] * 256)  # index 0 is not black: indices decide
    palette_mask.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), [[False, True]])
    Image.fromarray(np.array([[0, 1]], np.uint16)).save(tmp_path / "w.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "w.png"), [[False, True]])


# -- path confinement ----------------------------------------------------
def test_safe_join_accepts_plain_relative_paths(tmp_path):
    assert safe_join(tmp_path, "a/b.png") == tmp_path.resolve() / "a" / "b.png"
    assert check_relative("./a//b.png", tmp_path) == "a/b.png"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.png", "a/../../x.png", "a/../b.png", "", "a\x00b"])
def test_safe_join_refuses_escapes_with_one_line_naming_the_path(tmp_path, bad):
    with pytest.raises(UserError) as info:
        safe_join(tmp_path, bad)
    message = str(info.value)
    assert "\n" not in message
    assert repr(bad.strip()) in message


def test_safe_join_refuses_symlink_leaving_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    os.symlink(outside / "secret.png", root / "link.png")
    os.symlink(outside, root / "linkdir")
    (root / "inside.png").write_bytes(b"x")
    os.symlink(root / "inside.png", root / "ok.png")
    assert safe_join(root, "ok.png") == root.resolve() / "ok.png"
    for rel in ("link.png", "linkdir/secret.png"):
        with pytest.raises(UserError, match="outside the dataset root") as info:
            safe_join(root, rel)
        assert rel in str(info.value) and "\n" not in str(info.value)


def test_list_images_sorted_visible_images_only(tmp_path):
    for name in ["b.PNG", "a.jpg", ".hidden.png", "notes.txt", "sub/c.bmp", ".git/d.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert list_images(tmp_path, tmp_path) == ["a.jpg", "b.PNG"]
    assert list_images(tmp_path, tmp_path, recursive=True) == ["a.jpg", "b.PNG", "sub/c.bmp"]


def test_list_images_refuses_symlink_leaving_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", root / "escape.png")
    with pytest.raises(UserError, match="escape.png"):
        list_images(root, root)
