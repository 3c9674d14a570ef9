"""Suite-wide settings: offline Hugging Face caches, GPU skips, shared helpers.

Fixtures stay tiny and are built once per session (see the sub-folders'
conftest files). Environment variables are set at import time because
``datasets`` reads them when it is first imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

_HF_HOME = tempfile.mkdtemp(prefix="maphc2f-hf-home-")
# Never touch the user's ~/.cache and never reach the network from tests.
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TQDM_DISABLE", "1")

# tests/helpers holds importable test utilities (fake dataset trees, ...).
sys.path.insert(0, str(Path(__file__).parent / "helpers"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory):
    """A tiny built dataset named ``maphc2f`` in its own parent folder
    (written with the I/O layer, no builder). Shared: do not modify."""
    from tiny_dataset import make_dataset

    root = tmp_path_factory.mktemp("built") / "maphc2f"
    make_dataset(root)
    return root


@pytest.fixture
def dataset_copy(built_dataset, tmp_path):
    """A private, modifiable copy of ``built_dataset`` (``<tmp>/maphc2f``)."""
    from tiny_dataset import copy_dataset

    return copy_dataset(built_dataset, tmp_path / "maphc2f")
