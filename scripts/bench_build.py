#!/usr/bin/env python
"""End-to-end build throughput and memory on the demo source (a script, not a test).

Throughput (default): for the serial runner and the Ray runner with each
``--workers`` count, one build of the demo source warms up (it starts Ray and
the actor pool, and fills the foreground cache), then the shards are deleted
and the same build is timed with the warm pool and cache: synthesis, metrics,
PNG encoding and Parquet writing, no refinement. Prints samples/s, the
speed-up over one Ray worker, and the projected wall time of the full
115,987-image build at that rate.

Memory (``--memory``): one fresh process per build (so peak RSS is per build)
for each ``--memory-samples`` target at ``--memory-size`` px, printing the
driver's peak RSS and each Ray worker's.

``--device cuda`` runs SAM on the GPU (one foreground actor per GPU, the
shard workers on the CPUs) and needs ``--sam-checkpoint`` (e.g.
``sam_vit_h_4b8939.pth``); on the demo source only the photographed object
categories (coffee, coins) go through the foreground model, the rendered
ones have exact masks and textures use the whole image. The cold column then
includes SAM's loading and its forward passes.

Shards: the demo has 9 categories, so with the builder's 500-row shards a
small benchmark has 9 shards and 2 workers idle through the last round (a
tail the full build, with hundreds of shards, does not have). The throughput
builds therefore default to ``--count 4 --rows-per-shard 48``: 864 samples in
18 shards. The memory builds keep the builder's shard size (what bounds a
worker's memory) unless ``--memory-rows-per-shard`` says otherwise.

Usage::

    .venv/bin/python scripts/bench_build.py [--size 512] [--count 4] [--rows-per-shard 48] [--workers 1,2]
    .venv/bin/python scripts/bench_build.py --memory [--memory-size 128] [--memory-samples 1000,10000]
    .venv/bin/python scripts/bench_build.py --device cuda --sam-checkpoint sam_vit_h_4b8939.pth
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from maphc2f_data.builder.driver import build
from maphc2f_data.builder.plan import BuildConfig
from maphc2f_data.builder.runner import SerialRunner

#: The paper's full composition (Tables 7-9).
PAPER_TOTAL = 115_987
#: Demo training images (9 categories x 8): samples = 3 * count * this.
DEMO_IMAGES = 72


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _runner(workers: Optional[int]):
    if workers is None:
        return SerialRunner()
    from maphc2f_data.builder.ray_runner import RayRunner

    return RayRunner(workers=workers)


def _clear_shards(out: Path) -> None:
    # Keep .cache (foregrounds); drop everything the timed build must redo.
    for name in ("data", "manifest.json", "README.md", "build_report.json"):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    shutil.rmtree(out / ".cache" / "build", ignore_errors=True)


def time_build(config: BuildConfig, workers: Optional[int]) -> Dict[str, Any]:
    """Warm-up build, then a timed build with the same (warm) runner."""
    out = Path(config.out)
    runner = _runner(workers)
    try:
        start = time.perf_counter()
        first = build(config, runner=runner, progress=False, log=lambda message: None)
        cold = time.perf_counter() - start
        _clear_shards(out)
        start = time.perf_counter()
        report = build(config, runner=runner, progress=False, log=lambda message: None)
        wall = time.perf_counter() - start
        info = runner.worker_info() if hasattr(runner, "worker_info") else []
    finally:
        runner.close()
    return {"runner": "serial" if workers is None else f"ray x{workers}", "samples": report.rows_made,
            "cold_s": cold, "wall_s": wall, "rate": report.rows_made / wall,
            "stages": report.to_dict().get("stage_seconds"),
            "worker_peak_rss_mib": [item["peak_rss_bytes"] / 2 ** 20 for item in info]}


def one_build(args: argparse.Namespace) -> None:
    """``--one-build``: one build in this fresh process; prints JSON."""
    config = BuildConfig(source="demo", out=args.out, count=args.count, size=args.size, seed=args.seed,
                         rows_per_shard=args.rows_per_shard or None)
    runner = _runner(args.one_build_workers)
    start = time.perf_counter()
    try:
        report = build(config, runner=runner, progress=False, log=lambda message: None)
        info = runner.worker_info() if hasattr(runner, "worker_info") else []
    finally:
        runner.close()
    print(json.dumps({"samples": report.rows_made, "wall_s": time.perf_counter() - start,
                      "complete": report.complete, "driver_peak_rss_mib": _peak_rss_mib(),
                      "worker_peak_rss_mib": [item["peak_rss_bytes"] / 2 ** 20 for item in info]}))


def throughput(args: argparse.Namespace, scratch: Path) -> None:
    rows: List[Dict[str, Any]] = []
    runs: List[Optional[int]] = ([None] if args.serial else []) + [int(w) for w in args.workers.split(",")]
    for workers in runs:
        out = scratch / f"tp-{workers or 'serial'}"
        config = BuildConfig(source="demo", out=str(out), count=args.count, size=args.size, seed=args.seed,
                             sam_checkpoint=args.sam_checkpoint, sam_model=args.sam_model, device=args.device,
                             rows_per_shard=args.rows_per_shard or None)
        rows.append(time_build(config, workers))
        shutil.rmtree(out, ignore_errors=True)
    base = next((row["rate"] for row in rows if row["runner"] == "ray x1"), rows[0]["rate"])
    print(f"\ndemo source, {args.size}x{args.size}, count {args.count}, rows per shard "
          f"{args.rows_per_shard or 'default'}, no refinement, foregrounds cached; "
          f"{platform.node()} ({os.cpu_count()} CPUs), device={args.device or 'cpu'}")
    print(f"{'runner':<10} {'samples':>7} {'cold s':>7} {'warm s':>7} {'samples/s':>9} {'speed-up':>8} "
          f"{'115,987 in':>10}  worker peak RSS MiB")
    for row in rows:
        hours = PAPER_TOTAL / row["rate"] / 3600
        rss = ", ".join(f"{value:.0f}" for value in row["worker_peak_rss_mib"]) or "-"
        print(f"{row['runner']:<10} {row['samples']:>7} {row['cold_s']:>7.1f} {row['wall_s']:>7.1f} "
              f"{row['rate']:>9.2f} {row['rate'] / base:>7.2f}x {hours:>9.2f}h  {rss}")
    print("cold: first build (Ray and pool start-up, foreground extraction); warm: the timed rebuild.")
    print("\nper-sample CPU time by stage in the warm build (ms, summed over workers):")
    stages = list(rows[0]["stages"] or {})
    print(f"{'runner':<10} " + " ".join(f"{stage:>10}" for stage in stages))
    for row in rows:
        per = {stage: 1000.0 * seconds / max(1, row["samples"]) for stage, seconds in (row["stages"] or {}).items()}
        print(f"{row['runner']:<10} " + " ".join(f"{per.get(stage, 0.0):>10.1f}" for stage in stages))


def memory(args: argparse.Namespace, scratch: Path) -> None:
    print(f"\nmemory: demo source at {args.memory_size}x{args.memory_size}, Ray x{args.memory_workers}, "
          f"rows per shard {args.memory_rows_per_shard or 'default'}, one fresh process per build")
    print(f"{'target':>7} {'samples':>7} {'count':>5} {'wall s':>7} {'driver peak MiB':>15}  worker peak MiB")
    for target in (int(n) for n in args.memory_samples.split(",")):
        count = max(1, round(target / (3 * DEMO_IMAGES)))
        out = scratch / f"mem-{target}"
        command = [sys.executable, __file__, "--one-build", "--one-build-workers", str(args.memory_workers),
                   "--out", str(out), "--size", str(args.memory_size), "--count", str(count),
                   "--seed", str(args.seed)]
        command += ["--rows-per-shard", str(args.memory_rows_per_shard or 0)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rss = ", ".join(f"{value:.0f}" for value in result["worker_peak_rss_mib"])
        print(f"{target:>7} {result['samples']:>7} {count:>5} {result['wall_s']:>7.1f} "
              f"{result['driver_peak_rss_mib']:>15.0f}  {rss}", flush=True)
        shutil.rmtree(out, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="image side of the throughput builds")
    parser.add_argument("--count", type=int, default=4,
                        help="samples per demo image and type (216 samples per count)")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to time, comma-separated")
    parser.add_argument("--no-serial", dest="serial", action="store_false",
                        help="skip the serial (in-process) reference run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="torch device for SAM, e.g. cuda (needs --sam-checkpoint)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM weights; without it the classical extractor")
    parser.add_argument("--sam-model", default="vit_h")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory per build size")
    parser.add_argument("--memory-only", action="store_true", help="only the memory measurement")
    parser.add_argument("--memory-size", type=int, default=512, help="image side of the memory builds")
    parser.add_argument("--memory-samples", default="1000,10000", help="approximate build sizes, comma-separated")
    parser.add_argument("--memory-workers", type=int, default=2)
    parser.add_argument("--rows-per-shard", type=int, default=48,
                        help="rows per shard of the throughput builds (0: the builder's default)")
    parser.add_argument("--memory-rows-per-shard", type=int, default=None,
                        help="rows per shard of the memory builds (default: the builder's, 500 up to 512 px)")
    parser.add_argument("--scratch", default=None, help="folder for the builds (default: a temporary one)")
    # Internal: one build in a fresh process (used by --memory).
    parser.add_argument("--one-build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-build-workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device and args.device.startswith("cuda") and not args.sam_checkpoint:
        parser.error("--device cuda runs SAM and needs --sam-checkpoint")
    if args.one_build:
        one_build(args)
        return 0
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="maphc2f-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        if not args.memory_only:
            throughput(args, scratch)
        if args.memory or args.memory_only:
            memory(args, scratch)
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
