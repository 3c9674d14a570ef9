"""Session-wide fake dataset trees (tiny images, written once per session).

The tree builders live in ``tests/helpers/fake_trees.py``; this file puts
that folder on ``sys.path`` so tests here can ``from fake_trees import ...``.
Tests must not modify these shared trees: error cases build their own in
``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

from fake_trees import (  # noqa: E402
    make_btad_tree,
    make_folder_tree,
    make_mvtec_tree,
    make_visa_tree,
)


@pytest.fixture(scope="session")
def mvtec_root(tmp_path_factory) -> Path:
    """bottle + carpet, 3 train, 2 test good, 2 defects x 2 images."""
    return make_mvtec_tree(tmp_path_factory.mktemp("mvtec"))


@pytest.fixture(scope="session")
def visa_root(tmp_path_factory) -> Path:
    """candle + pcb1 as downloaded: 3 train, 2 test normal, 2 anomalies each."""
    return make_visa_tree(tmp_path_factory.mktemp("visa"))


@pytest.fixture(scope="session")
def visa_prepared_root(tmp_path_factory) -> Path:
    """candle + pcb1 in the prepared MVTec-like layout."""
    return make_visa_tree(tmp_path_factory.mktemp("visa_prepared"), prepared=True)


@pytest.fixture(scope="session")
def btad_root(tmp_path_factory) -> Path:
    """01, 02, 03 with mixed extensions: 3 train ok, 2 test ok, 2 test ko."""
    return make_btad_tree(tmp_path_factory.mktemp("btad"))


@pytest.fixture(scope="session")
def folder_single_root(tmp_path_factory) -> Path:
    """One category: 3 images at the top, 1 nested, a hidden image, a .txt."""
    return make_folder_tree(tmp_path_factory.mktemp("plain_images"))


@pytest.fixture(scope="session")
def folder_multi_root(tmp_path_factory) -> Path:
    """Categories "alpha" and "beta" (same content each) and an empty "gamma"."""
    root = make_folder_tree(tmp_path_factory.mktemp("folders"), ["alpha", "beta"])
    (root / "gamma" / "empty_child").mkdir(parents=True)
    return root
