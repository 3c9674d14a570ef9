#!/usr/bin/env python
"""How fast does the transfer benchmark's detector learn each anomaly source? (evidence, not a benchmark)

Trains ``bench_transfer.py``'s network exactly as it does (same batches, same
loss, same seed) and prints, every ``--every`` steps, the focal loss, the Dice
loss of the batch's anomalous samples, the mean anomaly probability on their
anomaly pixels and the largest probability anywhere in the batch; then the
mask areas of each source's training anomalies next to the real test
defects' and, for the demo, how visible each generator's anomalies are
next to the held-out defects (mean change inside the mask). After training
it prints the range of the image scores (max of the smoothed map) of the
test split's normals and defects (demo: with 10 held-out normals, as
bench_transfer; ``--split validation``: the demo's validation split). A run whose largest probability stays
under 0.5 has not yet learnt to call anything an anomaly: its image scores
sit at the same ambiguity level on every image, and its image AUROC is chance.
One whose largest probability only creeps up, step by step, is stuck with its
anomaly logit at the head's bias (``--prior 0`` shows it on the rendered
objects; the default ``--prior 0.01``, as bench_transfer, escapes by step 50).

Usage::

    python scripts/transfer_dynamics.py --categories coins,coffee --variants online,draem --seed 0 --steps 300
    python scripts/transfer_dynamics.py ... --dice anomalous      # the Dice term as bench_transfer --dice
    python scripts/transfer_dynamics.py --categories bottle_cap,capsule,nut,pcb --split validation --variants ''
                                                                  # mask areas and visibility only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_transfer as bench  # noqa: E402
from maphc2f_data.models.draem.loss import focal_loss_per_sample  # noqa: E402
from maphc2f_data.training.augment import DraemStyleAnomalies, NormalPool, PhysicsAnomalies  # noqa: E402
from maphc2f_data.training.draem_style import load_textures  # noqa: E402


def trace(variant: str, pool, textures, tests, args) -> None:
    torch.manual_seed(args.seed)
    net = bench.make_net(args.width, args.size, args.prior)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    schedule = bench.lr_schedule(optimizer, args.steps, args.lr_drops)
    batches = bench.Batches(variant, pool, [], textures, args.seed, args.batch)
    print(f"\n{variant} (seed {args.seed}, Dice over {args.dice} samples in the loss)")
    print(f"{'step':>6} {'focal':>8} {'dice(anom)':>10} {'p on anomaly px':>16} {'max p':>7}")
    net.train()
    for step in range(args.steps):
        images, masks, _ = batches(step)
        logits = net(images)
        focal = focal_loss_per_sample(logits, masks).mean()
        loss = focal + bench.dice_loss(logits, masks, args.dice == "anomalous")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % args.every == 0 or step == args.steps - 1:
            with torch.no_grad():
                p = logits.softmax(1)[:, 1]
                inside = masks[:, 0] > 0.5
                print(f"{step:>6} {focal.item():>8.4f} {bench.dice_loss(logits, masks, True).item():>10.4f} "
                      f"{p[inside].mean().item() if inside.any() else float('nan'):>16.3f} {p.max().item():>7.3f}")
    # The image scores bench_transfer ranks: a model that calls nothing an anomaly scores all alike.
    net.eval()
    kernel = args.score_kernel or bench.score_kernel(args.size)
    for category, (images, _, labels, _) in tests.items():
        _, scores = bench.predict(net, images, "cpu", kernel)
        normal, defect = scores[labels == 0], scores[labels == 1]
        print(f"  {category}: image scores, normals {normal.min():.3f}-{normal.max():.3f}, "
              f"defects {defect.min():.3f}-{defect.max():.3f}")


def areas(pool, textures, source, categories, size, count=240) -> None:
    print(f"\nmask area, fraction of the image ({count} training anomalies per source; the real test defects)")
    sources = {"online": PhysicsAnomalies(pool, seed=0, normal_ratio=0.0, length=10**6),
               "draem": DraemStyleAnomalies(pool, textures, seed=0, normal_ratio=0.0, length=10**6)}
    for name, dataset in sources.items():
        values = np.array([float((dataset[i]["mask"] > 0.5).float().mean()) for i in range(count)])
        print(f"  {name:<8} mean {values.mean():.4f}  median {np.median(values):.4f}  "
              f"p10 {np.percentile(values, 10):.4f}  p90 {np.percentile(values, 90):.4f}")
    tests = bench.test_set(source, categories, size, 0)
    real = np.array([m.mean() for c in categories for m, label in zip(tests[c][1], tests[c][2]) if label])
    print(f"  {'real':<8} mean {real.mean():.4f}  median {np.median(real):.4f}  ({len(real)} defects)")


def _change(image, clean, mask) -> float:
    """Mean largest-channel change (grey levels) inside ``mask``: how visible an anomaly is."""
    return float(np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(-1)[mask].mean())


def visibility(pool, textures, categories, size, split, count=300) -> None:
    """Per kind: mean change inside the mask (median and 10th percentile over samples) and median area,
    for each generator's training anomalies and the demo's held-out defects of ``split``."""
    import cv2

    from maphc2f_data.sampling import resize_square
    from maphc2f_data.sources.demo import DEFECTS, TEST_PER_DEFECT, render_demo_image, validation_split
    from maphc2f_data.synthesis import DEFECT_TYPES

    def as_uint8(tensor):
        return (tensor.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    rows = {}
    online = PhysicsAnomalies(pool, seed=0, normal_ratio=0.0, length=10**6)
    draem = DraemStyleAnomalies(pool, textures, seed=0, normal_ratio=0.0, length=10**6)
    for name, dataset in (("online", online), ("draem", draem)):
        for index in range(count if name == "online" else count // 3):
            item = dataset[index]
            if not item["label"]:
                continue
            kind = f"online {DEFECT_TYPES[item['defect_type']]}" if name == "online" else "draem"
            mask = item["mask"][0].numpy() > 0.5
            rows.setdefault(kind, []).append((_change(as_uint8(item["image"]), as_uint8(item["normal"]), mask),
                                              mask.mean()))
    for category in categories:
        if split == "validation":
            items = [(kind, item) for kind, item in validation_split(category) if kind != "good"]
        else:
            items = [(kind, render_demo_image(category, "test", kind, i)) for kind in DEFECTS
                     for i in range(TEST_PER_DEFECT)]
        for kind, item in items:
            mask = cv2.resize(item.defect_mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
            rows.setdefault(f"{split} {kind}", []).append(
                (_change(resize_square(item.image, size), resize_square(item.clean, size), mask), mask.mean()))
    print(f"\nvisibility: mean largest-channel change inside the mask (grey levels, {size} px) and mask area")
    print(f"  {'anomalies':<22} {'median':>7} {'p10':>7} {'area':>8} {'n':>5}")
    for kind, values in rows.items():
        values = np.array(values)
        print(f"  {kind:<22} {np.median(values[:, 0]):>7.1f} {np.percentile(values[:, 0], 10):>7.1f} "
              f"{np.median(values[:, 1]):>8.4f} {len(values):>5}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="demo")
    parser.add_argument("--root", default=None)
    parser.add_argument("--categories", default="coins,coffee", help="validation categories by default")
    parser.add_argument("--variants", default="online,draem", help="comma-separated; empty: the tables only")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-drops", default="0.8,0.9", help="as bench_transfer.py --lr-drops ('': constant)")
    parser.add_argument("--score-kernel", type=int, default=0, help="as bench_transfer.py --score-kernel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dice", choices=("all", "anomalous"), default="anomalous")
    parser.add_argument("--prior", type=float, default=0.01, help="as bench_transfer.py --prior (0: off)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="whose image scores to print (demo: validation = bench_transfer --split validation)")
    parser.add_argument("--synthesis-config", default="{}", help="as bench_transfer.py --synthesis-config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-normals", type=int, default=0,
                        help="as bench_transfer.py --train-normals (default 0 here: the demo's train split, 8 per "
                             "category, as the README's questions 1-2 ran)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench.use_synthesis_config(json.loads(args.synthesis_config))
    source = bench.open_source(args)
    categories = args.categories.split(",")
    pool = NormalPool(source, categories, args.size)
    textures = load_textures(None, args.size)
    if args.split == "validation":
        tests = bench.validation_set(categories, args.size)
    else:
        tests = bench.test_set(source, categories, args.size, 10 if args.source == "demo" else 0)
    for variant in filter(None, args.variants.split(",")):
        trace(variant, pool, textures, tests, args)
    areas(pool, textures, source, categories, args.size)
    if args.source == "demo":
        visibility(pool, textures, categories, args.size, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
