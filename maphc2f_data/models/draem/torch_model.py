"""DRAEM-style base anomaly detector (Zavrtanik et al., ICCV 2021), from scratch.

A reconstructive U-Net-shaped autoencoder (no skip connections, so it cannot
copy anomalies through) maps an image to an anomaly-free reconstruction; a
discriminative U-Net (with skip connections) looks at the image and its
reconstruction side by side and segments the anomaly into two classes.

Differences from the original, chosen for BiSQAD's functional second-order
step: GroupNorm replaces BatchNorm (no running statistics, so a
``torch.func.functional_call`` lookahead behaves exactly like the real
forward in train and eval mode), and the widths are configurable so tests can
build a model of a fraction of a million parameters. No pretrained weights.

Input normalisation: images are float RGB tensors of shape (N, 3, H, W) with
values in [0, 1], fed as they are (no mean/std normalisation); the
reconstruction lives in the same [0, 1] space (it is not clamped). H and W
must be multiples of ``2 ** (len(disc_multipliers) - 1)`` (32 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.registry import register_model, replace_config

__all__ = ["DraemConfig", "DraemModel", "DraemOutput", "TINY_DRAEM_CONFIG", "build_draem", "draem", "draem_tiny"]


@dataclass(frozen=True)
class DraemConfig:
    """Hyper-parameters of :class:`DraemModel` (defaults follow DRAEM).

    recon_width / disc_width : base channel counts of the two sub-networks.
    recon_multipliers / disc_multipliers : width multiplier per resolution
        level (one max-pool between consecutive levels).
    norm_groups : GroupNorm uses ``gcd(channels, norm_groups)`` groups.
    score_kernel : side of the average filter applied to the anomaly map
        before its maximum is taken as the image score (odd).
    head_prior : 0 (PyTorch's default initialisation, as DRAEM) or the
        anomaly probability the untrained discriminative head starts at
        everywhere (the focal-loss paper's prior initialisation, Lin et al.
        2017). From scratch on subtle anomalies, the default start (anomaly
        probability near 0.5 on every pixel, most of them normal) can drive
        the head's anomaly weights negative before any feature picks out an
        anomaly, leaving the map capped at its bias level; ``0.01`` starts
        the other way (the transfer benchmark's validation split, README).
    """

    in_channels: int = 3
    recon_width: int = 128
    disc_width: int = 64
    recon_multipliers: Tuple[int, ...] = (1, 2, 4, 8, 8)
    disc_multipliers: Tuple[int, ...] = (1, 2, 4, 8, 8, 8)
    norm_groups: int = 8
    score_kernel: int = 21
    head_prior: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.head_prior < 1.0:
            raise ValueError(f"head_prior must be in [0, 1); got {self.head_prior}")
        if self.score_kernel < 1 or self.score_kernel % 2 == 0:
            raise ValueError(f"score_kernel must be a positive odd number; got {self.score_kernel}")
        for name in ("in_channels", "recon_width", "disc_width", "norm_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if not self.recon_multipliers or not self.disc_multipliers:
            raise ValueError("recon_multipliers and disc_multipliers must not be empty")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        levels = max(len(self.recon_multipliers), len(self.disc_multipliers))
        return 2 ** (levels - 1)


# A model small enough for CPU unit tests (about 0.22 M parameters, 32 px inputs).
TINY_DRAEM_CONFIG = DraemConfig(recon_width=4, disc_width=4, norm_groups=4, score_kernel=5)


class DraemOutput(NamedTuple):
    """What :class:`DraemModel` returns.

    reconstruction : (N, 3, H, W), [0, 1] image space.
    segmentation_logits : (N, 2, H, W), channel 1 = anomalous.
    anomaly_map : (N, 1, H, W), softmax probability of channel 1.
    image_score : (N,), max of the average-filtered anomaly map.
    """

    reconstruction: torch.Tensor
    segmentation_logits: torch.Tensor
    anomaly_map: torch.Tensor
    image_score: torch.Tensor


def _block(in_ch: int, out_ch: int, groups: int) -> nn.Sequential:
    """Two 3x3 conv + GroupNorm + ReLU layers."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.GroupNorm(math.gcd(out_ch, groups), out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1),
        nn.GroupNorm(math.gcd(out_ch, groups), out_ch),
        nn.ReLU(inplace=True),
    )


def _up(in_ch: int, out_ch: int, groups: int) -> nn.Sequential:
    """Bilinear x2 upsampling + 3x3 conv + GroupNorm + ReLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.GroupNorm(math.gcd(out_ch, groups), out_ch),
        nn.ReLU(inplace=True),
    )


class _Encoder(nn.Module):
    def __init__(self, in_ch: int, widths: List[int], groups: int):
        super().__init__()
        chans = [in_ch] + widths
        self.blocks = nn.ModuleList(_block(a, b, groups) for a, b in zip(chans[:-1], chans[1:]))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features


class ReconstructiveSubNetwork(nn.Module):
    """Encoder-decoder without skip connections (DRAEM's reconstructive part)."""

    def __init__(self, in_ch: int, out_ch: int, width: int, multipliers, groups: int):
        super().__init__()
        widths = [width * m for m in multipliers]
        self.encoder = _Encoder(in_ch, widths, groups)
        rev = widths[::-1]
        self.ups = nn.ModuleList(_up(a, b, groups) for a, b in zip(rev[:-1], rev[1:]))
        self.dec_blocks = nn.ModuleList(_block(b, b, groups) for b in rev[1:])
        self.head = nn.Conv2d(widths[0], out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encoder(x)[-1]
        for up, block in zip(self.ups, self.dec_blocks):
            y = block(up(y))
        return self.head(y)


class DiscriminativeSubNetwork(nn.Module):
    """U-Net with skip connections (DRAEM's discriminative part).

    ``head_prior`` > 0 (two output classes only): the head's biases start at
    ``(0, log(prior / (1 - prior)))``, so an untrained network gives about
    that anomaly probability everywhere (see :class:`DraemConfig`).
    """

    def __init__(self, in_ch: int, out_ch: int, width: int, multipliers, groups: int, head_prior: float = 0.0):
        super().__init__()
        widths = [width * m for m in multipliers]
        self.encoder = _Encoder(in_ch, widths, groups)
        rev = widths[::-1]
        self.ups = nn.ModuleList(_up(a, b, groups) for a, b in zip(rev[:-1], rev[1:]))
        self.dec_blocks = nn.ModuleList(_block(2 * b, b, groups) for b in rev[1:])
        self.head = nn.Conv2d(widths[0], out_ch, 3, padding=1)
        if head_prior > 0:
            if out_ch != 2 or head_prior >= 1:
                raise ValueError(f"head_prior needs 2 output classes and a value in (0, 1); got {out_ch}, {head_prior}")
            with torch.no_grad():
                self.head.bias.copy_(torch.tensor([0.0, math.log(head_prior / (1 - head_prior))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = features[-1]
        for up, block, skip in zip(self.ups, self.dec_blocks, features[-2::-1]):
            y = block(torch.cat([up(y), skip], dim=1))
        return self.head(y)


class DraemModel(nn.Module):
    """Reconstructive + discriminative sub-networks; see the module docstring."""

    def __init__(self, config: DraemConfig = DraemConfig()):
        super().__init__()
        self.config = config
        c = config
        self.reconstructive = ReconstructiveSubNetwork(
            c.in_channels, c.in_channels, c.recon_width, c.recon_multipliers, c.norm_groups
        )
        self.discriminative = DiscriminativeSubNetwork(
            2 * c.in_channels, 2, c.disc_width, c.disc_multipliers, c.norm_groups, c.head_prior
        )

    def forward(self, image: torch.Tensor) -> DraemOutput:
        """``image``: (N, C, H, W) float in [0, 1]; see :class:`DraemOutput`."""
        if image.ndim != 4 or image.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected (N, {self.config.in_channels}, H, W) images; got shape {tuple(image.shape)}"
            )
        m = self.config.size_multiple
        if image.shape[-2] % m or image.shape[-1] % m:
            raise ValueError(f"image height and width must be multiples of {m}; got {tuple(image.shape[-2:])}")
        reconstruction = self.reconstructive(image)
        logits = self.discriminative(torch.cat([reconstruction, image], dim=1))
        anomaly_map = torch.softmax(logits, dim=1)[:, 1:]
        return DraemOutput(reconstruction, logits, anomaly_map, image_score(anomaly_map, self.config.score_kernel))


def image_score(anomaly_map: torch.Tensor, kernel: int) -> torch.Tensor:
    """DRAEM's image score: max of the ``kernel`` x ``kernel`` average-filtered map, shape (N,)."""
    smoothed = F.avg_pool2d(anomaly_map, kernel, stride=1, padding=kernel // 2)
    return smoothed.flatten(1).amax(dim=1)


def build_draem(config: DraemConfig | None = None) -> DraemModel:
    """A randomly initialised :class:`DraemModel` (default config when ``None``)."""
    return DraemModel(DraemConfig() if config is None else config)


@register_model("draem")
def draem(**overrides: Any) -> DraemModel:
    """DRAEM with its published widths (reconstructive 128, discriminative 64)."""
    return DraemModel(replace_config(DraemConfig(), overrides))


@register_model("draem-tiny", family="draem")
def draem_tiny(**overrides: Any) -> DraemModel:
    """A ~0.2 M-parameter DRAEM for CPU tests (:data:`TINY_DRAEM_CONFIG`)."""
    return DraemModel(replace_config(TINY_DRAEM_CONFIG, overrides))
