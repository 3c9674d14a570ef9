"""The driver of ``maphc2f-build``: plan, run the shard tasks, write manifest and card.

One call of :func:`build` turns one source into (part of) a dataset folder::

    <out>/data/<category>/train-NNNNN-of-MMMMM.parquet
    <out>/manifest.json, <out>/README.md (card), <out>/build_report.json
    <out>/.cache/foreground/...  (not published)

Several sources share one output folder by running one build per source into
the same ``--out`` (the paper build is three: mvtec, visa, btad); category
names must then be unique across sources, and every category must be built
with the same seed, size, PNG level and foreground model.

Restart safety: shards are written under a temporary name and renamed; a shard
on disk whose stored plan hash matches its task is never rewritten (unless its
bytes no longer match the sha256 the manifest recorded: then it is made
again); leftover temporary files are removed at start; the manifest and card
are written last.
Rebuilding some categories (``--categories``) touches only their shards and
manifest entries. A lock file refuses a second concurrent build of one folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from maphc2f_data import __version__
from maphc2f_data.synthesis import DEFECT_TYPES
from maphc2f_data.builder.plan import (
    BuildConfig,
    BuildPlan,
    ShardTask,
    effective_png_compression,
    make_plan,
)
from maphc2f_data.builder.report import REPORT_NAME, BuildReport, planned_counts
from maphc2f_data.builder.runner import Runner
from maphc2f_data.builder.worker import ShardResult, WorkerContext, build_shard, finished_shard
from maphc2f_data.dataset.folders import check_dataset_output, make_output_dir
from maphc2f_data.dataset.lock import dataset_lock
from maphc2f_data.errors import CheckpointError, UserError

#: Files ``--push-to-hub`` never uploads: build caches, temporary files, the
#: timing report and the lock.
HUB_IGNORE_PATTERNS = (".cache/*", "*.tmp-*", "build_report.json")
#: Told once per build without --sam-checkpoint (workers silence the
#: foreground package's own warning so it is not repeated per process).
NO_SAM_MESSAGE = ("no --sam-checkpoint: object foregrounds come from the classical extractor "
                  "(foreground_method='classical'); the paper used SAM, e.g. "
                  "--sam-checkpoint sam_vit_h_4b8939.pth --sam-model vit_h")
#: Skipped inputs or failed samples named in a warning or error line.
LISTED_PROBLEMS = 3
#: Settings every category of one dataset must share.
SHARED_SETTINGS = ("seed", "size", "png_compression", "sam_model")


# -- output folder -------------------------------------------------------


def remove_temporary_files(out: Path) -> List[Path]:
    """Delete ``*.tmp-*`` leftovers of killed writers under ``out``; returns them."""
    removed = []
    for path in sorted(out.rglob("*.tmp-*")):
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def remove_unplanned_shards(out: Path, category: str, keep: Sequence[str]) -> List[Path]:
    """Delete the category's shard files (and empty-shard markers) not in
    ``keep`` (file names); returns the removed shard files.

    Only the rebuilt category's folder is touched: after a change of count or
    rows per shard its old ``-of-M`` files (and any validation shards of an
    earlier ``maphc2f splits``) would otherwise duplicate rows.
    """
    from maphc2f_data.builder.worker import EMPTY_SHARD_DIR
    from maphc2f_data.dataset.config import DATA_DIR

    removed = []
    folder = out / DATA_DIR / category
    if folder.is_dir():
        for path in sorted(folder.glob("*.parquet")):
            if path.name not in keep and path.is_file():
                path.unlink()
                removed.append(path)
    markers = out / EMPTY_SHARD_DIR / category
    if markers.is_dir():
        for path in sorted(markers.glob("*.json")):
            if path.name[: -len(".json")] not in keep:
                path.unlink()
    return removed


# -- manifest ------------------------------------------------------------


def config_record(config: BuildConfig, plan: BuildPlan) -> Dict[str, Any]:
    """The manifest's ``config`` entry of this build (``refine``: stage and checkpoint hashes, when refining)."""
    from maphc2f_data.builder.plan import refine_setting

    return {
        "source": config.source,
        "root": str(Path(config.root).expanduser().resolve()) if config.root else None,
        "seed": int(config.seed),
        "size": int(config.size),
        "count": plan.count,
        "png_compression": effective_png_compression(config),
        "sam_model": config.sam_model if config.sam_checkpoint else None,
        "categories": sorted(plan.categories),
        **({"refine": refine_setting(config)} if config.npcf else {}),
        **({"demo_train_count": int(config.demo_train_count)} if config.demo_train_count is not None else {}),
    }


def check_compatible(existing: Optional[Dict[str, Any]], config: BuildConfig, plan: BuildPlan) -> None:
    """Refuse to mix this build with categories already in ``existing``
    that came from another source (same name) or were made with other settings.

    Raises
    ------
    UserError
    """
    if not existing:
        return
    categories = existing.get("categories") or {}
    for name in plan.categories:
        other = (categories.get(name) or {}).get("source")
        if other is not None and other != config.source:
            raise UserError(
                f"category {name!r} of source {config.source!r} clashes with category {name!r} of source "
                f"{other!r} already in {config.out}; use another --out"
            )
    kept = sorted(set(categories) - set(plan.categories))
    if not kept:
        return
    old = existing.get("config") or {}
    new = config_record(config, plan)
    differing = [key for key in SHARED_SETTINGS if key in old and old[key] != new[key]]
    if differing:
        change = ", ".join(f"{key} {old[key]!r} -> {new[key]!r}" for key in differing)
        raise UserError(
            f"{config.out} holds categories ({', '.join(kept)}) built with other settings ({change}); "
            "rebuild with the same settings or use another --out"
        )


def _category_entry(source: Any, root: Optional[str], name: str, results: Sequence[ShardResult],
                    demo_train_count: Optional[int] = None) -> Dict[str, Any]:
    from maphc2f_data.dataset.config import SOURCE_LICENSES, SOURCE_PRETTY_NAMES
    from maphc2f_data.dataset.manifest import category_entry

    rows = {kind: 0 for kind in DEFECT_TYPES}
    for result in results:
        for kind, n in result.rows_by_type.items():
            rows[kind] += int(n)
    return category_entry(
        source=source.name,
        root=root,
        license=getattr(source, "license", None) or SOURCE_LICENSES.get(source.name, "unknown"),
        pretty_name=getattr(source, "pretty_name", None) or SOURCE_PRETTY_NAMES.get(source.name, source.name),
        rows_by_type=rows,
        images_read=source.images_read(name),
        shards=[result.shard_info() for result in sorted(results, key=lambda r: r.index)
                if result.sha256 is not None],
        demo_train_count=demo_train_count,
    )


def merge_manifest(existing: Optional[Dict[str, Any]], config: BuildConfig, plan: BuildPlan, source: Any,
                   results: Sequence[ShardResult], command: Sequence[str]) -> Dict[str, Any]:
    """The new manifest: this build's categories replaced, every other entry kept as is.

    A category whose every sample was skipped or failed has no shards and is
    left out of ``categories`` (it stays in ``plan``).
    """
    from maphc2f_data.dataset.config import DATASET_NAME, MANIFEST_FORMAT_VERSION
    from maphc2f_data.dataset.manifest import package_versions

    existing = dict(existing or {})
    categories = dict(existing.get("categories") or {})
    plan_categories = dict((existing.get("plan") or {}).get("categories") or {})
    by_category: Dict[str, List[ShardResult]] = {}
    for result in results:
        by_category.setdefault(result.category, []).append(result)
    for name, category_plan in plan.categories.items():
        entry = _category_entry(source, config_record(config, plan)["root"], name, by_category.get(name, []),
                                config.demo_train_count)
        if entry["shards"]:
            categories[name] = entry
        else:  # nothing could be made: no config for it in the card
            categories.pop(name, None)
        plan_categories[name] = category_plan.summary()
    plan_categories = dict(sorted(plan_categories.items()))
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "name": DATASET_NAME,
        "package_version": __version__,
        "versions": package_versions(),
        "command": list(command),
        "config": config_record(config, plan),
        "plan": {"total": sum(int(sum(c[k] for k in DEFECT_TYPES)) for c in plan_categories.values()),
                 "categories": plan_categories},
        "categories": dict(sorted(categories.items())),
        "splits": existing.get("splits") or {"val_fraction": 0.0, "seed": None},
        "total_rows": sum(sum(entry.get("rows", {}).values()) for entry in categories.values()),
    }


# -- the build -----------------------------------------------------------


def worker_context(config: BuildConfig, out: Path) -> WorkerContext:
    """The :class:`WorkerContext` of ``config`` writing into ``out``."""
    return WorkerContext(
        out_dir=str(out),
        source=config.source,
        root=str(Path(config.root).expanduser().resolve()) if config.root else None,
        size=int(config.size),
        png_compression=effective_png_compression(config),
        sam_checkpoint=str(Path(config.sam_checkpoint).expanduser().resolve()) if config.sam_checkpoint else None,
        sam_model=config.sam_model,
        device=config.device,
        npcf=str(Path(config.npcf).expanduser().resolve()) if config.npcf else None,
        npcfpp=str(Path(config.npcfpp).expanduser().resolve()) if config.npcfpp else None,
        compile=bool(config.compile),
        demo_train_count=config.demo_train_count,
    )


def split_finished(tasks: Sequence[ShardTask], out: Path, existing: Optional[Dict[str, Any]], log
                   ) -> "tuple[List[ShardResult], List[ShardTask]]":
    """Results of the tasks already done on disk, and the tasks still to run.

    A done shard keeps the node the manifest recorded for it. One whose bytes
    no longer match the manifest's sha256 is deleted and run again.
    """
    recorded = {shard["path"]: (shard.get("sha256"), shard.get("node"))
                for entry in ((existing or {}).get("categories") or {}).values()
                for shard in entry.get("shards") or []}
    results: List[ShardResult] = []
    pending: List[ShardTask] = []
    for task in tasks:
        done = finished_shard(task, out)
        if done is None:
            pending.append(task)
            continue
        sha256, node = recorded.get(task.relpath, (None, None))
        if done.sha256 is not None and sha256 is not None and sha256 != done.sha256:
            log(f"{task.relpath}: bytes differ from the manifest's sha256; regenerating it")
            (out / task.relpath).unlink()
            pending.append(task)
            continue
        results.append(_with_node(done, node) if sha256 == done.sha256 else done)
    return results, pending


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sample", dynamic_ncols=True, disable=not enabled,
                desc="maphc2f-build", file=sys.stderr)


def build(config: BuildConfig, *, runner: Optional[Runner] = None, command: Sequence[str] = (),
          progress: bool = True, log=None) -> BuildReport:
    """Build (or resume, or partly rebuild) the dataset of ``config``.

    Parameters
    ----------
    config : BuildConfig
    runner : Runner, optional
        Executes the shard tasks; default ``make_runner()``: the Ray runner
        (an embedded local Ray, or the cluster of ``RAY_ADDRESS``), closed
        at the end. Pass ``SerialRunner()`` to stay in this process.
    command : sequence of str
        The command line, recorded in the manifest.
    progress : bool
        Show a tqdm progress bar (rate, ETA) on stderr.
    log : callable, optional
        ``log(message)`` for warnings; default prints to stderr.

    Returns
    -------
    BuildReport
        Also saved as ``<out>/build_report.json``.

    Raises
    ------
    UserError
        Bad options, source or output folder; raised before anything is
        written or removed. Also, after the manifest, card and report are
        written: when the build's categories hold no rows, or with
        ``config.strict`` when an input was skipped or a sample failed.
    """
    from maphc2f_data.dataset.manifest import read_manifest

    log = log or (lambda message: print(f"maphc2f-build: warning: {message}", file=sys.stderr))
    started = time.perf_counter()
    plan = make_plan(config)
    source = plan.source
    out = Path(config.out).expanduser().resolve()
    check_dataset_output(out)
    if config.sam_checkpoint and not Path(config.sam_checkpoint).expanduser().is_file():
        raise CheckpointError(f"SAM checkpoint not found: {config.sam_checkpoint}")
    if config.npcf:
        from maphc2f_data.refine.checkpoints import check_checkpoints

        check_checkpoints(config.npcf, config.npcfpp)
    existing = read_manifest(out) if out.is_dir() else None
    check_compatible(existing, config, plan)
    make_output_dir(out)  # a read-only or virtual --out fails here, before any warning
    for message in plan.warnings:
        log(message)
    if not config.sam_checkpoint:
        log(NO_SAM_MESSAGE)
    tasks = plan.tasks()
    own_runner = runner is None
    if runner is None:
        from maphc2f_data.builder.runner import make_runner

        runner = make_runner()
    report = BuildReport(out_dir=str(out), source=config.source, runner=runner.name,
                         planned=planned_counts(plan.categories), warnings=list(plan.warnings))

    with contextlib.ExitStack() as cleanup:
        if own_runner:
            cleanup.callback(runner.close)
        _run_locked(config, out, plan, tasks, existing, source, runner, report, command, progress, log, started)
    check_outcome(report, strict=config.strict, log=log)
    return report


def _first(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:LISTED_PROBLEMS])
    return shown + (", ..." if len(paths) > LISTED_PROBLEMS else "")


def check_outcome(report: BuildReport, *, strict: bool = False, log=None) -> None:
    """Warn about skipped inputs and failed samples; fail an empty build (or,
    with ``strict``, an incomplete one). Called after the report is saved, so
    everything written stays.

    Raises
    ------
    UserError
        The build's categories hold no rows, or ``strict`` and something
        was skipped or failed.
    """
    log = log or (lambda message: print(f"maphc2f-build: warning: {message}", file=sys.stderr))
    skipped = [entry["source_image"] for entry in report.skipped_images]
    failed = [f"{entry['source_image']} {entry['defect_type']}" for entry in report.failures]
    problems = []
    if skipped:
        problems.append(f"{len(skipped)} unreadable source image{'s' if len(skipped) != 1 else ''} skipped "
                        f"({_first(skipped)})")
    if failed:
        problems.append(f"{len(failed)} sample{'s' if len(failed) != 1 else ''} failed ({_first(failed)})")
    where = f"see {Path(report.out_dir) / REPORT_NAME}"
    if report.total_rows == 0:
        raise UserError(f"the build made no rows of its {report.total_planned} planned samples"
                        f"{': ' + '; '.join(problems) if problems else ''}; {where}")
    if strict and problems:
        raise UserError(f"--strict: {'; '.join(problems)}; {where}")
    for problem in problems:
        log(f"{problem}; {where}")


def _run_locked(config: BuildConfig, out: Path, plan: BuildPlan, tasks: List[ShardTask],
                existing: Optional[Dict[str, Any]], source: Any, runner: Runner, report: BuildReport,
                command: Sequence[str], progress: bool, log, started: float) -> None:
    """Everything :func:`build` does while holding the output folder's lock."""
    from maphc2f_data.dataset.card import write_card
    from maphc2f_data.dataset.manifest import write_manifest

    with dataset_lock(out, "maphc2f-build"):
        remove_temporary_files(out)
        for name in plan.categories:
            keep = [task.filename for task in tasks if task.category == name]
            if remove_unplanned_shards(out, name, keep) and (existing or {}).get("splits", {}).get("val_fraction"):
                message = f"{name}: validation shards removed by the rebuild; run `maphc2f splits` again"
                log(message)
                report.warnings.append(message)
        results, pending = split_finished(tasks, out, existing, log)
        finished_samples = sum(len(task.samples) for task in tasks) - sum(len(task.samples) for task in pending)
        context = worker_context(config, out)
        prepare = getattr(runner, "prepare", None)
        if pending and prepare is not None:  # e.g. start Ray before the bar
            report.runner_detail = prepare(context) or ""
        bar = _progress_bar(plan.total, finished_samples, progress)
        try:
            if pending:
                results.extend(runner.map_shards(pending, build_shard, context, progress=bar.update))
        finally:
            bar.close()
        # A worker killed mid-write (and redone elsewhere) leaves its temp file.
        remove_temporary_files(out)
        for result in sorted(results, key=lambda r: (r.category, r.index)):
            report.add_shard(result)
        report.finish()
        manifest = merge_manifest(existing, config, plan, source, results, command)
        write_manifest(out, manifest)
        write_card(out, manifest)
        report.wall_seconds = time.perf_counter() - started
        report.save(out)


def _with_node(result: ShardResult, node: Optional[str]) -> ShardResult:
    import dataclasses

    return dataclasses.replace(result, node=node)


# -- publishing ----------------------------------------------------------


def push_to_hub(out: os.PathLike, repo_id: str) -> str:
    """Upload a built dataset folder to the Hugging Face Hub as a dataset repo.

    Creates ``repo_id`` if needed and uploads everything but
    :data:`HUB_IGNORE_PATTERNS`. Returns the repo URL.

    Raises
    ------
    UserError
        No manifest in ``out``, or the Hub cannot be reached / refuses
        (offline, no token, no permission).
    """
    from maphc2f_data.dataset.config import MANIFEST_NAME

    out = Path(out).expanduser().resolve()
    if not (out / MANIFEST_NAME).is_file():
        raise UserError(f"{out} is not a built dataset (no {MANIFEST_NAME}); build it before --push-to-hub")
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        url = api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset",
                          ignore_patterns=list(HUB_IGNORE_PATTERNS),
                          commit_message=f"maphc2f-data {__version__} build")
    except Exception as exc:  # network, auth and offline-mode errors all end here
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(f"could not push {out} to the Hub dataset repo {repo_id!r}: {reason}") from None
    return str(url)
