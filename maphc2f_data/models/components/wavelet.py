"""Single-level orthonormal Haar wavelet transform as a grouped stride-2 convolution.

:func:`haar_dwt` maps ``(B, C, H, W)`` to four subbands ``LL, LH, HL, HH``,
each ``(B, C, H/2, W/2)``; :func:`haar_idwt` is its exact inverse (the
transposed convolution with the same orthonormal filters). Height and width
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


def _weight(channels: int, like: torch.Tensor) -> torch.Tensor:
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return haar_filters(dtype, like.device).repeat(channels, 1, 1, 1)  # (4C, 1, 2, 2)


def haar_dwt(x: torch.Tensor) -> Subbands:
    """Haar DWT of ``(B, C, H, W)`` with even ``H`` and ``W``; returns ``(LL, LH, HL, HH)``."""
    if x.dim() != 4:
        raise ValueError(f"haar_dwt expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs even height and width, got {h}x{w}; pad first (pad_to_multiple)")
    y = F.conv2d(x, _weight(c, x), stride=2, groups=c)  # (B, 4C, H/2, W/2), per channel LL,LH,HL,HH
    y = y.view(b, c, 4, h // 2, w // 2)
    return y[:, :, 0], y[:, :, 1], y[:, :, 2], y[:, :, 3]


def haar_idwt(ll: torch.Tensor, lh: torch.Tensor, hl: torch.Tensor, hh: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`: four ``(B, C, h, w)`` subbands to ``(B, C, 2h, 2w)``."""
    if not (ll.shape == lh.shape == hl.shape == hh.shape):
        raise ValueError("haar_idwt needs four subbands of the same shape")
    b, c, h, w = ll.shape
    y = torch.stack((ll, lh, hl, hh), dim=2).reshape(b, 4 * c, h, w)
    return F.conv_transpose2d(y, _weight(c, ll), stride=2, groups=c)


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
