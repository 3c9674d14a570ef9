"""SynergyRefineNet, the npcF++ network (paper Sec. 3.2.3, supp. 6.2 eq. 26, Algorithm 8).

Two encoders (normal image ``x`` and coarse anomaly ``b1``), each
``EncX1 -> Pool -> EncX2 -> Pool -> BottX`` with a CNN block followed by a
PDEWaveAttnBlock at every scale; the bottleneck outputs are fused by a 1x1
convolution (the shared bottleneck). Decoding is symmetric: at each scale
both streams are upsampled, concatenated with their own encoder skip,
decoded (CNN + PDEWaveAttn) and merged by a RegionSynergyBlock (queries
from the normal stream, keys/values from the anomaly stream); as in
Algorithm 8 the next scale's two streams both start from that synergy
output. A final 3x3 convolution plus sigmoid gives ``u``.

Inputs of any size are replicate-padded to a multiple of 8 and the output
is cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import torch
from torch import nn

from maphc2f_data.models.components.wavelet import crop_to, pad_to_multiple
from maphc2f_data.models.npcf.torch_model import TrainingDefaults, _logit
from maphc2f_data.models.npcfpp.blocks import ConvBlock, PDEWaveAttnBlock, RegionSynergyBlock
from maphc2f_data.models.registry import register_model, replace_config

__all__ = ["NPCFPP_TRAINING", "NpcfppConfig", "SynergyRefineNet", "npcfpp", "npcfpp_tiny"]

# Paper Sec. 4 "Implementation details": batch 32, 50 epochs for npcF++, 512x512.
NPCFPP_TRAINING = TrainingDefaults(batch_size=32, epochs=50, image_size=512)


@dataclass(frozen=True)
class NpcfppConfig:
    """SynergyRefineNet architecture.

    widths: channels at full, 1/2 and 1/4 resolution (encoder 1, encoder 2, bottleneck).
    window: side of the local attention windows of the synergy blocks (Swin-style, 16).
    boundary_px: half-width in full-resolution pixels of the mask-border band
        that gates the synergy blocks (``B_mask`` of eq. 25).
    mask_channel: append the mask to both encoders' inputs (not in Algorithm 8,
        which only shows the mask reaching the synergy blocks; without it the
        decoder cannot tell the mask interior from the normal region).
    residual: ``u = sigmoid(final + logit(b1))`` with the final convolution
        zero-initialised, so an untrained model returns npcF's output and
        training learns the fine correction. (Not ``x (1-M) + b1 M``: npcF
        softens the border on *both* sides of the mask edge, and re-pasting
        the original outside the mask would restore the hard seam.) ``False`` gives the
        paper's plain ``sigmoid(final)``.
    pde_eps: initial value of the learnable ``eps_p`` of eq. 22.
    """

    widths: Tuple[int, int, int] = (32, 64, 128)
    window: int = 16
    boundary_px: int = 8
    mask_channel: bool = True
    residual: bool = True
    pde_eps: float = 0.1

    def __post_init__(self) -> None:
        if len(self.widths) != 3 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"NpcfppConfig.widths must be three positive ints, got {self.widths}")
        if self.window < 1 or self.boundary_px < 0:
            raise ValueError("NpcfppConfig.window must be >= 1 and boundary_px >= 0")

    size_multiple = 8  # two poolings, then an even size for the bottleneck's wavelet


def _enc(in_ch: int, out_ch: int, eps: float) -> nn.Sequential:
    return nn.Sequential(ConvBlock(in_ch, out_ch), PDEWaveAttnBlock(out_ch, eps))


class SynergyRefineNet(nn.Module):
    """npcF++ network; ``forward(x, b1, mask) -> u`` with ``u`` in ``[0, 1]``, shape of ``x``."""

    def __init__(self, config: NpcfppConfig = NpcfppConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = (int(w) for w in config.widths)
        in_ch = 3 + (1 if config.mask_channel else 0)
        eps = config.pde_eps
        self.pool = nn.MaxPool2d(2)
        # Eq. 26: dual encoders and bottlenecks.
        self.enc_n1, self.enc_a1 = _enc(in_ch, c1, eps), _enc(in_ch, c1, eps)
        self.enc_n2, self.enc_a2 = _enc(c1, c2, eps), _enc(c1, c2, eps)
        self.bott_n, self.bott_a = _enc(c2, c3, eps), _enc(c2, c3, eps)
        self.bott_fuse = nn.Conv2d(2 * c3, c3, 1)  # the shared bottleneck
        # Algorithm 8, scale 1 (1/2 resolution).
        self.up_n1, self.up_a1 = nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.dec_n1, self.dec_a1 = _enc(2 * c2, c2, eps), _enc(2 * c2, c2, eps)
        self.synergy1 = RegionSynergyBlock(c2, config.window, config.boundary_px)
        # Scale 2 (full resolution).
        self.up_n2, self.up_a2 = nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.dec_n2, self.dec_a2 = _enc(2 * c1, c1, eps), _enc(2 * c1, c1, eps)
        self.synergy2 = RegionSynergyBlock(c1, config.window, config.boundary_px)
        self.final = nn.Conv2d(c1, 3, 3, padding=1)
        if config.residual:
            nn.init.zeros_(self.final.weight)
            nn.init.zeros_(self.final.bias)

    def forward(self, x: torch.Tensor, b1: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        mask = mask.to(x.dtype)
        m = self.config.size_multiple
        xp, size = pad_to_multiple(x, m)
        bp, _ = pad_to_multiple(b1, m)
        mp, _ = pad_to_multiple(mask, m)
        o_n, o_a = (torch.cat([xp, mp], 1), torch.cat([bp, mp], 1)) if self.config.mask_channel else (xp, bp)

        e_n1, e_a1 = self.enc_n1(o_n), self.enc_a1(o_a)
        e_n2, e_a2 = self.enc_n2(self.pool(e_n1)), self.enc_a2(self.pool(e_a1))
        b_n, b_a = self.bott_n(self.pool(e_n2)), self.bott_a(self.pool(e_a2))
        shared = self.bott_fuse(torch.cat([b_n, b_a], 1))

        d_n1 = self.dec_n1(torch.cat([self.up_n1(shared), e_n2], 1))
        d_a1 = self.dec_a1(torch.cat([self.up_a1(shared), e_a2], 1))
        s1 = self.synergy1(d_n1, d_a1, mp)

        d_n2 = self.dec_n2(torch.cat([self.up_n2(s1), e_n1], 1))
        d_a2 = self.dec_a2(torch.cat([self.up_a2(s1), e_a1], 1))
        s2 = self.synergy2(d_n2, d_a2, mp)

        out = crop_to(self.final(s2), size)
        if self.config.residual:
            out = out + _logit(b1)
        return torch.sigmoid(out)


def _build(base: NpcfppConfig, overrides: dict[str, Any]) -> SynergyRefineNet:
    return SynergyRefineNet(replace_config(base, overrides))


@register_model("npcfpp")
def npcfpp(**overrides: Any) -> SynergyRefineNet:
    """SynergyRefineNet with widths (32, 64, 128), 16-pixel windows."""
    return _build(NpcfppConfig(), overrides)


@register_model("npcfpp-tiny", family="npcfpp")
def npcfpp_tiny(**overrides: Any) -> SynergyRefineNet:
    """A tiny SynergyRefineNet for tests (widths 4, 8, 8; 8-pixel windows)."""
    return _build(NpcfppConfig(widths=(4, 8, 8), window=8, boundary_px=2), overrides)
