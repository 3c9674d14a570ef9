"""Tiny demo builds the export tests share (each made once per session; do not modify)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402

#: One category, 64 px, one sample per training image and type: 8 normals, 24 rows.
CATEGORY = "nut"


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> Path:
    """A demo build of ``nut`` at 64 px (train split only)."""
    out = tmp_path_factory.mktemp("export-demo") / "maphc2f"
    assert run_build(out, "--categories", CATEGORY) == 0
    return out


@pytest.fixture(scope="session")
def demo_build_split(demo_build, tmp_path_factory) -> Path:
    """:func:`demo_build` with a validation split (``maphc2f splits --val-fraction 0.25``)."""
    from maphc2f_data.dataset.splits import make_splits

    out = tmp_path_factory.mktemp("export-demo-split") / "maphc2f"
    shutil.copytree(demo_build, out)
    make_splits(out, 0.25, seed=0)
    return out
