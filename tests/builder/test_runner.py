"""Runners: the serial runner and the factory behind --workers/--ray-address."""


import pytest

from maphc2f_data.builder.plan import BuildConfig, plan_category, shard_tasks
from maphc2f_data.builder.runner import Runner, SerialRunner, make_runner
from maphc2f_data.builder.worker import ShardResult, WorkerContext
from maphc2f_data.errors import UserError
from maphc2f_data.sources.base import SourceImage


def _fake_shard(task, context, progress=None):
    # A stand-in worker: the runner's job is ordering, progress and node, not pixels.
    for _ in task.samples:
        progress(1)
    return ShardResult(category=task.category, index=task.index, total=task.total, path=task.relpath,
                       planned=len(task.samples), rows_by_type={"crack": len(task.samples)},
                       sha256=context.out_dir)


def test_serial_runner_runs_every_task_in_order_and_names_the_node():
    items = [SourceImage("folder", "cat", f"cat/{i}.png") for i in range(3)]
    plan = plan_category("folder", "cat", items, {"crack": 3, "corrosion": 3, "deformation": 3}, 0)
    tasks = shard_tasks(plan, 4, {})
    context = WorkerContext(out_dir="/tmp/x", source="folder", root=None, size=64, png_compression=1)
    seen = []
    with SerialRunner(node="box-1") as runner:
        assert isinstance(runner, Runner)
        results = list(runner.map_shards(tasks, _fake_shard, context, progress=seen.append))
    assert [r.index for r in results] == [0, 1, 2]
    assert all(r.node == "box-1" and r.sha256 == "/tmp/x" for r in results)
    assert sum(seen) == 9


def test_make_runner_checks_its_options_before_anything_starts():
    assert isinstance(make_runner(serial=True), SerialRunner)
    with pytest.raises(UserError, match="--workers"):
        make_runner(0)
    with pytest.raises(UserError, match="--foreground-actors"):
        make_runner(foreground_actors=0)
    with pytest.raises(UserError, match="cannot be combined with --workers"):
        make_runner(1, serial=True)


def test_worker_context_is_hashable_and_small():
    context = WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3)
    assert hash(context) == hash(WorkerContext(out_dir="/o", source="demo", root=None, size=64, png_compression=3))
    assert BuildConfig(source="demo").sam_model == context.sam_model


def test_a_shard_worker_sends_a_batch_refiner_whole_images_in_calls_of_at_least_32(tmp_path):
    import numpy as np

    from maphc2f_data.builder.driver import worker_context
    from maphc2f_data.builder.plan import make_plan
    from maphc2f_data.builder.worker import REFINE_BATCH_SAMPLES, build_shard, worker_resources
    from maphc2f_data.dataset.shards import iter_rows

    calls = []

    class Recorder:
        stage = "npcf"
        fingerprint = {"recorder": 1}

        def refine(self, normal, raw, mask):
            raise AssertionError("per-sample refine used although refine_batch exists")

        def refine_batch(self, normals, raws, masks):
            calls.append(len(raws))
            return np.stack(raws)

    # demo nut, 8 images x 3 types x count 2 = 48 samples in one shard: 6 per image.
    config = BuildConfig(out=str(tmp_path / "b"), source="demo", categories=("nut",), count=2, size=32, seed=0)
    out = tmp_path / "b"
    (task,) = make_plan(config).tasks()
    context = worker_context(config, out)
    result = build_shard(task, context, resources=worker_resources(context, refiner=Recorder()))
    assert sum(calls) == 48 and calls == [36, 12]  # 6 images (>= 32), then the last 2
    assert calls[0] >= REFINE_BATCH_SAMPLES and sum(result.rows_by_type.values()) == 48
    rows = list(iter_rows(out / task.relpath, columns=["sample_id", "stage"]))
    assert [row["sample_id"] for row in rows] == [s.sample_id for s in task.samples]  # plan order kept
    assert {row["stage"] for row in rows} == {"npcf"}
