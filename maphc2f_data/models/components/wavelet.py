"""Single-level orthonormal Haar wavelet transform.

:func:`haar_dwt` maps ``(B, C, H, W)`` to four subbands ``LL, LH, HL, HH``,
each ``(B, C, H/2, W/2)``; :func:`haar_idwt` is its exact inverse (the
transposed filters). Both are sums and differences of the four pixels of
each 2x2 block (the filters of :func:`haar_filters` applied by hand): no
grouped convolution, whose bf16 channels-last GPU kernels are slow, and no
filter tensor copied to the device at every call. Height and width
must be even: :func:`pad_to_multiple` pads (replicate) and returns what to
crop back.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["crop_to", "haar_dwt", "haar_filters", "haar_idwt", "pad_to_multiple"]

Subbands = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def haar_filters(dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The four 2x2 orthonormal Haar filters, shape ``(4, 1, 2, 2)``: LL, LH, HL, HH."""
    return 0.5 * torch.tensor(
        [
            [[1.0, 1.0], [1.0, 1.0]],  # LL: average
            [[1.0, 1.0], [-1.0, -1.0]],  # LH: vertical detail (horizontal edges)
            [[1.0, -1.0], [1.0, -1.0]],  # HL: horizontal detail (vertical edges)
            [[1.0, -1.0], [-1.0, 1.0]],  # HH: diagonal detail
        ],
        dtype=dtype,
        device=device,
    ).unsqueeze(1)


def haar_dwt(x: torch.Tensor) -> Subbands:
    """Haar DWT of ``(B, C, H, W)`` with even ``H`` and ``W``; returns ``(LL, LH, HL, HH)``."""
    if x.dim() != 4:
        raise ValueError(f"haar_dwt expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs even height and width, got {h}x{w}; pad first (pad_to_multiple)")
    # a b / c d: the 2x2 block; LL = (a+b+c+d)/2, LH = (a+b-c-d)/2, HL = (a-b+c-d)/2, HH = (a-b-c+d)/2.
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    top_sum, top_diff, bottom_sum, bottom_diff = a + b, a - b, c + d, c - d
    return ((top_sum + bottom_sum) * 0.5, (top_sum - bottom_sum) * 0.5,
            (top_diff + bottom_diff) * 0.5, (top_diff - bottom_diff) * 0.5)


def haar_idwt(ll: torch.Tensor, lh: torch.Tensor, hl: torch.Tensor, hh: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`: four ``(B, C, h, w)`` subbands to ``(B, C, 2h, 2w)``
    (in ``ll``'s memory format)."""
    if not (ll.shape == lh.shape == hl.shape == hh.shape):
        raise ValueError("haar_idwt needs four subbands of the same shape")
    b, c, h, w = ll.shape
    low_sum, low_diff, high_sum, high_diff = ll + lh, ll - lh, hl + hh, hl - hh
    fmt = torch.channels_last if ll.is_contiguous(memory_format=torch.channels_last) and c > 1 \
        else torch.contiguous_format
    out = torch.empty((b, c, 2 * h, 2 * w), dtype=ll.dtype, device=ll.device, memory_format=fmt)
    out[..., 0::2, 0::2] = (low_sum + high_sum) * 0.5
    out[..., 0::2, 1::2] = (low_sum - high_sum) * 0.5
    out[..., 1::2, 0::2] = (low_diff + high_diff) * 0.5
    out[..., 1::2, 1::2] = (low_diff - high_diff) * 0.5
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate") -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad height and width (bottom/right) up to a multiple; returns the tensor and the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    return x[..., : size[0], : size[1]]
