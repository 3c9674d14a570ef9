"""A registry of trainable models, after timm's ``@register_model`` / ``create_model``.

Every model is an ``nn.Module`` built from a frozen config dataclass and keeps
it as ``model.config``. A registered builder takes keyword overrides of that
config and returns the model::

    @register_model("npcf-tiny", family="npcf")
    def npcf_tiny(**overrides):
        return NpcfNet(replace_config(NpcfConfig(widths=(4, 8)), overrides))

:func:`maphc2f_data.models.factory.create_model` calls the builder and stamps
the registered name on the model (``model.registry_name``) so a checkpoint can
record what to rebuild. This module imports no model (model modules import
it to register themselves; :mod:`.zoo` imports them all), so there is no
import cycle between the registry and the models.
Tiny test variants are registered beside the real ones; ``family`` groups a
variant with its real model (``"npcf-tiny"`` belongs to ``"npcf"``).

Builders never seed the global RNG: a caller who wants a reproducible
initialisation passes ``seed=`` to ``create_model`` (the weights are drawn
under a forked RNG state, so the caller's own stream is left untouched) or
seeds torch itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, TypeVar

import torch
from torch import nn

__all__ = [
    "MODELS",
    "ModelEntry",
    "config_from_dict",
    "config_to_dict",
    "create_model",
    "list_models",
    "register_model",
    "replace_config",
]

C = TypeVar("C")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its builder and the family it belongs to."""

    name: str
    family: str
    builder: Callable[..., nn.Module]


MODELS: Dict[str, ModelEntry] = {}


def register_model(name: str, *, family: Optional[str] = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder(**config_overrides) -> nn.Module`` under ``name``."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS and MODELS[name].builder is not builder:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelEntry(name=name, family=family or name, builder=builder)
        return builder

    return decorator


def replace_config(base: C, overrides: Mapping[str, Any]) -> C:
    """``dataclasses.replace`` that names unknown fields and turns JSON lists back into tuples."""
    names = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{type(base).__name__} has no field(s) {', '.join(unknown)}")
    fixed = {}
    for key, value in overrides.items():
        if isinstance(getattr(base, key), tuple) and isinstance(value, list):
            value = tuple(value)
        fixed[key] = value
    return dataclasses.replace(base, **fixed)


def config_to_dict(config: Any) -> Dict[str, Any]:
    """A config dataclass as a JSON-ready dict (tuples become lists in JSON)."""
    return dataclasses.asdict(config)


def config_from_dict(cls: Callable[..., C], data: Mapping[str, Any]) -> C:
    """Rebuild a config dataclass from :func:`config_to_dict` output."""
    return replace_config(cls(), data)
