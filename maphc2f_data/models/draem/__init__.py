"""DRAEM-style base detector for BiSQAD: the bare module and its loss."""

from maphc2f_data.models.draem.loss import DraemLoss, DraemLossConfig
from maphc2f_data.models.draem.torch_model import (
    TINY_DRAEM_CONFIG,
    DraemConfig,
    DraemModel,
    DraemOutput,
    build_draem,
)

__all__ = [
    "TINY_DRAEM_CONFIG",
    "DraemConfig",
    "DraemLoss",
    "DraemLossConfig",
    "DraemModel",
    "DraemOutput",
    "build_draem",
]
