"""A tiny raw demo build and tiny npcF / npcF++ checkpoints trained on it, made once per session.

Imported by ``tests/refine/conftest.py`` and ``tests/training/conftest.py`` (via ``sys.path``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402

#: Train the tiny refiners one epoch on 64 px rows, batch 8, without the perceptual backbone's cost dominating.
TRAIN = ["--epochs", "1", "--batch-size", "8", "--size", "64", "--no-progress", "--seed", "0"]


def train(*argv: str) -> int:
    from maphc2f_data.cli.main import main

    return main(["train", *argv])


@pytest.fixture(scope="session")
def raw_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("refine") / "raw"
    assert run_build(out, "--categories", "nut") == 0  # 8 images x 3 types = 24 rows at 64 px
    return out


@pytest.fixture(scope="session")
def checkpoints(raw_build, tmp_path_factory):
    """``(npcf, npcfpp)`` tiny checkpoints after one epoch each."""
    folder = tmp_path_factory.mktemp("ckpt")
    npcf, npcfpp = folder / "npcf.safetensors", folder / "npcfpp.safetensors"
    assert train("npcf", "--data", str(raw_build), "--out", str(npcf), "--model", "npcf-tiny", *TRAIN) == 0
    assert train("npcfpp", "--data", str(raw_build), "--npcf", str(npcf), "--out", str(npcfpp),
                 "--model", "npcfpp-tiny", *TRAIN) == 0
    return npcf, npcfpp
