#!/usr/bin/env python
"""Refinement throughput (a script, not a test).

1. Inference: images/s of :class:`~maphc2f_data.refine.CheckpointRefiner` at
   ``--size`` (default 512) with the default-width npcF and npcF++ (randomly
   initialised, saved as checkpoints: speed does not depend on the weights),
   stage "npcf" (npcF only) and "npcf++" (npcF then npcF++), paste-back
   included. ``--device cuda`` uses bf16 autocast and channels-last.
2. Training: seconds per AdamW step at ``--size`` and ``--batch`` for npcF
   (with the EfficientNet-Lite0 perceptual loss) and npcF++ (with a frozen npcF).
3. End to end: samples/s of a serial demo build (``--build-size`` px, one
   category, 24 samples) raw and with tiny npcF + npcF++ checkpoints on the CPU.

Usage::

    .venv/bin/python scripts/bench_refine.py [--device cpu|cuda] [--size 512] [--images 4] [--batch 2]
        [--compile] [--profile]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maphc2f_data.models.checkpoint import save_checkpoint  # noqa: E402
from maphc2f_data.models.factory import create_model  # noqa: E402
from maphc2f_data.refine import CheckpointRefiner  # noqa: E402


def _images(n: int, size: int):
    rng = np.random.default_rng(0)
    normals = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), bool)
    masks[:, size // 4: size // 2, size // 3: 2 * size // 3] = True
    raws = normals.copy()
    raws[masks] = (180, 70, 30)
    return normals, raws, masks


def bench_inference(folder: Path, args) -> list:
    npcf = save_checkpoint(folder / "npcf.safetensors", create_model("npcf", seed=0))
    npcfpp = save_checkpoint(folder / "npcfpp.safetensors", create_model("npcfpp", seed=0))
    normals, raws, masks = _images(args.images, args.size)
    rows = []
    for label, paths in (("npcf", (npcf, None)), ("npcf++", (npcf, npcfpp))):
        refiner = CheckpointRefiner(*paths, device=args.device, batch_size=args.batch, compile=args.compile)
        start = time.perf_counter()
        refiner.refine_batch(normals[:args.batch], raws[:args.batch], masks[:args.batch])  # warm-up (compiles)
        warmup = time.perf_counter() - start
        if refiner.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        refiner.refine_batch(normals, raws, masks)
        if refiner.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append((f"inference {label} ({args.size} px, batch {args.batch}, {refiner.device.type}"
                     f"{', bf16' if refiner.amp else ''}{', compiled' if refiner.compiled else ''})",
                     f"{args.images / seconds:.2f} images/s (first batch {warmup:.1f} s)"))
        if args.profile and label == "npcf++":
            rows += profile_refiner(refiner, normals, raws, masks, args)
    return rows


def profile_refiner(refiner, normals, raws, masks, args) -> list:
    """The ten costliest operators of one refine_batch (torch.profiler, device time when on CUDA)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if refiner.device.type == "cuda" else [])
    n = args.batch
    with profile(activities=activities) as prof:
        refiner.refine_batch(normals[:n], raws[:n], masks[:n])
        if refiner.device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if refiner.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=12), file=sys.stderr)
    return []


def bench_training(args) -> list:
    from maphc2f_data.models.npcf.loss import NpcfLoss
    from maphc2f_data.models.npcfpp.loss import NpcfppLoss

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = device.type == "cuda"
    normals, raws, masks = _images(args.batch, args.size)
    x = torch.from_numpy(normals).permute(0, 3, 1, 2).float().div(255).to(device)
    a = torch.from_numpy(raws).permute(0, 3, 1, 2).float().div(255).to(device)
    m = torch.from_numpy(masks).unsqueeze(1).float().to(device)
    rows = []
    npcf = create_model("npcf", seed=0).to(device)
    for label in ("npcf", "npcfpp"):
        model = npcf if label == "npcf" else create_model("npcfpp", seed=0).to(device)
        loss = NpcfLoss() if label == "npcf" else NpcfppLoss()
        if label == "npcf" and loss.backbone is not None:
            loss.backbone.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for step in range(args.train_steps + 1):
            start = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False):
                if label == "npcf":
                    terms = loss(model(x, a, m).float(), x, a, m)
                else:
                    with torch.no_grad():
                        b1 = npcf(x, a, m).float()
                    terms = loss(model(x, b1, m).float(), x, b1, m)
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step:  # the first step is a warm-up
                times.append(time.perf_counter() - start)
        rows.append((f"train step {label} ({args.size} px, batch {args.batch}, {device.type})",
                     f"{np.mean(times):.2f} s/step"))
    return rows


def bench_build(folder: Path, args) -> list:
    from maphc2f_data.builder import BuildConfig, SerialRunner, build

    npcf = save_checkpoint(folder / "tiny-npcf.safetensors", create_model("npcf-tiny", seed=0))
    npcfpp = save_checkpoint(folder / "tiny-npcfpp.safetensors", create_model("npcfpp-tiny", seed=0))
    rows = []
    for label, extra in (("raw", {}), ("npcf++ tiny", {"npcf": str(npcf), "npcfpp": str(npcfpp)})):
        config = BuildConfig(source="demo", out=str(folder / f"build-{len(rows)}"), categories=("nut",), count=1,
                             size=args.build_size, **extra)
        build(config, runner=SerialRunner(), progress=False, log=lambda message: None)  # warm: foreground cache
        for path in Path(config.out, "data").rglob("*.parquet"):
            path.unlink()
        start = time.perf_counter()
        report = build(config, runner=SerialRunner(), progress=False, log=lambda message: None)
        seconds = time.perf_counter() - start
        total = report.total_rows
        rows.append((f"serial demo build, {label} ({args.build_size} px, {total} samples, cpu)",
                     f"{total / seconds:.1f} samples/s"))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=4, help="images per inference measurement")
    parser.add_argument("--batch", type=int, default=2, help="inference and training batch")
    parser.add_argument("--train-steps", type=int, default=2)
    parser.add_argument("--build-size", type=int, default=128)
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (inference)")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler's costliest operators of one npcF++ batch to stderr")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: inference,training,build")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "inference" not in skip:
            rows += bench_inference(Path(tmp), args)
        if "training" not in skip:
            rows += bench_training(args)
        if "build" not in skip:
            rows += bench_build(Path(tmp), args)
    width = max(len(name) for name, _ in rows)
    print(f"| {'measurement':<{width}} | rate |")
    print(f"|{'-' * (width + 2)}|------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
