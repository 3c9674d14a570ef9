"""Safetensors checkpoints that carry the model's registry name and config.

No pickle anywhere: tensors go into a ``.safetensors`` file and everything
else (model name, family, config, training arguments) into its string
metadata as JSON. :func:`load_checkpoint` rebuilds the model through
:func:`maphc2f_data.models.factory.create_model` and loads the tensors
strictly; any problem is one :class:`~maphc2f_data.errors.CheckpointError`
line naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from maphc2f_data.errors import CheckpointError
from maphc2f_data.models.factory import create_model, list_models
from maphc2f_data.models.registry import MODELS, config_to_dict

__all__ = ["CheckpointInfo", "checkpoint_sha256", "load_checkpoint", "read_checkpoint_info", "save_checkpoint"]

FORMAT = "maphc2f-model/1"
_KEY_FORMAT = "maphc2f.format"
_KEY_MODEL = "maphc2f.model"
_KEY_FAMILY = "maphc2f.family"
_KEY_CONFIG = "maphc2f.config"
_KEY_METADATA = "maphc2f.metadata"

PathLike = Union[str, Path]


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself."""

    path: Path
    model_name: str
    family: str
    config: Dict[str, Any]
    metadata: Dict[str, Any]


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    *,
    config: Any = None,
    metadata: Optional[Dict[str, Any]] = None,
    name: Optional[str] = None,
) -> Path:
    """Write ``model``'s state dict to ``path`` (safetensors) with its name, config and ``metadata``.

    ``config`` defaults to ``model.config`` and ``name`` to the name
    :func:`create_model` stamped on the model. ``metadata`` (training
    arguments, data hashes, ...) must be JSON-serialisable. The file is
    written next to its destination and renamed, so a crash never leaves a
    half-written checkpoint under the final name.
    """
    path = Path(path)
    config = model.config if config is None else config
    name = name or getattr(model, "registry_name", None)
    if name is None:
        raise ValueError("save_checkpoint: the model has no registry name; build it with create_model or pass name=")
    family = MODELS[name].family if name in MODELS else name
    config_dict = config_to_dict(config) if dataclasses.is_dataclass(config) else dict(config)
    header = {
        _KEY_FORMAT: FORMAT,
        _KEY_MODEL: name,
        _KEY_FAMILY: family,
        _KEY_CONFIG: json.dumps(config_dict, sort_keys=True),
        _KEY_METADATA: json.dumps(metadata or {}, sort_keys=True),
    }
    # Clone: safetensors refuses tensors that share storage or are not contiguous.
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    tmp.replace(path)
    return path


def read_checkpoint_info(path: PathLike) -> CheckpointInfo:
    """Read and check a checkpoint's metadata without building the model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"not a safetensors checkpoint: {path} ({type(exc).__name__})") from None
    if header.get(_KEY_FORMAT) != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a maphc2f model checkpoint (no {_KEY_FORMAT} metadata)")
    try:
        config = json.loads(header[_KEY_CONFIG])
        metadata = json.loads(header.get(_KEY_METADATA, "{}"))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} has unreadable config metadata ({exc})") from None
    return CheckpointInfo(
        path=path,
        model_name=header.get(_KEY_MODEL, ""),
        family=header.get(_KEY_FAMILY, header.get(_KEY_MODEL, "")),
        config=config,
        metadata=metadata,
    )


def load_checkpoint(
    path: PathLike, expected_name: Optional[str] = None, map_location: Union[str, torch.device] = "cpu"
) -> Tuple[nn.Module, CheckpointInfo]:
    """Rebuild the model a checkpoint names and load its tensors; returns ``(model, info)``.

    ``expected_name`` is the registered name or family the caller wants
    (``"npcf"`` accepts an ``"npcf-tiny"`` checkpoint). The model is returned
    in eval mode on ``map_location``.
    """
    info = read_checkpoint_info(path)
    path = info.path
    if expected_name is not None and expected_name not in (info.model_name, info.family):
        raise CheckpointError(f"{path} holds model {info.model_name!r}, expected {expected_name!r}")
    if info.model_name not in list_models():
        raise CheckpointError(f"{path} holds unknown model {info.model_name!r}")
    try:
        model = create_model(info.model_name, **info.config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its config does not fit model {info.model_name!r} ({exc})") from None
    try:
        tensors = load_file(str(path), device=str(map_location))
    except Exception as exc:
        raise CheckpointError(f"cannot read tensors of {path} ({type(exc).__name__})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) e.g. {missing[0]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s) e.g. {unexpected[0]}")
        raise CheckpointError(f"{path} does not match model {info.model_name!r}: {'; '.join(parts)}")
    for key, value in expected.items():
        if tensors[key].shape != value.shape:
            raise CheckpointError(
                f"{path} does not match model {info.model_name!r}: {key} has shape "
                f"{tuple(tensors[key].shape)}, model wants {tuple(value.shape)}"
            )
    model.load_state_dict(tensors, strict=True)
    model.to(map_location)
    model.eval()
    return model, info


def checkpoint_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a checkpoint file (for run reports and provenance)."""
    from maphc2f_data.dataset.shards import sha256_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return sha256_file(path)
