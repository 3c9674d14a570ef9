"""npcF++ building blocks: PDEWaveAttnBlock (eqs. 22-24) and RegionSynergyBlock (eq. 25).

The window helpers follow Swin Transformer's ``window_partition`` /
``window_reverse`` (microsoft/Swin-Transformer, ``models/swin_transformer.py``),
channels-last, with padding to window multiples and the padded keys masked
out of the attention.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.compose import boundary_band
from maphc2f_data.models.components.pde import laplacian
from maphc2f_data.models.components.wavelet import crop_to, haar_dwt, haar_idwt, pad_to_multiple

__all__ = ["ConvBlock", "PDEWaveAttnBlock", "RegionSynergyBlock", "window_partition", "window_reverse"]


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PDEWaveAttnBlock(nn.Module):
    """``f_pde = f - eps_p Lap(f)`` (eq. 22, ``eps_p`` learnable), Haar DWT (eq. 23), a 3x3 convolution
    over the concatenated subbands added to them, inverse DWT (eq. 24).

    With the subband convolution at zero the block is the PDE step alone.
    Odd sizes are replicate-padded to even for the wavelet and cropped back.
    """

    def __init__(self, channels: int, eps_init: float = 0.1):
        super().__init__()
        self.eps_p = nn.Parameter(torch.tensor(float(eps_init)))
        self.subband_conv = nn.Conv2d(4 * channels, 4 * channels, 3, padding=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        f_pde = f - self.eps_p * laplacian(f)
        padded, size = pad_to_multiple(f_pde, 2)
        z = torch.cat(haar_dwt(padded), dim=1)  # (B, 4C, H/2, W/2): LL | LH | HL | HH
        z = z + self.subband_conv(z)
        return crop_to(haar_idwt(*torch.chunk(z, 4, dim=1)), size)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, H, W, C)`` with ``H, W`` multiples of ``window`` -> ``(B * nW, window * window, C)``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, window * window, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


class RegionSynergyBlock(nn.Module):
    """Eq. 25: ``z_N + gamma * CrossAttn(z_N, z_A) * B_mask``.

    Single-head attention inside non-overlapping ``window x window`` windows:
    queries from the normal features, keys and values from the anomaly
    features. ``B_mask`` is the band of ``boundary_px`` (full-resolution
    pixels) either side of the mask border, max-pooled to the feature size.
    ``gamma`` starts at 0, so a new block is the identity.
    """

    def __init__(self, channels: int, window: int = 16, boundary_px: int = 8):
        super().__init__()
        self.window = window
        self.boundary_px = boundary_px
        self.norm_n = nn.LayerNorm(channels)
        self.norm_a = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(channels, 2 * channels)
        self.proj = nn.Linear(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def band(self, mask: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        band = boundary_band(mask, self.boundary_px)
        return F.adaptive_max_pool2d(band, size)

    def cross_attention(self, z_n: torch.Tensor, z_a: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z_n.shape
        ws = self.window
        pad_h, pad_w = (-h) % ws, (-w) % ws
        qn = F.pad(self.norm_n(z_n.permute(0, 2, 3, 1)), (0, 0, 0, pad_w, 0, pad_h))
        ka = F.pad(self.norm_a(z_a.permute(0, 2, 3, 1)), (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        q = window_partition(self.q(qn), ws)  # (B*nW, N, C)
        k, v = window_partition(self.kv(ka), ws).chunk(2, dim=-1)
        attn_mask = None
        if pad_h or pad_w:
            valid = torch.zeros(1, hp, wp, 1, dtype=torch.bool, device=z_n.device)
            valid[:, :h, :w] = True
            valid = window_partition(valid.expand(b, hp, wp, 1), ws)[..., 0]  # (B*nW, N)
            attn_mask = valid[:, None, :]  # every window holds at least one real pixel
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = window_reverse(self.proj(out), ws, hp, wp)[:, :h, :w]
        return out.permute(0, 3, 1, 2)

    def forward(self, z_n: torch.Tensor, z_a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        gate = self.band(mask, z_n.shape[-2:]).to(z_n.dtype)
        return z_n + self.gamma * self.cross_attention(z_n, z_a) * gate
