"""``dataset_lock``: one writer (or several readers) of a dataset folder at a time.

The lock is an ``fcntl.flock`` on ``<dataset>/.cache/build.lock``: the build
and ``maphc2f splits`` hold it exclusively while they write, ``maphc2f
export`` holds it shared while it reads, so a reader never sees half-written
shards and two writers never interleave. The kernel drops it when its holder
dies, so a killed command never leaves the folder locked. The file itself
also marks the folder as an unfinished first build (see :mod:`.folders`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from maphc2f_data.dataset.config import CACHE_DIR
from maphc2f_data.errors import UserError

#: Lock file of a dataset folder (under :data:`CACHE_DIR`, never published).
LOCK_NAME = "build.lock"


def lock_path(out: os.PathLike) -> Path:
    """Path of the lock file of the dataset folder ``out``."""
    return Path(out) / CACHE_DIR / LOCK_NAME


@contextlib.contextmanager
def dataset_lock(out: os.PathLike, what: str, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock of the dataset folder ``out`` for the command ``what``.

    Parameters
    ----------
    out : path-like
        The dataset folder.
    what : str
        The command taking the lock (``"maphc2f-build"``, ``"maphc2f splits"``),
        named in the refusal.
    shared : bool
        Take a shared (reader) lock: other readers may hold it too, a writer
        may not. A read-only folder without a lock file is read unlocked
        (nothing can write it either).

    Raises
    ------
    UserError
        Another command holds the lock in a conflicting mode.
    """
    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
    except OSError:
        if not shared:
            raise
        yield  # a read-only dataset: no writer can hold it
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            doing = "read" if shared else "write"
            raise UserError(f"{what}: cannot {doing} {out}: another maphc2f command is using it "
                            f"(lock {path}); wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
