"""Fixtures for the torch model tests: tiny fixed batches, one EfficientNet load per session."""

from __future__ import annotations

import pytest
import torch


def _make_batch(batch: int = 2, height: int = 64, width: int = 64, seed: int = 0):
    """A fixed batch: smooth 'normal' images, a square anomaly with a distinct colour in stage A."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xx = torch.linspace(0, 1, width).view(1, 1, 1, width)
    base = 0.3 + 0.4 * (0.5 * yy + 0.5 * xx).expand(batch, 3, height, width)
    normal = (base + 0.05 * torch.rand(batch, 3, height, width, generator=g)).clamp(0, 1)
    mask = torch.zeros(batch, 1, height, width)
    mask[:, :, height // 4 : height // 2, width // 4 : width // 2] = 1
    colour = torch.tensor([0.8, 0.35, 0.1]).view(1, 3, 1, 1)
    stage_a = normal * (1 - mask) + (colour + 0.1 * torch.rand(batch, 3, height, width, generator=g)).clamp(0, 1) * mask
    return normal, stage_a, mask


@pytest.fixture(scope="session")
def make_batch():
    """``make_batch(batch, height, width, seed) -> (normal, stage_a, mask)``."""
    return _make_batch


@pytest.fixture(scope="session")
def effnet():
    from maphc2f_data.models.backbones import efficientnet_lite0

    return efficientnet_lite0(pretrained=True)
