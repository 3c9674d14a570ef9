"""Synthesis Quality Estimator (SQE, paper Sec. 3.3.1, eqs. 13-14).

``q_i = sigmoid(fc(FeatExtract(x_sqe)))``: a frozen backbone handed in from
outside (the default pretrained one is built elsewhere) followed by the only
trainable part, one ``nn.Linear(feature_dim, 1)``. Targets need no labels: the
base detector's per-sample losses, min-max normalised and flipped (eq. 14), so
samples the detector finds hard get low quality; the head regresses them with
an L2 loss.

Input: (N, 3, H, W) float RGB images in [0, 1]; the estimator applies the
ImageNet mean/std normalisation itself before calling the backbone (pass
``normalize=False`` for a backbone that expects raw [0, 1] input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.registry import register_model, replace_config

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SQE_BACKBONES",
    "SqeHead",
    "SqeHeadConfig",
    "SynthesisQualityEstimator",
    "make_sqe",
    "sqe_backbone",
    "sqe_loss",
    "sqe_targets",
]

#: Backbones an SQE can be built on, with their pooled feature size.
SQE_BACKBONES = {"efficientnet_lite0": 1280, "wide_resnet50_2": 2048}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SynthesisQualityEstimator(nn.Module):
    """Frozen ``backbone`` + trainable ``head`` (Linear) + sigmoid; eq. 13.

    backbone : maps (N, 3, H, W) ImageNet-normalised images to features of
        shape (N, feature_dim) or (N, feature_dim, h, w) (then global-average
        pooled). Its parameters are frozen and it always runs in eval mode.
    feature_dim : size of the pooled feature vector.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, *, normalize: bool = True):
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive; got {feature_dim}")
        self.backbone = backbone.requires_grad_(False).eval()
        self.head = nn.Linear(feature_dim, 1)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "SynthesisQualityEstimator":
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics and dropout stay fixed
        return self

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """The trainable parameters (the final layer only)."""
        return self.head.parameters()

    @torch.no_grad()
    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Frozen pooled features, shape (N, feature_dim); no autograd graph."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images in [0, 1]; got shape {tuple(image.shape)}")
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype) if self.normalize else image
        f = self.backbone(x)
        if f.ndim == 4:
            f = f.mean(dim=(2, 3))
        if f.ndim != 2 or f.shape[1] != self.head.in_features:
            raise ValueError(
                f"backbone must give (N, {self.head.in_features}) or (N, {self.head.in_features}, h, w) "
                f"features; got {tuple(f.shape)}"
            )
        return f

    def score_features(self, features: torch.Tensor) -> torch.Tensor:
        """q from precomputed :meth:`features`, shape (N,), differentiable in the head."""
        return torch.sigmoid(self.head(features)).squeeze(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Quality q in [0, 1], shape (N,)."""
        return self.score_features(self.features(image))


def sqe_targets(losses: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 14: ``y_i = 1 - (l_i - min l) / (max l - min l + eps)``, detached, shape of ``losses``."""
    losses = losses.detach()
    if losses.ndim != 1 or losses.numel() == 0:
        raise ValueError(f"losses must be a non-empty 1-D tensor; got shape {tuple(losses.shape)}")
    lo, hi = losses.min(), losses.max()
    return 1.0 - (losses - lo) / (hi - lo + eps)


def sqe_loss(quality: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L2 regression of q toward the eq. 14 targets (mean squared error)."""
    return F.mse_loss(quality, targets)


# --------------------------------------------------------------------------- building and checkpoints


@dataclass(frozen=True)
class SqeHeadConfig:
    """What an SQE checkpoint needs to rebuild its estimator.

    backbone : a key of :data:`SQE_BACKBONES`.
    feature_dim : the backbone's pooled feature size.
    """

    backbone: str = "efficientnet_lite0"
    feature_dim: int = 1280


class SqeHead(nn.Module):
    """The SQE's trainable part alone (``head``: Linear(feature_dim, 1)), as a checkpoint holds it."""

    def __init__(self, config: SqeHeadConfig = SqeHeadConfig()):
        super().__init__()
        if config.backbone not in SQE_BACKBONES:
            raise ValueError(f"unknown SQE backbone {config.backbone!r}; valid: {', '.join(SQE_BACKBONES)}")
        self.config = config
        self.head = nn.Linear(config.feature_dim, 1)


@register_model("sqe-head")
def sqe_head(**overrides: Any) -> SqeHead:
    """The final layer of an SQE; the frozen backbone is named in its config and built by :func:`make_sqe`."""
    return SqeHead(replace_config(SqeHeadConfig(), overrides))


class _Pooled(nn.Module):
    """EfficientNet-Lite0's pooled features (it normalises its input itself)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.pooled(x)


def sqe_backbone(name: str, weights_path: Optional[str] = None) -> Tuple[nn.Module, int, bool]:
    """``(frozen backbone, feature_dim, normalize)`` for :class:`SynthesisQualityEstimator`.

    ``efficientnet_lite0`` uses the ImageNet weights installed with the
    package (or ``weights_path``); ``wide_resnet50_2`` (the paper's) needs a
    local torchvision weights file in ``weights_path`` and gives its 2048-d
    average-pooled features.
    """
    from maphc2f_data.errors import UserError
    from maphc2f_data.models import backbones

    if name == "efficientnet_lite0":
        return _Pooled(backbones.efficientnet_lite0(weights_path=weights_path)), SQE_BACKBONES[name], False
    if name == "wide_resnet50_2":
        if weights_path is None:
            raise UserError("--backbone wide_resnet50_2 needs --backbone-weights PATH (torchvision "
                            "wide_resnet50_2 ImageNet weights, .pth or .safetensors); nothing is downloaded")
        model = backbones.torchvision_backbone("wide_resnet50_2", weights_path)
        model.fc = nn.Identity()
        return model, SQE_BACKBONES[name], True
    raise UserError(f"unknown SQE backbone {name!r}; valid: {', '.join(SQE_BACKBONES)}")


def make_sqe(backbone: str = "efficientnet_lite0", weights_path: Optional[str] = None) -> SynthesisQualityEstimator:
    """An SQE on the named frozen backbone with a freshly initialised head."""
    net, dim, normalize = sqe_backbone(backbone, weights_path)
    return SynthesisQualityEstimator(net, dim, normalize=normalize)
