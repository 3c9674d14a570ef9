"""Run a build's shard tasks on Ray: embedded on one machine, or on a cluster.

This is the only module of the package that imports ``ray``; the builder
reaches it through :func:`maphc2f_data.builder.runner.make_runner`.

Where Ray runs
    ``RayRunner()`` with no address (and no ``RAY_ADDRESS``) starts an
    embedded local Ray sized to this machine (all its CPUs and GPUs, no
    dashboard) and shuts it down in :meth:`RayRunner.close`. With an address
    (``--ray-address HOST:PORT`` of ``ray start --head``, or ``auto``) it joins
    that cluster; the cluster's own sizing applies, and ``num_cpus`` is never
    passed (Ray refuses it). A Ray already initialised in this process (a test
    session, a notebook) is reused and left running. On a cluster every node
    needs this package installed and ``--out`` (and ``--root``) on a shared
    file system at the same path, since each worker writes its shards where it
    runs. A cluster started with token authentication (Ray's default when a
    token exists) needs ``RAY_AUTH_MODE=token`` and the token
    (``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``) in the driver's environment.

Why shard-granular actors and not Ray Data
    The plan already names every shard and fixes its rows, so the natural
    unit of work is one shard task: one actor call makes and writes one
    planned ``train-NNNNN-of-MMMMM.parquet`` file with the builder's shard
    protocol (temporary name, atomic rename, plan hash), so redoing a task is
    safe and the bytes never depend on which worker ran it or when. Ray Data's
    ``map_batches`` with ``ActorPoolStrategy`` would stream image rows through
    the object store into ``write_parquet``, which names files with random ids
    and cannot write ``-of-N``: we would need a renaming step and a way to
    keep row groups byte-stable, and every PNG would cross the object store.
    Only small results (paths, counts, hashes) travel back here.

The pools
    Shard workers (:class:`ShardWorker`): one actor per CPU of the cluster by
    default (``--workers`` overrides), each with a fractional CPU reservation
    (:func:`pool_spec`) so the pool never takes every CPU (Ray's own tasks
    would then wait forever on a small machine), single-threaded BLAS, spread
    over the nodes. Each makes whole shards: loading, synthesis, metrics, PNG
    encoding and Parquet writing, so a shard's images never leave its process.
    They keep the source reader and the foreground cache for their whole life.

    Foreground actors (:class:`ForegroundActor`), only when SAM is used: each
    loads SAM once and answers the shard workers' cache misses (about one call
    per object image; the on-disk foreground cache makes later builds skip
    them). One actor per GPU with ``num_gpus=1`` when the cluster has GPUs and
    ``--device`` is not the CPU, else one CPU actor; ``--foreground-actors``
    overrides (several actors then share a GPU). Shard workers never import
    torch: on a box with one GPU and many CPUs, every CPU makes shards while
    the GPU runs SAM. Without a SAM checkpoint the classical extractor runs
    inside the shard workers and no foreground actor is started.

Backpressure
    At most :data:`IN_FLIGHT_PER_ACTOR` shard tasks per actor are submitted
    (one running, one queued so the actor never idles); the driver waits with
    ``ray.wait`` and yields results in completion order. Memory therefore
    stays bounded by the pool, not the plan: each actor holds at most one
    Parquet row group of rows (shards stream to their temporary file, see
    :class:`~maphc2f_data.dataset.shards.ShardWriter`), the driver a few small
    results per shard.

Faults
    Actors are created with ``max_restarts=-1`` and their shard calls with
    ``max_task_retries`` (:data:`MAX_SHARD_RETRIES`): if a worker process dies
    (killed, OOM, node lost) Ray restarts the actor and redoes the unfinished
    shard, which either finds the shard already on disk (same plan hash) or
    writes it again from scratch. Exceptions raised by our code are not
    retried, except the transient network/file-system errors of
    :data:`RETRIED_EXCEPTIONS`: a :class:`~maphc2f_data.errors.UserError`
    (bad input) fails the build with its one-line message, a bug with its
    remote traceback; finished shards stay and a rerun resumes.

Refinement actors (:class:`RefineActor`), with ``--npcf``/``--npcfpp``:
    shaped like the foreground pool, between synthesis and encoding. Each
    loads the npcF/npcF++ checkpoints once (``num_gpus=1``, bf16 on CUDA) and
    refines what the shard workers send (normal image, raw anomalies, masks:
    all samples of one source image in one batch);
    the report's ``refine`` stage time counts the wait. One actor per GPU when
    the cluster has GPUs; ``--refine-actors N`` sets the count (CPU actors on
    a cluster without GPUs). With neither, each shard worker loads the
    refiner itself and refines on its CPU. A killed actor is restarted by Ray
    and the call retried, like a shard worker.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import ray
import ray.exceptions

from maphc2f_data.builder.plan import ShardTask
from maphc2f_data.builder.runner import ShardFunction
from maphc2f_data.builder.worker import Progress, ShardResult, WorkerContext, open_extractor, worker_resources
from maphc2f_data.errors import UserError

#: Share of the cluster's logical CPUs the pool may reserve; the rest stays
#: free for Ray's own tasks (and anything else sharing the cluster).
POOL_CPU_SHARE = 0.75
#: Shard tasks submitted per actor at a time: one running, one queued.
IN_FLIGHT_PER_ACTOR = 2
#: How often Ray redoes a shard whose worker process died before giving up.
MAX_SHARD_RETRIES = 3
#: Exceptions from our code that Ray retries (flaky network or file system).
#: ``OSError`` as a whole is not: missing files are bad input
#: (``SourceLayoutError``/``CheckpointError`` are ``FileNotFoundError``).
RETRIED_EXCEPTIONS = (TimeoutError, ConnectionError)
#: Seconds to wait for the pool's actors to start before giving up on them.
ACTOR_START_TIMEOUT_S = 120.0
#: Seconds to wait for the foreground actors, which load SAM first (vit_h is
#: 2.4 GB; a cold network file system can take minutes).
FOREGROUND_START_TIMEOUT_S = 600.0
#: Seconds between progress polls of the actors while shards are running.
PROGRESS_POLL_S = 1.0
#: Object store of the embedded Ray: small, since only results travel.
EMBEDDED_OBJECT_STORE_BYTES = 256 * 1024 ** 2

#: Logical CPUs a foreground actor reserves at most: SAM runs on its GPU (or
#: with torch's own threads on a CPU-only cluster); the reservation only
#: keeps it from being packed onto a node with no CPU left.
FOREGROUND_ACTOR_CPUS = 0.25

#: One BLAS/OpenMP thread per worker: the pool already has a worker per core,
#: and the TPS solve's threaded BLAS otherwise oversubscribes the CPUs.
WORKER_THREAD_ENV = (("OPENBLAS_NUM_THREADS", "1"), ("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"))


class ShardWorkerDiedError(RuntimeError):
    """A shard could not be made because its worker kept dying."""


@dataclass(frozen=True)
class PoolSpec:
    """Size and per-actor resources of an actor pool.

    Attributes
    ----------
    size : int
        Number of actors.
    num_cpus : float
        Logical CPUs reserved per actor (fractional).
    num_gpus : float
        GPUs per actor: 0 for shard workers; 1 for foreground actors on a
        cluster with GPUs (fractional when ``--foreground-actors`` asks for
        more actors than there are GPUs).
    """

    size: int
    num_cpus: float
    num_gpus: float = 0.0


def pool_spec(cluster_resources: Mapping[str, float], *, workers: Optional[int] = None) -> PoolSpec:
    """The shard-worker pool that fits ``cluster_resources``.

    Parameters
    ----------
    cluster_resources : mapping
        ``ray.cluster_resources()`` (key ``"CPU"``).
    workers : int, optional
        Pool size override (``--workers``); default one actor per CPU.

    Returns
    -------
    PoolSpec
        All actors together reserve at most :data:`POOL_CPU_SHARE` of the
        CPUs (and at most one CPU each), so they always fit and leave room.

    Raises
    ------
    UserError
        ``workers < 1``, or the cluster has no CPU.
    """
    cpus = float(cluster_resources.get("CPU", 0.0))
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if cpus <= 0:
        raise UserError("the Ray cluster has no CPU to run shard workers on")
    size = int(workers) if workers is not None else max(1, int(cpus))
    num_cpus = round(min(1.0, POOL_CPU_SHARE * cpus / size), 4)
    return PoolSpec(size=size, num_cpus=max(num_cpus, 0.0001))


def foreground_spec(cluster_resources: Mapping[str, float], *, actors: Optional[int] = None,
                    use_gpu: bool = False) -> PoolSpec:
    """The foreground (SAM) actor pool that fits ``cluster_resources``.

    Parameters
    ----------
    cluster_resources : mapping
        ``ray.cluster_resources()`` (keys ``"CPU"``, ``"GPU"``).
    actors : int, optional
        Pool size override (``--foreground-actors``); default one per GPU
        when ``use_gpu``, else one.
    use_gpu : bool
        Give each actor a GPU share.

    Returns
    -------
    PoolSpec
        CPUs per actor: :data:`FOREGROUND_ACTOR_CPUS`, less on a small cluster
        so that together with the shard workers' :data:`POOL_CPU_SHARE` some
        CPU stays free.

    Raises
    ------
    UserError
        ``actors < 1``, or a GPU is asked for and the cluster has none.
    """
    cpus = float(cluster_resources.get("CPU", 0.0))
    gpus = float(cluster_resources.get("GPU", 0.0))
    if actors is not None and actors < 1:
        raise UserError(f"--foreground-actors must be at least 1, got {actors}")
    if use_gpu and gpus < 1:
        raise UserError("SAM on CUDA was asked for but the Ray cluster has no GPU")
    size = int(actors) if actors is not None else (max(1, int(gpus)) if use_gpu else 1)
    # Half of what the shard workers leave free, shared by the actors.
    num_cpus = round(min(FOREGROUND_ACTOR_CPUS, (1.0 - POOL_CPU_SHARE) * cpus / (2 * size)), 4)
    num_gpus = round(min(1.0, gpus / size), 4) if use_gpu else 0.0
    return PoolSpec(size=size, num_cpus=max(num_cpus, 0.0001), num_gpus=num_gpus)


def uses_foreground_actors(context: WorkerContext) -> bool:
    """Whether ``context``'s foreground model runs in its own actor pool
    (SAM does; the classical extractor runs inside the shard workers)."""
    return context.sam_checkpoint is not None


def wants_gpu(context: WorkerContext, cluster_resources: Mapping[str, float]) -> bool:
    """Whether foreground actors should hold a GPU: SAM is used and either
    ``--device`` asks for CUDA (on a cluster without GPUs
    :func:`foreground_spec` then refuses) or no device is given and the
    cluster has a GPU."""
    if not uses_foreground_actors(context):
        return False
    if context.device is not None:
        return str(context.device).startswith("cuda")
    return float(cluster_resources.get("GPU", 0.0)) >= 1


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` Ray address.

    ``ray.init`` would otherwise retry for minutes. Other forms (``auto``,
    ``ray://...``) are left to Ray.

    Raises
    ------
    UserError
        The address does not accept connections.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at --ray-address {address} ({exc.strerror or exc}); "
                        "start one with `ray start --head --port PORT` or check the address") from None


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


#: ``factory(context)`` -> foreground extractor, run once in each foreground actor.
ExtractorFactory = Callable[[WorkerContext], Any]


def open_context_extractor(context: WorkerContext) -> Any:
    """The extractor ``context`` names (the default :data:`ExtractorFactory`)."""
    return open_extractor(context.sam_checkpoint, context.sam_model, context.device)


@ray.remote(max_restarts=-1, max_task_retries=MAX_SHARD_RETRIES)
class ForegroundActor:
    """A process that holds one foreground model (SAM) and answers masks.

    A model that fails to load does not kill the actor (Ray would restart
    it forever): the exception is kept and raised by every call, so the
    build fails with it (a :class:`~maphc2f_data.errors.UserError`, e.g. a
    bad checkpoint, as its one-line message; anything else, e.g. CUDA out
    of memory, with its traceback).
    """

    def __init__(self, factory: ExtractorFactory, context: WorkerContext) -> None:
        self._error: Optional[Exception] = None
        self._extractor = None
        self._calls = 0
        try:
            self._extractor = factory(context)
        except Exception as exc:  # raised again by describe/extract, see above
            self._error = exc

    def describe(self) -> Dict[str, Any]:
        """``{"pid", "node", "method", "cache_key", "calls"}`` of this actor."""
        if self._error is not None:
            raise self._error
        method = self._extractor.method
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "method": method,
                "cache_key": getattr(self._extractor, "cache_key", method), "calls": self._calls,
                "gpu_ids": ray.get_runtime_context().get_accelerator_ids().get("GPU", [])}

    def extract(self, image: np.ndarray) -> np.ndarray:
        """The extractor's bool (H, W) mask of a uint8 (H, W, 3) RGB image."""
        if self._error is not None:
            raise self._error
        self._calls += 1
        return np.asarray(self._extractor(image))


class RemoteForeground:
    """A :class:`~maphc2f_data.foreground.ForegroundExtractor` that asks a
    :class:`ForegroundActor` (picklable: it travels to the shard workers).

    ``method`` and ``cache_key`` are the actor's extractor's, so rows and the
    foreground cache are exactly those of a build that ran SAM in-process.
    """

    def __init__(self, actor: Any, method: str, cache_key: str) -> None:
        self.actor = actor
        self.method = method
        self.cache_key = cache_key

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return ray.get(self.actor.extract.remote(np.ascontiguousarray(image)))


#: ``factory(context)`` -> refiner, run once in each refinement actor.
RefinerFactory = Callable[[WorkerContext], Any]


def open_context_refiner(context: WorkerContext) -> Any:
    """The npcF/npcF++ refiner ``context`` names, on the actor's device
    (its GPU when it holds one: Ray sets ``CUDA_VISIBLE_DEVICES``)."""
    from maphc2f_data.refine.checkpoints import CheckpointRefiner

    return CheckpointRefiner(context.npcf, context.npcfpp, compile=context.compile)


def refine_spec(cluster_resources: Mapping[str, float], *, actors: Optional[int] = None) -> Optional[PoolSpec]:
    """The refinement actor pool for a build with checkpoints, or None
    (refine inside the shard workers).

    One actor per GPU with ``num_gpus=1`` when the cluster has GPUs;
    ``actors`` (``--refine-actors``) sets the count (sharing the GPUs, or on
    the CPU without them). CPUs per actor as for the foreground pool.

    Raises
    ------
    UserError
        ``actors < 0``.
    """
    gpus = float(cluster_resources.get("GPU", 0.0))
    if actors is not None and actors < 0:
        raise UserError(f"--refine-actors must be at least 0, got {actors}")
    if actors == 0 or (actors is None and gpus < 1):
        return None
    size = int(actors) if actors is not None else int(gpus)
    cpus = float(cluster_resources.get("CPU", 0.0))
    num_cpus = round(min(FOREGROUND_ACTOR_CPUS, (1.0 - POOL_CPU_SHARE) * cpus / (2 * size)), 4)
    num_gpus = round(min(1.0, gpus / size), 4) if gpus >= 1 else 0.0
    return PoolSpec(size=size, num_cpus=max(num_cpus, 0.0001), num_gpus=num_gpus)


#: Calls a refinement actor serves at once (threads): while one batch runs on the GPU, the next
#: one's tensors are prepared and the last one's pasted back. Each call is still one forward pass
#: over its own samples, so the output does not depend on how calls overlap.
REFINE_ACTOR_CONCURRENCY = 4


@ray.remote(max_restarts=-1, max_task_retries=MAX_SHARD_RETRIES, max_concurrency=REFINE_ACTOR_CONCURRENCY)
class RefineActor:
    """A process that holds the npcF/npcF++ refiner and refines samples.

    Like :class:`ForegroundActor`, a refiner that fails to load is kept as
    an error and raised by every call (a bad checkpoint fails the build with
    its one-line message instead of restarting the actor forever).
    """

    def __init__(self, factory: RefinerFactory, context: WorkerContext) -> None:
        self._error: Optional[Exception] = None
        self._refiner = None
        self._calls = 0
        self._samples = 0
        self._count_lock = threading.Lock()  # calls run in REFINE_ACTOR_CONCURRENCY threads
        try:
            self._refiner = factory(context)
        except Exception as exc:  # raised again by describe/refine
            self._error = exc

    def describe(self) -> Dict[str, Any]:
        """``{"pid", "node", "stage", "fingerprint", "calls", "samples", "gpu_ids"}`` of this actor."""
        if self._error is not None:
            raise self._error
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "stage": self._refiner.stage, "fingerprint": dict(self._refiner.fingerprint),
                "calls": self._calls, "samples": self._samples,
                "gpu_ids": ray.get_runtime_context().get_accelerator_ids().get("GPU", [])}

    def refine(self, normal: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The refiner's uint8 (H, W, 3) output."""
        return self.refine_batch([normal], [raw], [mask])[0]

    def refine_batch(self, normals: List[np.ndarray], raws: List[np.ndarray], masks: List[np.ndarray]
                     ) -> np.ndarray:
        """The refiner's uint8 (N, H, W, 3) output for a batch (one forward pass per batch)."""
        if self._error is not None:
            raise self._error
        with self._count_lock:
            self._calls += 1
            self._samples += len(raws)
        return np.asarray(self._refiner.refine_batch(normals, raws, masks))


class RemoteRefiner:
    """A :class:`~maphc2f_data.refine.Refiner` that asks a :class:`RefineActor`
    (picklable: it travels to the shard workers). ``stage`` and
    ``fingerprint`` are the actor's refiner's, so rows are exactly those of a
    build that refined in-process."""

    def __init__(self, actor: Any, stage: str, fingerprint: Mapping[str, Any]) -> None:
        self.actor = actor
        self.stage = stage
        self.fingerprint = dict(fingerprint)

    def refine(self, normal: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.refine_batch([normal], [raw], [mask])[0]

    def refine_batch(self, normals, raws, masks) -> np.ndarray:
        # One round trip per source image's samples (make_samples batches them).
        return ray.get(self.actor.refine_batch.remote([np.ascontiguousarray(a) for a in normals],
                                                      [np.ascontiguousarray(a) for a in raws],
                                                      [np.ascontiguousarray(a) for a in masks]))


@ray.remote(max_restarts=-1, max_task_retries=MAX_SHARD_RETRIES, concurrency_groups={"poll": 1})
class ShardWorker:
    """A process that makes shards, one at a time, keeping its heavy state.

    Shard calls run in the default concurrency group (one at a time); the
    small ``poll`` group answers :meth:`info` and :meth:`progress` while a
    shard is being made.
    """

    def __init__(self, foreground: Optional[RemoteForeground] = None,
                 refiner: Optional[RemoteRefiner] = None) -> None:
        # (task key, samples done) of the shard being made; replaced, never
        # mutated, so the poll thread always reads a consistent pair.
        self._current: Optional[Tuple[str, int]] = None
        self._foreground = foreground
        self._refiner = refiner

    @ray.method(concurrency_group="poll")
    def info(self) -> Dict[str, Any]:
        """``{"pid", "node", "peak_rss_bytes", "shard", "torch_imported"}`` of
        this worker process (``shard``: path of the shard being made, or None)."""
        current = self._current
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "peak_rss_bytes": _peak_rss_bytes(), "shard": current[0] if current else None,
                "torch_imported": "torch" in sys.modules}

    @ray.method(concurrency_group="poll")
    def progress(self) -> Optional[Tuple[str, int]]:
        """``(task key, samples done)`` of the running shard, or None."""
        return self._current

    def run(self, fn: ShardFunction, task: ShardTask, context: WorkerContext) -> ShardResult:
        """Make ``task``'s shard with ``fn`` and name this node as its writer."""
        key = task.relpath
        self._current = (key, 0)

        def tell(n: int) -> None:
            current = self._current
            self._current = (key, (current[1] if current else 0) + int(n))

        try:
            if self._foreground is not None or self._refiner is not None:
                resources = worker_resources(context, extractor=self._foreground, refiner=self._refiner)
                result = fn(task, context, tell, resources)
            else:
                result = fn(task, context, tell)
        finally:
            self._current = None
        return dataclasses.replace(result, node=ray.get_runtime_context().get_node_id())


class RayRunner:
    """Run shard tasks on a pool of Ray actors (see the module docstring).

    Parameters
    ----------
    address : str, optional
        Ray cluster to join (``HOST:PORT`` or ``auto``); default
        ``RAY_ADDRESS``, and without it an embedded local Ray.
    workers : int, optional
        Shard workers; default one per CPU of the cluster (:func:`pool_spec`).
    foreground_actors : int, optional
        SAM actors; default one per GPU, or one without GPUs
        (:func:`foreground_spec`). Only used with a SAM checkpoint.
    foreground_factory : callable, optional
        ``factory(context)`` -> extractor, run once in each foreground actor;
        default :func:`open_context_extractor` (SAM from the context's
        checkpoint). Another factory serves tests and custom models.
    refine_actors : int, optional
        npcF/npcF++ actors (with checkpoints); default one per GPU, or none
        without GPUs (the shard workers then refine themselves) (:func:`refine_spec`).
    refine_factory : callable, optional
        ``factory(context)`` -> refiner, run once in each refinement actor;
        default :func:`open_context_refiner`.
    num_cpus : int, optional
        CPUs of the embedded Ray; default ``os.cpu_count()``. Ignored when
        joining a cluster.
    object_store_memory : int, optional
        Object store of the embedded Ray in bytes; default
        :data:`EMBEDDED_OBJECT_STORE_BYTES`.

    Notes
    -----
    Ray starts on the first :meth:`map_shards` (once per build; an already
    initialised Ray is reused) and the pools live until :meth:`close`.
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, *,
                 foreground_actors: Optional[int] = None, foreground_factory: Optional[ExtractorFactory] = None,
                 refine_actors: Optional[int] = None, refine_factory: Optional[RefinerFactory] = None,
                 num_cpus: Optional[int] = None, object_store_memory: Optional[int] = None) -> None:
        if refine_actors is not None and refine_actors < 0:
            raise UserError(f"--refine-actors must be at least 0, got {refine_actors}")
        if workers is not None and workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        if foreground_actors is not None and foreground_actors < 1:
            raise UserError(f"--foreground-actors must be at least 1, got {foreground_actors}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers
        self.foreground_actors = foreground_actors
        self.foreground_factory = foreground_factory or open_context_extractor
        self.refine_actors = refine_actors
        self.refine_factory = refine_factory or open_context_refiner
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self._owns_ray = False
        self._actors: List[Any] = []
        self._foreground: List[Any] = []
        self._refiners: List[Any] = []
        self._spec: Optional[PoolSpec] = None
        self._foreground_spec: Optional[PoolSpec] = None
        self._refine_spec: Optional[PoolSpec] = None
        self._pool_key: Optional[Tuple[Any, ...]] = None

    # -- Ray and the pool ---------------------------------------------------

    def _ensure_ray(self) -> None:
        if ray.is_initialized():
            return
        if not self.address:
            # address="local" always starts a new embedded Ray: without it ray.init
            # joins a cluster already running on this machine (`ray start`), which
            # refuses num_cpus. Joining happens only with --ray-address/RAY_ADDRESS.
            ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     object_store_memory=self.object_store_memory or EMBEDDED_OBJECT_STORE_BYTES,
                     logging_level=logging.WARNING)
            self._owns_ray = True
            return
        check_reachable(self.address)
        try:
            ray.init(address=self.address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            chain = f"{exc} {exc.__cause__ or ''}"
            hint = ("; the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                    "(or ~/.ray/auth_token) to its token") if "authentication" in chain.lower() else ""
            reason = " ".join(str(exc).split())[:200]
            raise UserError(f"cannot join the Ray cluster at {self.address}: {reason}{hint}") from None
        # Disconnects this driver in close(); the cluster itself keeps running.
        self._owns_ray = True

    def _ensure_pool(self, context: WorkerContext) -> List[Any]:
        resources = ray.cluster_resources()
        spec = pool_spec(resources, workers=self.workers)
        fg_spec = None
        if uses_foreground_actors(context):
            fg_spec = foreground_spec(resources, actors=self.foreground_actors,
                                      use_gpu=wants_gpu(context, resources))
        fg_settings = (context.sam_checkpoint, context.sam_model, context.device) if fg_spec else None
        rf_spec = refine_spec(resources, actors=self.refine_actors) if context.npcf else None
        rf_settings = (context.npcf, context.npcfpp) if rf_spec else None
        key = (spec, fg_spec, fg_settings, rf_spec, rf_settings)
        if self._actors and key == self._pool_key:
            return self._actors
        self._kill_actors()
        remotes: List[Optional[RemoteForeground]] = [None]
        if fg_spec is not None:
            remotes = self._start_foreground(fg_spec, context, resources)
        refiners: List[Optional[RemoteRefiner]] = [None]
        if rf_spec is not None:
            refiners = self._start_refiners(rf_spec, context, resources)
        actors = [
            ShardWorker.options(num_cpus=spec.num_cpus, scheduling_strategy="SPREAD",
                                runtime_env={"env_vars": dict(WORKER_THREAD_ENV)}
                                ).remote(remotes[i % len(remotes)], refiners[i % len(refiners)])
            for i in range(spec.size)
        ]
        info_refs = [actor.info.remote() for actor in actors]
        ready, _ = ray.wait(info_refs, num_returns=len(info_refs), timeout=ACTOR_START_TIMEOUT_S)
        ready_ids = {ref.hex() for ref in ready}
        # Keep the pool in creation order so submission order is reproducible.
        started = [actor for actor, ref in zip(actors, info_refs) if ref.hex() in ready_ids]
        for actor, ref in zip(actors, info_refs):
            if ref.hex() not in ready_ids:  # could not be placed: run with the others
                ray.kill(actor, no_restart=True)
        if not started:
            self._kill_actors()
            raise UserError(
                f"no shard worker could start on the Ray cluster within {ACTOR_START_TIMEOUT_S:.0f} s "
                f"(each needs {spec.num_cpus} CPU; the cluster has {resources.get('CPU', 0):g} CPU)"
            )
        self._actors = started
        self._spec = spec
        self._foreground_spec = fg_spec
        self._refine_spec = rf_spec
        self._pool_key = key
        return self._actors

    def _start_actors(self, actor_class: Any, factory: Callable[[WorkerContext], Any], spec: PoolSpec,
                      context: WorkerContext, resources: Mapping[str, float], what: str, option: str
                      ) -> "tuple[List[Any], List[Dict[str, Any]]]":
        """Start ``spec.size`` model actors (foreground or refinement) and wait
        for each to load its model; returns the actors and their ``describe()``.

        A model that cannot load fails here: a UserError (bad checkpoint) as
        its one-line message, anything else with its traceback."""
        actors = [actor_class.options(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus,
                                      scheduling_strategy="SPREAD").remote(factory, context)
                  for _ in range(spec.size)]
        refs = [actor.describe.remote() for actor in actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=FOREGROUND_START_TIMEOUT_S)
        if len(ready) < len(refs):
            for actor in actors:
                ray.kill(actor, no_restart=True)
            self._kill_actors()
            raise UserError(
                f"the {spec.size} {what} actor(s) could not start on the Ray cluster within "
                f"{FOREGROUND_START_TIMEOUT_S:.0f} s (each needs {spec.num_cpus} CPU and {spec.num_gpus} GPU; the "
                f"cluster has {resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU); lower {option}"
            )
        try:
            return actors, ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            self._kill_actors()
            if isinstance(exc.cause, UserError):
                raise exc.cause from None
            raise

    def _start_foreground(self, spec: PoolSpec, context: WorkerContext,
                          resources: Mapping[str, float]) -> List[RemoteForeground]:
        """Start the foreground actors; their extractors' method and cache key
        go to the shard workers with the handles."""
        actors, described = self._start_actors(ForegroundActor, self.foreground_factory, spec, context, resources,
                                               "foreground (SAM)", "--foreground-actors")
        self._foreground = actors
        return [RemoteForeground(actor, info["method"], info["cache_key"])
                for actor, info in zip(actors, described)]

    def _start_refiners(self, spec: PoolSpec, context: WorkerContext,
                        resources: Mapping[str, float]) -> List[RemoteRefiner]:
        """Start the refinement actors; their refiners' stage and fingerprint go
        to the shard workers with the handles."""
        actors, described = self._start_actors(RefineActor, self.refine_factory, spec, context, resources,
                                               "refinement", "--refine-actors")
        self._refiners = actors
        return [RemoteRefiner(actor, info["stage"], info["fingerprint"]) for actor, info in zip(actors, described)]

    def _kill_actors(self) -> None:
        for actor in self._actors + self._foreground + self._refiners:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node or session
                pass
        self._actors = []
        self._foreground = []
        self._refiners = []
        self._spec = None
        self._foreground_spec = None
        self._refine_spec = None
        self._pool_key = None

    def worker_info(self) -> List[Dict[str, Any]]:
        """:meth:`ShardWorker.info` of each pool actor, in pool order (for
        tests and benchmarks); empty before the first :meth:`map_shards`."""
        actors = list(self._actors)
        return ray.get([actor.info.remote() for actor in actors]) if actors else []

    def foreground_info(self) -> List[Dict[str, Any]]:
        """:meth:`ForegroundActor.describe` of each foreground actor (empty
        without SAM or before the first :meth:`map_shards`)."""
        actors = list(self._foreground)
        return ray.get([actor.describe.remote() for actor in actors]) if actors else []

    def refine_info(self) -> List[Dict[str, Any]]:
        """:meth:`RefineActor.describe` of each refinement actor (empty when
        the shard workers refine themselves, or before the first :meth:`map_shards`)."""
        actors = list(self._refiners)
        return ray.get([actor.describe.remote() for actor in actors]) if actors else []

    def describe(self) -> str:
        """Where shards are made, for the report: e.g. "embedded Ray, 2 shard
        workers, 1 SAM actor on GPU"."""
        if self.address:
            where = f"Ray cluster at {self.address}"
        else:
            where = "embedded Ray" if self._owns_ray else "this process's Ray session"
        parts = [where]
        if self._spec is not None:
            parts.append(f"{self._spec.size} shard worker{'s' if self._spec.size != 1 else ''}")
        fg = self._foreground_spec
        if fg is not None:
            device = "GPU" if fg.num_gpus else "CPU"
            parts.append(f"{fg.size} SAM actor{'s' if fg.size != 1 else ''} on {device}")
        rf = self._refine_spec
        if rf is not None:
            device = "GPU" if rf.num_gpus else "CPU"
            parts.append(f"{rf.size} refinement actor{'s' if rf.size != 1 else ''} on {device}")
        return ", ".join(parts)

    @property
    def refine_pool(self) -> Optional[PoolSpec]:
        """The refinement pool's spec, or None (no checkpoints, refinement in
        the shard workers, or not started)."""
        return self._refine_spec

    @property
    def pool(self) -> Optional[PoolSpec]:
        """The shard-worker pool's spec, or None before the first :meth:`map_shards`."""
        return self._spec

    @property
    def foreground_pool(self) -> Optional[PoolSpec]:
        """The foreground pool's spec, or None (no SAM, or not started)."""
        return self._foreground_spec

    # -- running ------------------------------------------------------------

    def prepare(self, context: WorkerContext) -> str:
        """Start Ray and the pools for ``context`` now (the builder calls this
        before it draws its progress bar, so Ray's start-up messages and
        seconds stay out of the bar's rate); :meth:`map_shards` reuses them.
        Returns :meth:`describe`."""
        self._ensure_ray()
        self._ensure_pool(context)
        return self.describe()

    def map_shards(self, tasks: Iterable[ShardTask], fn: ShardFunction, context: WorkerContext, *,
                   progress: Optional[Progress] = None) -> Iterator[ShardResult]:
        """Make every task's shard on the pool; yield results as they finish.

        Parameters
        ----------
        tasks : iterable of ShardTask
        fn : callable
            Top-level picklable ``fn(task, context, progress)``
            (:func:`~maphc2f_data.builder.worker.build_shard`).
        context : WorkerContext
        progress : callable, optional
            Told ``n`` as samples finish (polled from the actors about once a
            second; a redone shard is never counted twice).

        Yields
        ------
        ShardResult
            In completion order, with ``node`` the Ray node id of the writer.

        Raises
        ------
        UserError
            Bad input met by a worker (its own one-line message), or no
            worker could start.
        ShardWorkerDiedError
            A shard's worker died more than :data:`MAX_SHARD_RETRIES` times.
        """
        pending: Deque[ShardTask] = deque(tasks)
        if not pending:
            return
        tell = progress or (lambda n: None)
        self._ensure_ray()
        actors = self._ensure_pool(context)
        fn_ref = ray.put(fn)
        context_ref = ray.put(context)
        load = [0] * len(actors)
        in_flight: Dict[Any, Tuple[ShardTask, int]] = {}
        reported: Dict[str, int] = {}
        polls: Dict[Any, int] = {}

        def submit() -> None:
            while pending:
                index = min(range(len(actors)), key=lambda i: (load[i], i))
                if load[index] >= IN_FLIGHT_PER_ACTOR:
                    return
                task = pending.popleft()
                ref = actors[index].run.options(retry_exceptions=list(RETRIED_EXCEPTIONS)).remote(
                    fn_ref, task, context_ref)
                in_flight[ref] = (task, index)
                load[index] += 1

        def report(key: str, done: int) -> None:
            before = reported.get(key, 0)
            if done > before:
                reported[key] = done
                tell(done - before)

        submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=PROGRESS_POLL_S)
            if progress is not None:
                self._poll_progress(actors, polls, report)
            for ref in ready:
                task, index = in_flight.pop(ref)
                load[index] -= 1
                result = self._result(ref, task)
                report(task.relpath, len(task.samples))
                yield result
            submit()

    def _poll_progress(self, actors: List[Any], polls: Dict[Any, int], report) -> None:
        asked = set(polls.values())
        for index, actor in enumerate(actors):
            if index not in asked:
                polls[actor.progress.options(max_task_retries=0).remote()] = index
        answered, _ = ray.wait(list(polls), num_returns=len(polls), timeout=0)
        for ref in answered:
            polls.pop(ref)
            try:
                current = ray.get(ref)
            except ray.exceptions.RayError:  # the actor is restarting; ask again later
                continue
            if current is not None:
                report(*current)

    @staticmethod
    def _result(ref: Any, task: ShardTask) -> ShardResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, UserError):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise ShardWorkerDiedError(
                f"shard {task.relpath} was not made: its worker died {MAX_SHARD_RETRIES + 1} times "
                f"({type(exc).__name__}: {reason}); finished shards are kept, rerun the same command to resume"
            ) from None

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Stop the pool; shut down the embedded Ray (or disconnect from the
        cluster) if this runner started it. A Ray it found running is left as is."""
        if ray.is_initialized():
            self._kill_actors()
            if self._owns_ray:
                ray.shutdown()
        self._actors = []
        self._foreground = []
        self._refiners = []
        self._owns_ray = False

    def __enter__(self) -> "RayRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
