"""The shard worker: turn one :class:`~maphc2f_data.builder.plan.ShardTask`
into one Parquet shard.

:func:`build_shard` is a top-level function of ``(task, context)`` so any
runner can ship it to another process: the serial runner calls it in the
driver, the Ray runner from actors. ``context`` (:class:`WorkerContext`) is
small, frozen and hashable; the heavy state it describes (the source reader,
the foreground extractor with its model, the foreground cache) is opened once
per process by :func:`worker_resources` and reused for every shard, which is
what lets a Ray actor load SAM once.

A shard's bytes depend only on its planned samples and the context, never on
which worker made it or when, and a shard already on disk with the same plan
hash is returned as is (never rewritten).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from maphc2f_data.builder.plan import ShardTask
from maphc2f_data.dataset.shards import ShardInfo
from maphc2f_data.builder.rows import make_rows_batch
from maphc2f_data.sampling import StageTimes, load_square
from maphc2f_data.synthesis import DEFECT_TYPES
from maphc2f_data.errors import CorruptImageError

#: ``progress(n)`` is told after every ``n`` finished (or given up) samples.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class WorkerContext:
    """What a worker needs to make shards (small, picklable, hashable).

    Attributes
    ----------
    out_dir : str
        Absolute output dataset folder.
    source : str
        Source name.
    root : str or None
        Absolute source root (None for the demo).
    size : int
        Output image side.
    png_compression : int
        OpenCV PNG level.
    sam_checkpoint : str or None
        SAM checkpoint; None = classical foreground.
    sam_model : str
        SAM variant.
    device : str or None
        Torch device for SAM (None = automatic).
    npcf, npcfpp : str or None
        Absolute npcF / npcF++ checkpoints (None: raw samples); the refiner
        runs in the worker process on its default device.
    compile : bool
        ``torch.compile`` the refiner's networks.
    demo_train_count : int or None
        Demo only: training renders per category (None: the demo's default).
    """

    out_dir: str
    source: str
    root: Optional[str]
    size: int
    png_compression: int
    sam_checkpoint: Optional[str] = None
    sam_model: str = "vit_h"
    device: Optional[str] = None
    npcf: Optional[str] = None
    npcfpp: Optional[str] = None
    compile: bool = False
    demo_train_count: Optional[int] = None


@dataclass(frozen=True)
class ShardResult:
    """What one shard task produced.

    Attributes
    ----------
    category : str
    index, total : int
        The shard's position.
    path : str
        POSIX path relative to the output folder.
    planned : int
        Samples the plan gave the shard.
    rows_by_type : dict
        Defect type -> rows written.
    sha256 : str or None
        Hex digest of the shard file; None when the shard has no rows (no
        file is written then; see :data:`EMPTY_SHARD_DIR`).
    node : str or None
        Host or Ray node that wrote it (set by the runner).
    skipped_images : tuple of dict
        ``{"source_image", "reason", "samples"}`` per source image that could
        not be read (its planned samples are not in the shard).
    failures : tuple of dict
        ``{"sample_id", "defect_type", "source_image", "reason"}`` per sample
        the synthesiser could not place.
    seconds : dict
        Stage -> seconds spent on this shard (empty when resumed).
    resumed : bool
        True when the shard was already on disk with the same plan hash.
    split : str
        The task's split.
    """

    category: str
    index: int
    total: int
    path: str
    planned: int
    rows_by_type: Dict[str, int]
    sha256: Optional[str]
    node: Optional[str] = None
    skipped_images: Tuple[Dict[str, Any], ...] = ()
    failures: Tuple[Dict[str, Any], ...] = ()
    seconds: Dict[str, float] = field(default_factory=dict)
    resumed: bool = False
    split: str = "train"

    @property
    def rows(self) -> int:
        return sum(self.rows_by_type.values())

    def shard_info(self) -> ShardInfo:
        """The shard as the manifest lists it (only for shards with rows)."""
        if self.sha256 is None:
            raise ValueError(f"{self.path} has no rows and no file; it is not listed in the manifest")
        return ShardInfo(path=self.path, split=self.split, category=self.category, rows=self.rows,
                         sha256=self.sha256, node=self.node)


@dataclass(frozen=True)
class WorkerResources:
    """Per-process heavy state described by a :class:`WorkerContext`."""

    source: Any
    extractor: Any
    cache: Any
    refiner: Any = None


@functools.lru_cache(maxsize=2)
def _open_source_and_cache(context: WorkerContext) -> Tuple[Any, Any]:
    from maphc2f_data.dataset.config import CACHE_DIR
    from maphc2f_data.foreground import ForegroundCache
    from maphc2f_data.sources import get_source

    source = get_source(context.source, context.root, demo_train_count=context.demo_train_count)
    return source, ForegroundCache(Path(context.out_dir) / CACHE_DIR / "foreground")


@functools.lru_cache(maxsize=2)
def open_extractor(sam_checkpoint: Optional[str], sam_model: str, device: Optional[str]) -> Any:
    """The foreground extractor of these settings, opened once per process
    (SAM is loaded here)."""
    import warnings

    from maphc2f_data.foreground import NoSamCheckpointWarning, make_extractor

    with warnings.catch_warnings():
        # The driver tells the user once (see builder.build); workers stay quiet.
        warnings.simplefilter("ignore", NoSamCheckpointWarning)
        return make_extractor(sam_checkpoint=sam_checkpoint, sam_model=sam_model, device=device)


@functools.lru_cache(maxsize=2)
def open_refiner(npcf: Optional[str], npcfpp: Optional[str], compile: bool = False) -> Any:
    """The refiner of these checkpoints, loaded once per process (None without checkpoints)."""
    if not npcf:
        return None
    from maphc2f_data.refine.checkpoints import CheckpointRefiner

    return CheckpointRefiner(npcf, npcfpp, compile=compile)


def worker_resources(context: WorkerContext, extractor: Any = None, refiner: Any = None) -> WorkerResources:
    """The source, extractor and cache of ``context``, opened once per process.

    Parameters
    ----------
    context : WorkerContext
    extractor : ForegroundExtractor, optional
        Use this extractor instead of opening the one ``context`` names (the
        Ray runner passes a handle to its foreground actors, so shard workers
        never load SAM themselves).
    refiner : Refiner, optional
        Use this refiner instead of loading the checkpoints ``context`` names
        (a handle to the Ray runner's refinement actors).
    """
    source, cache = _open_source_and_cache(context)
    if extractor is None:
        extractor = open_extractor(context.sam_checkpoint, context.sam_model, context.device)
    return WorkerResources(source=source, extractor=extractor, cache=cache,
                           refiner=refiner if refiner is not None else open_refiner(context.npcf, context.npcfpp, context.compile))


def _shard_metadata(task: ShardTask, rows_by_type: Dict[str, int], skipped: List[Dict[str, Any]],
                    failures: List[Dict[str, Any]]) -> Dict[str, Any]:
    # Everything here is deterministic: it is part of the shard's bytes, and it
    # lets a resumed build report skips and failures without redoing the work.
    return {"plan_hash": task.plan_hash, "planned": len(task.samples), "rows": rows_by_type,
            "skipped_images": skipped, "failures": failures}


#: Where a shard that ended up with no rows (every input unreadable or every
#: sample failed) is recorded instead of an empty Parquet file, which
#: ``datasets`` cannot load: ``<out>/<EMPTY_SHARD_DIR>/<category>/<file>.json``.
EMPTY_SHARD_DIR = ".cache/build/empty-shards"
#: Samples a shard worker gathers (whole source images) before one call of a batch refiner.
REFINE_BATCH_SAMPLES = 32


def empty_marker_path(out_dir: Path, task: ShardTask) -> Path:
    """Marker file of ``task``'s shard when it holds no rows."""
    return Path(out_dir) / EMPTY_SHARD_DIR / task.category / f"{task.filename}.json"


def _result_from_metadata(task: ShardTask, metadata: Dict[str, Any], sha256: Optional[str]) -> ShardResult:
    return ShardResult(
        category=task.category, index=task.index, total=task.total, path=task.relpath,
        planned=len(task.samples),
        rows_by_type={kind: int(metadata.get("rows", {}).get(kind, 0)) for kind in DEFECT_TYPES},
        sha256=sha256,
        skipped_images=tuple(metadata.get("skipped_images", ())),
        failures=tuple(metadata.get("failures", ())),
        resumed=True, split=task.split,
    )


def finished_shard(task: ShardTask, out_dir: Path) -> Optional[ShardResult]:
    """The result of ``task`` if it is already done: its shard is on disk
    with the same plan hash (only the Parquet footer is read, plus the file's
    sha256), or it was found to have no rows (an empty-shard marker)."""
    import json

    from maphc2f_data.dataset.shards import read_shard_metadata, sha256_file

    path = Path(out_dir) / task.relpath
    if path.is_file():
        metadata = read_shard_metadata(path)
        if metadata and metadata.get("plan_hash") == task.plan_hash:
            return _result_from_metadata(task, metadata, sha256_file(path))
        return None
    marker = empty_marker_path(out_dir, task)
    try:
        metadata = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(metadata, dict) and metadata.get("plan_hash") == task.plan_hash:
        return _result_from_metadata(task, metadata, None)
    return None


def _without_root(reason: str, root: Optional[str]) -> str:
    # Reasons go into the shard's bytes: keep them free of machine-specific paths.
    if root:
        reason = reason.replace(str(Path(root)) + "/", "")
    return reason


def _record_empty(out_dir: Path, task: ShardTask, metadata: Dict[str, Any]) -> None:
    """Record that ``task``'s shard has no rows (an empty-shard marker)."""
    import json

    from maphc2f_data.dataset.shards import atomic_write_bytes

    # Stale shard first: a kill between the two steps leaves neither, so the task is redone.
    (out_dir / task.relpath).unlink(missing_ok=True)
    marker = empty_marker_path(out_dir, task)
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(json.dumps(metadata, sort_keys=True).encode("utf-8"), marker)


def build_shard(task: ShardTask, context: WorkerContext, progress: Optional[Progress] = None,
                resources: Optional[WorkerResources] = None) -> ShardResult:
    """Make and write the shard of ``task``.

    Parameters
    ----------
    task : ShardTask
    context : WorkerContext
    progress : callable, optional
        Called with the number of samples just finished (for a progress bar).
    resources : WorkerResources, optional
        Pre-opened heavy state; by default :func:`worker_resources(context)`.

    Returns
    -------
    ShardResult
        ``node`` is None; the runner fills it in.

    Notes
    -----
    A source image that cannot be decoded (:class:`CorruptImageError`) is
    skipped with its samples; a sample the synthesiser cannot place
    (:class:`~maphc2f_data.synthesis.SynthesisError`) is recorded as a
    failure. Both are reported, neither stops the build.
    """
    from maphc2f_data.dataset.png import encode_png
    from maphc2f_data.dataset.shards import ShardWriter
    from maphc2f_data.foreground import foreground_for
    from maphc2f_data.synthesis import SynthesisError

    tell = progress or (lambda n: None)
    out_dir = Path(context.out_dir)
    done = finished_shard(task, out_dir)
    if done is not None:
        tell(len(task.samples))
        return done
    res = resources if resources is not None else worker_resources(context)
    times = StageTimes()
    rows_by_type = {kind: 0 for kind in DEFECT_TYPES}
    skipped: List[Dict[str, Any]] = []
    failures: List[Dict[str, Any]] = []
    # Rows stream into the shard's temporary file one row group at a time, so
    # a worker holds at most ROWS_PER_ROW_GROUP rows, whatever the shard size.
    # With a batch refiner, several source images' anomalies go to it in one call of at least
    # REFINE_BATCH_SAMPLES (a GPU then runs full batches, not one image's 3 x count); which images
    # share a call follows the plan alone, so the bytes do not depend on timing or the runner.
    batch_rows = res.refiner is not None and hasattr(res.refiner, "refine_batch")
    pending: List[Any] = []

    def flush() -> None:
        groups = [(group, image, foreground, foreground_png, method)
                  for _, group, image, foreground, foreground_png, method in pending]
        made = make_rows_batch(groups, png_compression=context.png_compression, times=times, refiner=res.refiner)
        for (item, group, *_), rows in zip(pending, made):
            for sample, row in zip(group, rows):
                if isinstance(row, SynthesisError):
                    failures.append({"sample_id": sample.sample_id, "defect_type": sample.defect_type,
                                     "source_image": item.path, "reason": str(row)})
                else:
                    with times.timed("write"):
                        writer.add(row)
                    rows_by_type[row["defect_type"]] += 1
                tell(1)
        pending.clear()

    with ShardWriter(out_dir / task.relpath) as writer:
        for item, group in groupby(task.samples, key=lambda sample: sample.item):
            group = list(group)
            try:
                with times.timed("load"):
                    image = load_square(res.source, item, context.size)
            except CorruptImageError as exc:
                skipped.append({"source_image": item.path, "reason": _without_root(str(exc), context.root),
                                "samples": len(group)})
                tell(len(group))
                continue
            with times.timed("foreground"):
                foreground, method = foreground_for(res.source, item, image, res.extractor, res.cache)
            with times.timed("encode"):
                foreground_png = encode_png(foreground, context.png_compression)
            pending.append((item, group, image, foreground, foreground_png, method))
            if not batch_rows or sum(len(entry[1]) for entry in pending) >= REFINE_BATCH_SAMPLES:
                flush()
        if pending:
            flush()
        metadata = _shard_metadata(task, rows_by_type, skipped, failures)
        with times.timed("write"):
            if writer.rows:
                sha256: Optional[str] = writer.close(metadata).sha256
                empty_marker_path(out_dir, task).unlink(missing_ok=True)
            else:  # nothing to write: leaving the block discards the writer
                _record_empty(out_dir, task, metadata)
                sha256 = None
    return ShardResult(
        category=task.category, index=task.index, total=task.total, path=task.relpath,
        planned=len(task.samples), rows_by_type=rows_by_type, sha256=sha256,
        skipped_images=tuple(skipped), failures=tuple(failures), seconds=times.as_dict(), split=task.split,
    )
