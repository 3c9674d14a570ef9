"""PNG encoding: exact round trips, deterministic bytes, clear errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from maphc2f_data.dataset.png import PNG_FILTERS, decode_png, encode_png
from maphc2f_data.errors import CorruptImageError, UserError


@settings(max_examples=20, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3))), st.integers(0, 9))
def test_rgb_round_trip_is_exact_at_every_level(image, level):
    decoded = decode_png(encode_png(image, level))
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)


def test_bool_mask_is_stored_as_0_and_255_gray():
    mask = np.zeros((9, 7), dtype=bool)
    mask[2:5, 1:4] = True
    decoded = decode_png(encode_png(mask))
    assert decoded.shape == (9, 7)
    np.testing.assert_array_equal(decoded, mask.astype(np.uint8) * 255)


def test_gray_uint8_round_trip_keeps_values():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    np.testing.assert_array_equal(decode_png(encode_png(gray)), gray)


def test_channel_order_is_rgb_not_bgr():
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    from PIL import Image
    import io

    assert Image.open(io.BytesIO(encode_png(red))).getpixel((0, 0)) == (255, 0, 0)


def test_same_pixels_give_same_bytes_and_levels_trade_size():
    rng = np.random.default_rng(3)
    image = np.repeat(rng.integers(0, 256, (32, 1, 3), dtype=np.uint8), 32, axis=1)
    assert encode_png(image, 3) == encode_png(image.copy(), 3)
    assert len(encode_png(image, 0)) > len(encode_png(image, 9))


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16), np.zeros(4, np.uint8),
     np.zeros((0, 4), np.uint8)],
)
def test_unsupported_arrays_raise_value_error(array):
    with pytest.raises(ValueError, match="encode_png"):
        encode_png(array)


@pytest.mark.parametrize("level", [-1, 10, 2.5])
def test_bad_compression_level_raises(level):
    with pytest.raises(ValueError, match="compression"):
        encode_png(np.zeros((2, 2), np.uint8), level)


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_garbage_is_a_corrupt_image_user_error(data):
    with pytest.raises(CorruptImageError) as info:
        decode_png(data)
    assert isinstance(info.value, UserError)


def test_truncated_png_is_reported():
    data = encode_png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    with pytest.raises(CorruptImageError):
        decode_png(data[: len(data) // 2])


@pytest.mark.parametrize("png_filter", sorted(PNG_FILTERS))
def test_every_row_filter_round_trips_exactly(png_filter):
    image = np.random.default_rng(5).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    data = encode_png(image, 1, png_filter)
    np.testing.assert_array_equal(decode_png(data), image)
    assert data == encode_png(image.copy(), 1, png_filter)


def test_row_filters_change_the_bytes_and_unknown_ones_are_refused():
    yy, xx = np.mgrid[:64, :64]
    image = np.dstack([(xx * 4) % 256, (yy * 4) % 256, (xx + yy) % 256]).astype(np.uint8)
    assert encode_png(image, 1, "up") != encode_png(image, 1, "none")
    with pytest.raises(ValueError, match="filter"):
        encode_png(image, 1, "zigzag")
