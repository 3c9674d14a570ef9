"""Helpers shared by the builder tests (imported via ``sys.path``, not collected)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: The demo build every builder test compares against: 64 px, one sample per
#: image and type, nut + brick (8 training images each: 48 rows), 10-row shards.
DEMO_ARGS = ["--source", "demo", "--size", "64", "--count", "1", "--categories", "nut,brick",
             "--rows-per-shard", "10", "--no-progress"]


def run_build(out: Path, *extra: str) -> int:
    """``maphc2f-build`` with :data:`DEMO_ARGS` (later options win) into ``out``."""
    from maphc2f_data.cli.build import main

    return main([*DEMO_ARGS, "--out", str(out), *extra])


def file_states(folder: Path) -> dict:
    """Relative path -> (sha256, mtime_ns, inode) of every shard under ``folder/data``."""
    states = {}
    for path in sorted((folder / "data").rglob("*.parquet")):
        stat = os.stat(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        states[path.relative_to(folder).as_posix()] = (digest, stat.st_mtime_ns, stat.st_ino)
    return states
