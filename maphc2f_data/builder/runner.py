"""Runners: who executes the shard tasks of a build.

The builder plans every shard up front and hands the list to a runner, which
calls the worker function on each task and yields the results as they finish.
A runner never changes what a shard contains, only where and when it is made,
so every runner gives byte-identical shards.

The interface (:class:`Runner`) is small on purpose, so the Ray runner
(``maphc2f_data.builder.ray_runner``, the only module that imports ray) can
implement it with actors that hold the foreground model: ``fn`` is a
top-level picklable function ``fn(task, context, progress=None)`` and
``context`` a small frozen dataclass, so an actor can keep
:func:`~maphc2f_data.builder.worker.worker_resources` alive across tasks.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
from typing import Callable, Iterable, Iterator, Optional, Protocol, runtime_checkable

from maphc2f_data.builder.plan import ShardTask
from maphc2f_data.builder.worker import Progress, ShardResult, WorkerContext
from maphc2f_data.errors import UserError

#: ``fn(task, context, progress)`` -> ShardResult; :func:`~maphc2f_data.builder.worker.build_shard`.
#: A runner that opens the heavy state itself (the Ray runner's shard workers
#: with a remote SAM) passes it as a fourth argument, ``resources``.
ShardFunction = Callable[..., ShardResult]


@runtime_checkable
class Runner(Protocol):
    """What the builder needs from a runner.

    ``map_shards`` yields one :class:`ShardResult` per task, in any order,
    with ``node`` set to where the shard was written. ``progress(n)`` must be
    called with a total of ``len(task.samples)`` per task, incrementally or
    when the task finishes. An exception from ``fn`` that the runner cannot
    retry propagates out of the iterator; finished shards stay on disk and a
    rerun skips them. A runner may also have ``prepare(context) -> str``,
    which the builder calls before its progress bar to start expensive parts
    early; the string says where shards will be made (for the report).
    """

    name: str

    def map_shards(self, tasks: Iterable[ShardTask], fn: ShardFunction, context: WorkerContext, *,
                   progress: Optional[Progress] = None) -> Iterator[ShardResult]:
        ...  # pragma: no cover

    def close(self) -> None:
        ...  # pragma: no cover


class SerialRunner:
    """Run every shard in this process, one after the other.

    For debugging (``--serial``: breakpoints and tracebacks in one process)
    and the builder's own tests; the foreground extractor is opened once
    (``worker_resources`` caches it per context) and reused. Gives the same
    bytes as the Ray runner.

    Parameters
    ----------
    node : str, optional
        Recorded as the writer of every shard; default the host name.
    """

    name = "serial"

    def __init__(self, node: Optional[str] = None):
        self.node = node or socket.gethostname()

    def map_shards(self, tasks: Iterable[ShardTask], fn: ShardFunction, context: WorkerContext, *,
                   progress: Optional[Progress] = None) -> Iterator[ShardResult]:
        for task in tasks:
            result = fn(task, context, progress)
            if not result.resumed:
                result = dataclasses.replace(result, node=self.node)
            yield result

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "SerialRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Module and class of the Ray runner; imported only when asked for.
RAY_RUNNER = ("maphc2f_data.builder.ray_runner", "RayRunner")


def make_runner(workers: Optional[int] = None, ray_address: Optional[str] = None, *, serial: bool = False,
                foreground_actors: Optional[int] = None, refine_actors: Optional[int] = None) -> Runner:
    """The runner for ``--serial``/``--workers``/``--ray-address``/``--foreground-actors``/``--refine-actors``.

    By default the Ray runner: with an address (``ray_address`` or
    ``RAY_ADDRESS``) it joins that cluster, without one it starts an embedded
    local Ray; ``workers=None`` sizes the pools from the cluster's resources.
    ``serial=True`` gives :class:`SerialRunner` (every shard in this process,
    no Ray: for debugging; same bytes).

    Raises
    ------
    UserError
        ``serial`` together with Ray options, the Ray runner is not
        importable (Ray missing from the installation), or ``RayRunner``
        refuses the sizes (``workers < 1``, ``foreground_actors < 1``,
        ``refine_actors < 0``).
    """
    if serial:
        given = [name for name, value in (("--workers", workers), ("--ray-address", ray_address),
                                          ("--foreground-actors", foreground_actors),
                                          ("--refine-actors", refine_actors)) if value is not None]
        if given:
            raise UserError(f"--serial runs without Ray and cannot be combined with {', '.join(given)}")
        return SerialRunner()
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    module_name, class_name = RAY_RUNNER
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, "ray"):
            raise UserError("this installation lacks Ray (pip install 'ray[data]'); use --serial to build "
                            "without it") from None
        raise
    return getattr(module, class_name)(workers=workers, address=address, foreground_actors=foreground_actors,
                                       refine_actors=refine_actors)
