"""Helpers shared by the builder tests (imported via ``sys.path``, not collected)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: The demo build every builder test compares against: 64 px, one sample per
#: image and type, nut + brick (8 training images each: 48 rows), 10-row shards.
DEMO_ARGS = ["--source", "demo", "--size", "64", "--count", "1", "--categories", "nut,brick",
             "--rows-per-shard", "10", "--no-progress"]


#: Options that select the Ray runner (``run_build`` then omits ``--serial``).
RAY_OPTIONS = ("--workers", "--ray-address", "--foreground-actors", "--ray")


def run_build(out: Path, *extra: str) -> int:
    """``maphc2f-build`` with :data:`DEMO_ARGS` (later options win) into ``out``.

    The builder's tests are about what a build writes, not where it runs, so
    they use the serial runner (no Ray start-up per build); pass a Ray option
    (``--workers N``, ``--ray-address``; ``--ray`` alone means the default
    embedded Ray) to run on Ray instead.
    """
    from maphc2f_data.cli.build import main

    on_ray = any(arg.split("=")[0] in RAY_OPTIONS for arg in extra)
    extra = tuple(arg for arg in extra if arg != "--ray")
    return main([*DEMO_ARGS, *(() if on_ray else ("--serial",)), "--out", str(out), *extra])


def file_states(folder: Path) -> dict:
    """Relative path -> (sha256, mtime_ns, inode) of every shard under ``folder/data``."""
    states = {}
    for path in sorted((folder / "data").rglob("*.parquet")):
        stat = os.stat(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        states[path.relative_to(folder).as_posix()] = (digest, stat.st_mtime_ns, stat.st_ino)
    return states
