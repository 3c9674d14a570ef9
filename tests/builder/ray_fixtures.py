"""The one embedded Ray session shared by the Ray unit tests.

Imported by the Ray test modules (``from ray_fixtures import ray_session``)
rather than defined in ``conftest.py``, so the rest of the suite never pays
Ray's start-up. Ray starts once per test session (a few seconds) and the
runners under test reuse it (``RayRunner`` leaves an already initialised Ray
running).
"""

from __future__ import annotations

import logging
import shutil
import tempfile

import pytest

#: Small on purpose: 2 CPUs like the CI machines, a 100 MB object store.
SESSION_CPUS = 2
SESSION_OBJECT_STORE_BYTES = 100 * 1024 ** 2


@pytest.fixture(scope="session")
def ray_session():
    """An initialised local Ray (2 CPUs, no dashboard), shut down at the end."""
    import ray

    if ray.is_initialized():  # another module's copy of this fixture started it
        yield ray
        return
    # A short path: Ray puts Unix sockets under it (limited to ~107 characters).
    temp_dir = tempfile.mkdtemp(prefix="mray-", dir="/tmp")
    ray.init(num_cpus=SESSION_CPUS, include_dashboard=False, object_store_memory=SESSION_OBJECT_STORE_BYTES,
             _temp_dir=temp_dir, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
