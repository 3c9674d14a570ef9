"""npcF network: a WideResNet-style convolutional autoencoder (paper Sec. 3.2.2, Algorithm 6).

Input: the normal image ``x``, the raw synthetic stage-A image and the
anomaly mask, concatenated to 7 channels (``use_stage_a=False`` drops the
stage-A image: 4 channels). Output: the refined image ``u`` in ``[0, 1]``.

The encoder is a stem convolution and one stage of pre-activation wide basic
blocks (BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut, Zagoruyko & Komodakis)
per width, every stage after the first downsampling by 2; the decoder
mirrors it with bilinear upsampling and skip connections from the encoder.
Inputs of any size are replicate-padded to a multiple of ``2**(stages-1)``
and the output is cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.components.wavelet import crop_to, pad_to_multiple
from maphc2f_data.models.registry import register_model, replace_config

__all__ = ["NPCF_TRAINING", "NpcfConfig", "NpcfNet", "TrainingDefaults", "WideBasicBlock", "npcf", "npcf_tiny"]


@dataclass(frozen=True)
class TrainingDefaults:
    """Training settings the paper reports (for the training CLI; the models never read them).

    ``lr`` is not given for the refiners in the paper; 1e-4 is the AdamW rate it
    uses elsewhere (Sec. 4, SQE) and a conventional choice.
    """

    batch_size: int
    epochs: int
    image_size: int
    optimizer: str = "AdamW"
    lr: float = 1e-4


# Paper Sec. 4 "Implementation details": batch 32, ~200 epochs for npcF, 512x512.
NPCF_TRAINING = TrainingDefaults(batch_size=32, epochs=200, image_size=512)


@dataclass(frozen=True)
class NpcfConfig:
    """npcF architecture.

    widths: channels per stage; each stage after the first halves the
        resolution (WRN-16-4 style: 16 x 4 = 64, 128, 256).
    blocks_per_stage: wide basic blocks per stage (encoder and decoder).
    use_stage_a: feed the raw stage-A image as well (Algorithm 6 ``use_stageA_img``).
    residual: predict a correction of the stage-A composite,
        ``u = sigmoid(logit(base) + head)`` with ``base = x (1-M) + stageA M`` and a
        zero-initialised head, so an untrained model returns the stage-A image
        exactly and training only has to learn the harmonisation. ``False`` gives
        the plain autoencoder output ``u = sigmoid(head)``.
    dropout: dropout between the two convolutions of a block (WRN's option).
    """

    widths: Tuple[int, ...] = (64, 128, 256)
    blocks_per_stage: int = 1
    use_stage_a: bool = True
    residual: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"NpcfConfig.widths must be positive, got {self.widths}")
        if self.blocks_per_stage < 1:
            raise ValueError("NpcfConfig.blocks_per_stage must be >= 1")

    @property
    def in_channels(self) -> int:
        return 7 if self.use_stage_a else 4

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.widths) - 1)


class WideBasicBlock(nn.Module):
    """Pre-activation wide basic block with an identity or 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Identity() if stride == 1 and in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + self.shortcut(x)


def _stage(in_ch: int, out_ch: int, blocks: int, stride: int, dropout: float) -> nn.Sequential:
    layers = [WideBasicBlock(in_ch, out_ch, stride, dropout)]
    layers += [WideBasicBlock(out_ch, out_ch, 1, dropout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _logit(p: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    p = p.clamp(eps, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


class NpcfNet(nn.Module):
    """npcF autoencoder; ``forward(x, stage_a, mask) -> u`` with ``u`` in ``[0, 1]``, shape of ``x``."""

    def __init__(self, config: NpcfConfig = NpcfConfig()):
        super().__init__()
        self.config = config
        w = [int(c) for c in config.widths]
        self.stem = nn.Conv2d(config.in_channels, w[0], 3, padding=1, bias=False)
        self.encoder = nn.ModuleList(
            _stage(w[max(i - 1, 0)], w[i], config.blocks_per_stage, 1 if i == 0 else 2, config.dropout)
            for i in range(len(w))
        )
        # Decoder stage i: upsample w[i+1] -> fuse with the skip w[i] -> w[i].
        self.decoder = nn.ModuleList(
            _stage(w[i + 1] + w[i], w[i], config.blocks_per_stage, 1, config.dropout) for i in range(len(w) - 1)
        )
        self.head_norm = nn.BatchNorm2d(w[0])
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)
        if config.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, stage_a: Optional[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        mask = mask.to(x.dtype)
        if self.config.use_stage_a or self.config.residual:
            if stage_a is None:
                raise ValueError("NpcfNet needs the stage-A image (config use_stage_a/residual)")
        parts = [x, stage_a, mask] if self.config.use_stage_a else [x, mask]
        inp, size = pad_to_multiple(torch.cat(parts, dim=1), self.config.size_multiple)

        h = self.stem(inp)
        skips = []
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        for i in reversed(range(len(self.decoder))):
            skip = skips[i]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = self.decoder[i](torch.cat([h, skip], dim=1))
        out = crop_to(self.head(F.relu(self.head_norm(h))), size)
        if self.config.residual:
            base = x * (1.0 - mask) + stage_a * mask
            out = out + _logit(base)
        return torch.sigmoid(out)


def _build(base: NpcfConfig, overrides: dict[str, Any]) -> NpcfNet:
    return NpcfNet(replace_config(base, overrides))


@register_model("npcf")
def npcf(**overrides: Any) -> NpcfNet:
    """npcF with the default widths (64, 128, 256)."""
    return _build(NpcfConfig(), overrides)


@register_model("npcf-tiny", family="npcf")
def npcf_tiny(**overrides: Any) -> NpcfNet:
    """A few-thousand-parameter npcF for tests (widths 4, 8)."""
    return _build(NpcfConfig(widths=(4, 8)), overrides)
