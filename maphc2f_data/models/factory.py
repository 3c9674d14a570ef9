"""``create_model(name, **config)``: build any registered model (timm's ``_factory``).

Importing this module imports :mod:`.zoo`, so every model of the package is
registered before a name is looked up.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from maphc2f_data.models import zoo  # noqa: F401  (registers the package's models)
from maphc2f_data.models.registry import MODELS


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(MODELS)


def create_model(name: str, *, seed: Optional[int] = None, **config_overrides: Any) -> nn.Module:
    """Build the model registered as ``name`` with the given config overrides.

    ``seed`` makes the random initialisation reproducible without touching
    the caller's global RNG stream. Unknown names and unknown config fields
    raise ``ValueError`` naming them.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    entry = MODELS[name]
    if seed is None:
        model = entry.builder(**config_overrides)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(**config_overrides)
    model.registry_name = name
    model.registry_family = entry.family
    return model
