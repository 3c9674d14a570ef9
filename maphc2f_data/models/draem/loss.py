"""DRAEM's training loss: L2 + SSIM on the reconstruction, focal loss on the mask.

Everything is computed per sample first (reduced over every axis but the
batch), because BiSQAD weights each sample's loss (paper Alg. 9, eq. 15).
Every per-sample term is a mean over the same number of elements for every
sample, so the plain batch mean of :meth:`DraemLoss.per_sample` equals the
usual mean-reduced DRAEM loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.draem.torch_model import DraemOutput

__all__ = ["DraemLoss", "DraemLossConfig", "focal_loss_per_sample", "ssim_per_sample"]


@dataclass(frozen=True)
class DraemLossConfig:
    """Term weights and SSIM / focal settings (DRAEM's defaults)."""

    l2_weight: float = 1.0
    ssim_weight: float = 1.0
    focal_weight: float = 1.0
    focal_gamma: float = 2.0
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    data_range: float = 1.0  # images live in [0, 1]


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_per_sample(
    x: torch.Tensor, y: torch.Tensor, *, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """Mean SSIM per sample, shape (N,), Gaussian window, zero padding (as DRAEM)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"x and y must both be (N, C, H, W); got {tuple(x.shape)} and {tuple(y.shape)}")
    channels = x.shape[1]
    w = _gaussian_window(window, sigma, channels, x)
    pad = window // 2

    def filt(t):
        return F.conv2d(t, w, padding=pad, groups=channels)

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def focal_loss_per_sample(logits: torch.Tensor, mask: torch.Tensor, *, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss of 2-class logits (N, 2, H, W) against a binary mask, per sample (N,)."""
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.shape[0] != logits.shape[0] or mask.shape[-2:] != logits.shape[-2:] or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W) matching logits {tuple(logits.shape)}; got {tuple(mask.shape)}")
    target = (mask > 0.5).long()
    log_pt = torch.log_softmax(logits, dim=1).gather(1, target)
    pt = log_pt.exp()
    return (-((1.0 - pt) ** gamma) * log_pt).flatten(1).mean(dim=1)


class DraemLoss(nn.Module):
    """L2 + SSIM + focal; :meth:`per_sample` gives (N,), :meth:`forward` a weighted mean.

    target_image : (N, 3, H, W) the clean image in [0, 1] (before the
        synthetic anomaly was pasted in).
    target_mask : (N, 1, H, W) or (N, H, W), 1 where the anomaly is.
    """

    def __init__(self, config: DraemLossConfig = DraemLossConfig()):
        super().__init__()
        self.config = config

    def terms(self, output: DraemOutput, target_image: torch.Tensor, target_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The three unweighted per-sample terms, each shape (N,)."""
        c = self.config
        rec = output.reconstruction
        if rec.shape != target_image.shape:
            raise ValueError(f"target_image {tuple(target_image.shape)} must match the reconstruction {tuple(rec.shape)}")
        return {
            "l2": (rec - target_image).pow(2).flatten(1).mean(dim=1),
            "ssim": 1.0
            - ssim_per_sample(rec, target_image, window=c.ssim_window, sigma=c.ssim_sigma, data_range=c.data_range),
            "focal": focal_loss_per_sample(output.segmentation_logits, target_mask, gamma=c.focal_gamma),
        }

    def per_sample(self, output: DraemOutput, target_image: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the terms per sample, shape (N,)."""
        c = self.config
        t = self.terms(output, target_image, target_mask)
        return c.l2_weight * t["l2"] + c.ssim_weight * t["ssim"] + c.focal_weight * t["focal"]

    def forward(
        self,
        output: DraemOutput,
        target_image: torch.Tensor,
        target_mask: torch.Tensor,
        weights: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``mean_i(w_i * loss_i)``; plain mean when ``weights`` is None (paper Alg. 9 step 7)."""
        losses = self.per_sample(output, target_image, target_mask)
        if weights is None:
            return losses.mean()
        if weights.shape != losses.shape:
            raise ValueError(f"weights must have shape {tuple(losses.shape)}; got {tuple(weights.shape)}")
        return (losses * weights).mean()
