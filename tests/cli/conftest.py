"""Fixtures of the dataset CLI tests: a tiny built dataset and private copies of it."""

from __future__ import annotations

import pytest
from tiny_dataset import copy_dataset, make_dataset


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory):
    """A built dataset named ``maphc2f`` in its own parent folder. Do not modify."""
    root = tmp_path_factory.mktemp("built") / "maphc2f"
    make_dataset(root)
    return root


@pytest.fixture
def dataset_copy(built_dataset, tmp_path):
    """A private, modifiable copy of ``built_dataset`` (``<tmp>/maphc2f``)."""
    return copy_dataset(built_dataset, tmp_path / "maphc2f")
