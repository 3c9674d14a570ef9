"""The Ray runner: same bytes as the serial build, retries, faults, pool sizing.

All Ray tests share one embedded Ray session (``ray_fixtures.ray_session``);
the serial reference build is the builder tests' ``demo_dataset`` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_helpers import run_build  # noqa: E402
from ray_fixtures import ray_session  # noqa: E402,F401  (the shared session fixture)
from refine_fixtures import checkpoints, raw_build  # noqa: E402,F401  (tiny npcF/npcF++ checkpoints)

from maphc2f_data.builder.driver import build, worker_context  # noqa: E402
from maphc2f_data.builder.plan import make_plan  # noqa: E402
from maphc2f_data.builder.plan import BuildConfig  # noqa: E402
from maphc2f_data.builder.runner import make_runner  # noqa: E402
from maphc2f_data.builder.worker import build_shard  # noqa: E402
from maphc2f_data.dataset.lock import dataset_lock  # noqa: E402
from maphc2f_data.errors import UserError  # noqa: E402

ray = pytest.importorskip("ray")
from maphc2f_data.builder.ray_runner import (  # noqa: E402
    FOREGROUND_ACTOR_CPUS,
    MAX_SHARD_RETRIES,
    PoolSpec,
    RayRunner,
    check_reachable,
    foreground_spec,
    pool_spec,
    wants_gpu,
)
from maphc2f_data.builder.worker import WorkerContext  # noqa: E402

# The test functions that Ray ships to actors live in this module, which
# --import-mode=importlib makes unimportable by name in a worker process.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: The same build as ``build_helpers.DEMO_ARGS`` (the serial reference).
DEMO_CONFIG = dict(source="demo", categories=("brick", "nut"), count=1, seed=0, size=64, rows_per_shard=10)


def shard_bytes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted((folder / "data").rglob("*.parquet"))}


def manifest_nodes(folder: Path) -> set:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {shard["node"] for entry in manifest["categories"].values() for shard in entry["shards"]}


# -- pool sizing (no Ray needed) -------------------------------------------


def test_pool_follows_the_cpus_and_never_reserves_all_of_them():
    assert pool_spec({"CPU": 2.0}) == PoolSpec(size=2, num_cpus=0.75)
    assert pool_spec({"CPU": 2.0}, workers=1) == PoolSpec(size=1, num_cpus=1.0)
    spec = pool_spec({"CPU": 2.0}, workers=4)
    assert spec.size == 4 and spec.size * spec.num_cpus <= 0.75 * 2


def test_sam_actors_get_one_gpu_each_and_shard_workers_keep_every_cpu():
    # A 16-CPU box with 2 GPUs: two SAM actors on the GPUs, 16 shard workers.
    assert foreground_spec({"CPU": 16.0, "GPU": 2.0}, use_gpu=True) == PoolSpec(
        size=2, num_cpus=FOREGROUND_ACTOR_CPUS, num_gpus=1.0)
    assert pool_spec({"CPU": 16.0, "GPU": 2.0}) == PoolSpec(size=16, num_cpus=0.75)
    # More actors than GPUs share them; without GPUs one CPU actor.
    assert foreground_spec({"CPU": 16.0, "GPU": 1.0}, actors=2, use_gpu=True).num_gpus == 0.5
    assert foreground_spec({"CPU": 4.0}) == PoolSpec(size=1, num_cpus=FOREGROUND_ACTOR_CPUS, num_gpus=0.0)
    # On a small machine both pools together still leave CPU free.
    small = {"CPU": 2.0}
    assert pool_spec(small).size * pool_spec(small).num_cpus + foreground_spec(small).num_cpus < 2.0
    with pytest.raises(UserError, match="no GPU"):
        foreground_spec({"CPU": 4.0}, use_gpu=True)
    with pytest.raises(UserError, match="--workers"):
        pool_spec({"CPU": 4.0}, workers=0)
    with pytest.raises(UserError, match="--foreground-actors"):
        foreground_spec({"CPU": 4.0}, actors=0)


def test_gpu_only_for_sam_on_cuda():
    sam = WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3, sam_checkpoint="/w.pth")
    classical = WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3)
    on_cpu = WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3,
                           sam_checkpoint="/w.pth", device="cpu")
    assert wants_gpu(sam, {"CPU": 8, "GPU": 1})
    assert not wants_gpu(sam, {"CPU": 8})
    assert not wants_gpu(classical, {"CPU": 8, "GPU": 1})
    assert not wants_gpu(on_cpu, {"CPU": 8, "GPU": 1})
    # An explicit CUDA device asks for a GPU even where there is none, so
    # foreground_spec refuses it with a clear message instead of SAM failing later.
    on_cuda = WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3,
                            sam_checkpoint="/w.pth", device="cuda")
    assert wants_gpu(on_cuda, {"CPU": 8})


def test_an_address_where_nothing_listens_fails_fast_with_a_user_error():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(UserError, match=f"no Ray cluster answers at --ray-address 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")  # what RayRunner does before ray.init(address=...)
    assert time.monotonic() - start < 10
    check_reachable("auto")  # left to Ray


def test_refinement_pool_holds_a_gpu_per_actor_or_stays_in_the_shard_workers():
    from maphc2f_data.builder.ray_runner import refine_spec

    assert refine_spec({"CPU": 8}) is None  # no GPU: the shard workers refine
    assert refine_spec({"CPU": 8, "GPU": 2}) == PoolSpec(size=2, num_cpus=FOREGROUND_ACTOR_CPUS, num_gpus=1.0)
    one_cpu_actor = refine_spec({"CPU": 2}, actors=1)
    assert (one_cpu_actor.size, one_cpu_actor.num_gpus) == (1, 0.0)
    assert refine_spec({"CPU": 8, "GPU": 1}, actors=0) is None
    with pytest.raises(UserError, match="--refine-actors"):
        RayRunner(refine_actors=-1)


# -- builds on the shared session ------------------------------------------


@pytest.mark.ray
def test_two_ray_workers_through_the_cli_match_the_serial_build(ray_session, demo_dataset, tmp_path):
    out = tmp_path / "maphc2f"
    assert run_build(out, "--workers", "2") == 0
    assert shard_bytes(out) == shard_bytes(demo_dataset)
    node = ray_session.get_runtime_context().get_node_id()
    assert manifest_nodes(out) == {node}
    report = json.loads((out / "build_report.json").read_text())
    assert report["runner"] == "ray" and report["runner_detail"] == "this process's Ray session, 2 shard workers"


@pytest.mark.ray
def test_one_ray_worker_matches_the_serial_build_and_counts_every_sample_once(ray_session, demo_dataset,
                                                                             tmp_path):
    config = BuildConfig(out=str(tmp_path / "maphc2f"), **DEMO_CONFIG)
    told = []
    # Count progress through the runner directly, then let the builder finish
    # (it finds every shard done and writes manifest and card).
    plan = make_plan(config)
    tasks = plan.tasks()
    context = worker_context(config, Path(config.out).resolve())
    with dataset_lock(config.out, "test"):  # claims the folder, as build() does before any shard
        pass
    with RayRunner(workers=1) as runner:
        results = list(runner.map_shards(tasks, build_shard, context, progress=told.append))
        assert runner.pool == PoolSpec(size=1, num_cpus=1.0)
        report = build(config, runner=runner, progress=False)
    assert sum(told) == plan.total == 48
    assert sorted((r.category, r.index) for r in results) == sorted((t.category, t.index) for t in tasks)
    assert report.runner == "ray"
    assert shard_bytes(Path(config.out)) == shard_bytes(demo_dataset)
    assert ray.is_initialized(), "a runner must not shut down a Ray it did not start"


def _bad_input(task, context, progress):
    Path(context.out_dir, f"attempt-{task.index}-{os.getpid()}-{time.monotonic_ns()}").touch()
    raise UserError(f"corrupt image: {context.out_dir}/x.png")


def _flaky_network(task, context, progress):
    Path(context.out_dir, f"attempt-{task.index}-{os.getpid()}-{time.monotonic_ns()}").touch()
    raise TimeoutError("NFS server not responding")


@pytest.mark.ray
def test_bad_input_fails_at_once_and_flaky_io_is_retried(ray_session, tmp_path):
    items_config = BuildConfig(out=str(tmp_path), **DEMO_CONFIG)
    task = make_plan(items_config).tasks()[0]
    context = WorkerContext(out_dir=str(tmp_path), source="demo", root=None, size=64, png_compression=3)
    with RayRunner(workers=1) as runner:
        with pytest.raises(UserError) as caught:
            list(runner.map_shards([task], _bad_input, context))
        # The worker's own one-line message, not Ray's wrapped traceback.
        assert str(caught.value) == f"corrupt image: {tmp_path}/x.png"
        assert len(list(tmp_path.glob("attempt-*"))) == 1
        for path in tmp_path.glob("attempt-*"):
            path.unlink()
        with pytest.raises(TimeoutError, match="NFS"):
            list(runner.map_shards([task], _flaky_network, context))
        assert len(list(tmp_path.glob("attempt-*"))) == MAX_SHARD_RETRIES + 1


def _kill_a_busy_worker(runner: RayRunner, out: Path, killed: dict, stop: threading.Event) -> None:
    """Once the first shard exists, SIGKILL the process of an actor that is
    in the middle of a shard (recorded in ``killed``)."""
    while not stop.is_set():
        if any((out / "data").rglob("*.parquet")):
            busy = [(index, info) for index, info in enumerate(runner.worker_info()) if info["shard"]]
            if busy:
                index, info = busy[0]
                killed.update(actor=index, pid=info["pid"], shard=info["shard"],
                              shards_on_disk=len(list((out / "data").rglob("*.parquet"))))
                os.kill(info["pid"], signal.SIGKILL)
                return
        time.sleep(0.01)


@pytest.mark.ray
def test_a_killed_worker_is_restarted_and_its_shard_redone(ray_session, demo_dataset, tmp_path):
    from maphc2f_data.dataset.validate import validate_dataset

    out = tmp_path / "maphc2f"
    config = BuildConfig(out=str(out), **DEMO_CONFIG)
    killed: dict = {}
    stop = threading.Event()
    with RayRunner(workers=2) as runner:
        killer = threading.Thread(target=_kill_a_busy_worker, args=(runner, out, killed, stop), daemon=True)
        killer.start()
        try:
            report = build(config, runner=runner, progress=False)
        finally:
            stop.set()
            killer.join(10)
        pids_after = [info["pid"] for info in runner.worker_info()]
    assert killed, "the build finished before a worker could be killed"
    assert killed["shards_on_disk"] < 6, "the kill must land mid-build"
    assert (out / killed["shard"]).is_file(), "the killed shard was not redone"
    assert pids_after[killed["actor"]] != killed["pid"], "the killed actor was not restarted"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert report.total_rows == 48 and report.complete
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total_rows"] == manifest["plan"]["total"] == 48
    assert validate_dataset(out) == []
    assert shard_bytes(out) == shard_bytes(demo_dataset)


@pytest.mark.ray
def test_make_runner_defaults_to_ray_and_serial_is_explicit(ray_session, monkeypatch):
    from maphc2f_data.builder.runner import SerialRunner

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner = make_runner()
    assert isinstance(runner, RayRunner) and runner.workers is None and runner.address is None
    runner.close()
    runner = make_runner(2, None, foreground_actors=3)
    try:
        assert runner.workers == 2 and runner.foreground_actors == 3
    finally:
        runner.close()
    assert ray.is_initialized(), "closing a runner must not stop a Ray it did not start"
    assert isinstance(make_runner(serial=True), SerialRunner)
    with pytest.raises(UserError, match="--serial .* --workers, --ray-address"):
        make_runner(2, "10.0.0.7:6379", serial=True)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    runner = make_runner(None, None)  # Ray starts lazily: nothing is contacted here
    assert isinstance(runner, RayRunner) and runner.address == "10.0.0.7:6379" and runner.workers is None


@pytest.mark.ray
def test_the_cli_builds_on_ray_by_default(ray_session, demo_dataset, tmp_path):
    out = tmp_path / "maphc2f"
    assert run_build(out, "--ray") == 0  # no --serial, --workers or address: the default runner
    report = json.loads((out / "build_report.json").read_text())
    assert report["runner"] == "ray" and report["runner_detail"].endswith(", 2 shard workers")  # one per CPU
    assert manifest_nodes(out) == {ray_session.get_runtime_context().get_node_id()}
    assert shard_bytes(out) == shard_bytes(demo_dataset)


def _tiny_sam(context):
    """A real segment-anything SAM (tiny, seeded random weights) on the CPU."""
    from maphc2f_data.foreground.sam import SamForeground
    from maphc2f_data.models.sam import build_tiny_sam

    return SamForeground(build_tiny_sam(seed=0), "vit_b", device="cpu")


def _out_of_memory(context):
    raise RuntimeError("CUDA out of memory (test)")


def _missing_checkpoint(context):
    from maphc2f_data.errors import CheckpointError

    raise CheckpointError(f"SAM checkpoint not found: {context.sam_checkpoint}")


def _sam_tasks(tmp_path: Path, name: str):
    """Shard tasks of the demo's photographed object (coffee: 8 images, 24
    samples, in two shards of 4 whole images) and a context that asks for SAM.

    No image is split over two shards: two workers could then both miss the
    foreground cache for it, and the SAM call count would depend on timing."""
    import dataclasses

    config = BuildConfig(out=str(tmp_path / name), source="demo", categories=("coffee",), count=1, seed=0,
                         size=64, rows_per_shard=12)
    out = Path(config.out).resolve()
    context = dataclasses.replace(worker_context(config, out), sam_checkpoint="tiny-sam (test)",
                                  sam_model="vit_b", device="cpu")
    return make_plan(config).tasks(), context, out


@pytest.mark.ray
def test_sam_runs_in_foreground_actors_and_shard_workers_never_load_it(ray_session, tmp_path):
    from maphc2f_data.builder.worker import worker_resources
    from maphc2f_data.dataset.shards import iter_rows

    tasks, context, out = _sam_tasks(tmp_path, "ray")
    assert len(tasks) == 2
    with RayRunner(workers=2, foreground_factory=_tiny_sam) as runner:
        results = list(runner.map_shards(tasks, build_shard, context))
        foreground = runner.foreground_info()
        workers = runner.worker_info()
        assert runner.foreground_pool == PoolSpec(size=1, num_cpus=FOREGROUND_ACTOR_CPUS, num_gpus=0.0)
    assert sum(r.rows for r in results) == 24
    # One SAM, in its own process, asked once per coffee image; no shard
    # worker imported torch.
    assert len(foreground) == 1 and foreground[0]["calls"] == 8 and foreground[0]["method"] == "sam-vit_b"
    assert foreground[0]["pid"] not in {info["pid"] for info in workers}
    assert not any(info["torch_imported"] for info in workers)
    # The same shards as SAM in-process (the serial path), byte for byte.
    _, serial_context, serial_out = _sam_tasks(tmp_path, "serial")
    resources = worker_resources(serial_context, extractor=_tiny_sam(serial_context))
    for task in tasks:
        build_shard(task, serial_context, resources=resources)
    assert shard_bytes(out) == shard_bytes(serial_out)
    methods = {row["foreground_method"] for path in (out / "data").rglob("*.parquet")
               for row in iter_rows(path, columns=["foreground_method"])}
    assert methods <= {"sam-vit_b", "whole-image"}


@pytest.mark.ray
def test_a_killed_sam_actor_is_restarted_and_the_build_completes(ray_session, tmp_path):
    tasks, context, out = _sam_tasks(tmp_path, "killed")
    with RayRunner(workers=2, foreground_factory=_tiny_sam) as runner:
        runner.prepare(context)
        (before,) = runner.foreground_info()
        os.kill(before["pid"], signal.SIGKILL)
        results = list(runner.map_shards(tasks, build_shard, context))
        (after,) = runner.foreground_info()
    assert after["pid"] != before["pid"], "the SAM actor was not restarted"
    assert after["calls"] == 8  # every foreground came from the restarted actor
    assert sum(r.rows for r in results) == 24 and all(r.sha256 for r in results)


@pytest.mark.ray
def test_a_bad_sam_checkpoint_fails_with_its_one_line_message(ray_session, tmp_path):
    tasks, context, _ = _sam_tasks(tmp_path, "bad")
    with RayRunner(workers=1, foreground_factory=_missing_checkpoint) as runner:
        with pytest.raises(UserError) as caught:
            list(runner.map_shards(tasks, build_shard, context))
    assert str(caught.value) == "SAM checkpoint not found: tiny-sam (test)"


def _tiny_sam_on_context_device(context):
    from maphc2f_data.foreground.sam import SamForeground
    from maphc2f_data.models.sam import build_tiny_sam

    return SamForeground(build_tiny_sam(seed=0), "vit_b", device=context.device)


@pytest.mark.gpu
@pytest.mark.ray
def test_sam_actors_hold_a_gpu_each_on_cuda(ray_session, tmp_path):
    import dataclasses

    tasks, context, _ = _sam_tasks(tmp_path, "cuda")
    context = dataclasses.replace(context, device="cuda")
    with RayRunner(workers=2, foreground_factory=_tiny_sam_on_context_device) as runner:
        results = list(runner.map_shards(tasks, build_shard, context))
        foreground = runner.foreground_info()
        assert runner.foreground_pool.num_gpus == 1.0
    assert sum(r.rows for r in results) == 24
    assert foreground[0]["calls"] == 8 and len(foreground[0]["gpu_ids"]) == 1


@pytest.mark.ray
def test_a_sam_actor_that_cannot_load_its_model_fails_the_build_at_once(ray_session, tmp_path):
    tasks, context, _ = _sam_tasks(tmp_path, "oom")
    start = time.monotonic()
    with RayRunner(workers=1, foreground_factory=_out_of_memory) as runner:
        with pytest.raises(ray.exceptions.RayTaskError, match="CUDA out of memory"):
            list(runner.map_shards(tasks, build_shard, context))
    assert time.monotonic() - start < 60, "a failing model must not be restarted until a timeout"


# -- refinement actors ---------------------------------------------------


def _refine_tasks(tmp_path: Path, name: str, checkpoints):
    """Shard tasks of demo nut (24 samples, 2 shards) and a context with the tiny checkpoints."""
    npcf, npcfpp = checkpoints
    config = BuildConfig(out=str(tmp_path / name), source="demo", categories=("nut",), count=1, seed=0,
                         size=64, rows_per_shard=12, npcf=str(npcf), npcfpp=str(npcfpp))
    out = Path(config.out).resolve()
    return make_plan(config).tasks(), worker_context(config, out), out


def _shards(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "data").rglob("*.parquet"))}


@pytest.mark.ray
def test_refinement_actors_refine_for_the_shard_workers(ray_session, tmp_path, checkpoints):
    tasks, context, out = _refine_tasks(tmp_path, "actors", checkpoints)
    with RayRunner(workers=2, refine_actors=1) as runner:
        results = list(runner.map_shards(tasks, build_shard, context))
        (refiner,) = runner.refine_info()
        workers = runner.worker_info()
        assert "1 refinement actor on CPU" in runner.describe()
    assert sum(r.rows for r in results) == 24 and refiner["stage"] == "npcf++"
    # Each 12-sample shard gathers its 4 images into one call (fewer than REFINE_BATCH_SAMPLES).
    assert (refiner["samples"], refiner["calls"]) == (24, 2)
    assert not any(info["torch_imported"] for info in workers), "shard workers loaded the refiner themselves"
    # Same bytes as shard workers that refine in-process (and as a serial build).
    serial_tasks, serial_context, serial_out = _refine_tasks(tmp_path, "serial", checkpoints)
    for task in serial_tasks:
        build_shard(task, serial_context)
    assert _shards(out) == _shards(serial_out)


@pytest.mark.ray
def test_a_killed_refinement_actor_is_restarted_and_the_build_completes(ray_session, tmp_path, checkpoints):
    tasks, context, out = _refine_tasks(tmp_path, "killed", checkpoints)
    with RayRunner(workers=2, refine_actors=1) as runner:
        runner.prepare(context)
        (before,) = runner.refine_info()
        os.kill(before["pid"], signal.SIGKILL)
        results = list(runner.map_shards(tasks, build_shard, context))
        (after,) = runner.refine_info()
    assert after["pid"] != before["pid"], "the refinement actor was not restarted"
    assert after["samples"] == 24
    assert sum(r.rows for r in results) == 24 and all(r.sha256 for r in results)
