"""BiSQAD vs the same detector with uniform weights on the demo's held-out defects.

Builds a demo dataset (the three generators: crack, corrosion, deformation),
makes a validation split, then for each seed trains

* ``bisqad``: eq. 15 weights (lambda_sqe = lambda_bi = 1), SQE regression,
  second-order outer step every epoch;
* ``uniform``: lambda_sqe = 0, no outer step (d stays 1): Table 6's "No SQE";

with the same seeds, model and data, selects each model's epoch on the
validation split, and evaluates it on the demo source's test split, whose
defects (scratch, dent, stain, missing, cut_paste) none of the generators
makes. Prints image AUROC / pixel AUROC / AUPRO as mean +- std over the seeds
and the CPU time of each variant.

    python scripts/bench_bisqad.py --size 64 --count 4 --categories nut --epochs 6 --width 8 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--count", type=int, default=4, help="samples per training image and type")
    parser.add_argument("--categories", default="nut")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=8, help="DRAEM widths (reconstructive = discriminative)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lr-drops", default="0.8,0.9",
                        help="as maphc2f train bisqad --lr-drops ('': a constant rate, as the README's figure ran)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from maphc2f_data.cli.main import main as cli
    from maphc2f_data.evaluation.run import evaluate_checkpoint
    from maphc2f_data.training.bisqad import BisqadConfig, train_bisqad

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-bisqad-"))
    data = work / "maphc2f"
    if not (data / "manifest.json").is_file():
        assert cli(["build", "--source", "demo", "--size", str(args.size), "--count", str(args.count),
                    "--categories", args.categories, "--serial", "--no-progress", "--out", str(data)]) == 0
        assert cli(["splits", str(data), "--val-fraction", "0.1", "--seed", "0"]) == 0
    variants = {
        "bisqad": dict(lambda_sqe=1.0, lambda_bi=1.0, outer_every=1),
        "uniform": dict(lambda_sqe=0.0, lambda_bi=1.0, outer_every=0),
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {name: [] for name in variants}
    cpu = {name: 0.0 for name in variants}
    for category in args.categories.split(","):
        for seed in seeds:
            for name, options in variants.items():
                run = work / f"{category}-{name}-{seed}"
                started = _cpu()
                wall = time.perf_counter()
                result = train_bisqad(data, run, BisqadConfig(
                    category=category, epochs=args.epochs, batch_size=args.batch_size, size=args.size,
                    model="draem", model_overrides={"recon_width": args.width, "disc_width": args.width},
                    lr_drops=tuple(float(f) for f in args.lr_drops.split(",") if f.strip()),
                    seed=seed, progress=False, write_quality=False, **options), log=lambda _: None)
                metrics = evaluate_checkpoint("demo", None, [category], result.model_path)[category].metrics
                cpu[name] += _cpu() - started
                results[name].append(metrics)
                print(f"{category} {name:8s} seed {seed}: " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
                      + f"  (epoch {result.best_epoch + 1} chosen on validation, {time.perf_counter() - wall:.0f} s)",
                      flush=True)
    print()
    print(f"| variant | image AUROC | pixel AUROC | AUPRO | CPU time |")
    print("|---|---|---|---|---|")
    summary = {}
    for name in variants:
        row = {k: (float(np.mean([m[k] for m in results[name]])), float(np.std([m[k] for m in results[name]])))
               for k in ("image_auroc", "pixel_auroc", "aupro")}
        summary[name] = {**{k: {"mean": v[0], "std": v[1]} for k, v in row.items()}, "cpu_seconds": cpu[name]}
        cells = " | ".join(f"{100 * m:.1f} +- {100 * s:.1f}" for m, s in row.values())
        print(f"| {name} | {cells} | {cpu[name] / 60:.1f} min |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
