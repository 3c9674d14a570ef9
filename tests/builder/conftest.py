"""Built datasets shared by the builder tests (each built once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_helpers import run_build  # noqa: E402


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """A finished demo build (nut + brick, seed 0); tests must not modify it."""
    out = tmp_path_factory.mktemp("demo-build") / "maphc2f"
    assert run_build(out) == 0
    return out
