"""SQE checkpoints: the head (registered as ``sqe-head``) plus the name of its frozen backbone.

Kept apart from :mod:`.sqe` because checkpoints go through the model
factory, which imports every model module (:mod:`.zoo`), ``sqe`` included.
"""

from __future__ import annotations

from typing import Optional

from maphc2f_data.models.checkpoint import load_checkpoint, save_checkpoint
from maphc2f_data.models.sqe import SqeHead, SqeHeadConfig, SynthesisQualityEstimator, make_sqe

__all__ = ["load_sqe", "save_sqe"]


def save_sqe(path, sqe: SynthesisQualityEstimator, backbone: str, metadata: Optional[dict] = None):
    """Write the SQE's head and its backbone's name to a safetensors checkpoint (``sqe-head``)."""
    holder = SqeHead(SqeHeadConfig(backbone=backbone, feature_dim=sqe.head.in_features))
    holder.head.load_state_dict(sqe.head.state_dict())
    return save_checkpoint(path, holder, name="sqe-head", metadata=metadata)


def load_sqe(path, backbone_weights: Optional[str] = None, map_location="cpu") -> SynthesisQualityEstimator:
    """Rebuild an SQE from :func:`save_sqe`'s checkpoint (backbone weights as when trained, or ``backbone_weights``)."""
    holder, info = load_checkpoint(path, expected_name="sqe-head")
    weights = backbone_weights if backbone_weights is not None else info.metadata.get("backbone_weights")
    sqe = make_sqe(holder.config.backbone, weights)
    sqe.head.load_state_dict(holder.head.state_dict())
    return sqe.to(map_location).eval()
