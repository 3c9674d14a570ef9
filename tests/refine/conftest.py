"""Shared fixtures: a tiny raw demo build and tiny refiner checkpoints (``tests/helpers/refine_fixtures.py``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from refine_fixtures import checkpoints, raw_build  # noqa: E402,F401
