#!/usr/bin/env python
"""Settings questions of the transfer benchmark, asked on the demo's validation split (evidence, not a benchmark).

Trains ``bench_transfer.py``'s detector exactly as it does (its ``train``:
same batches, loss, learning-rate drops, head prior, seed) and scores every
trained network several ways at once, so that evaluation choices are compared
on the *same* networks:

* on a big validation set (``--per-defect`` defects of each kind and
  ``--normals`` normals per category, from ``sources.demo.validation_split``)
  and on the small one ``bench_transfer.py --split validation`` uses (its
  first 4 per kind and first 10 normals, a subset of the big one): how much
  of the image AUROC's spread over seeds is the small set's;
* with several image-score kernels (``--kernels``; the image score is the
  max of the map averaged over kernel x kernel pixels).

``--fresh`` takes the big set's *second* half instead (renders
``validation_split(category, 2 * per_defect, 2 * normals)`` holds beyond
the first half), to confirm a choice on renders it was not chosen on.

Usage::

    python scripts/transfer_validation.py --lr-drops '' --threads 1      # constant learning rate
    python scripts/transfer_validation.py --threads 1                    # DRAEM's drops (the default)
    python scripts/transfer_validation.py --fresh --first-seed 3 --threads 1
    python scripts/transfer_validation.py --variants online --synthesis-config \\
        '{"crack": {"max_darken": [0.15, 0.85]}}' --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_transfer as bench  # noqa: E402
from maphc2f_data.evaluation import evaluate, image_auroc  # noqa: E402
from maphc2f_data.models.draem.torch_model import image_score  # noqa: E402
from maphc2f_data.training.augment import NormalPool  # noqa: E402
from maphc2f_data.training.draem_style import load_textures  # noqa: E402

SMALL_PER_DEFECT, SMALL_NORMALS = 4, 10  # bench_transfer.py --split validation


def validation_foregrounds(category: str, size: int, per_defect: int, normals: int) -> np.ndarray:
    """(N, size, size) bool object masks of ``bench.validation_set``'s images, in its order."""
    from maphc2f_data.sources.demo import validation_split

    return np.stack([bench.resize_mask(item.foreground, size)
                     for _, item in validation_split(category, per_defect, normals)])


def big_validation_set(category: str, size: int, per_defect: int, normals: int, fresh: bool):
    """(images, masks, labels, kinds, small, foregrounds) of one category; ``small`` indexes the small set in
    it; ``foregrounds`` are the renders' object masks."""
    if not fresh:
        images, masks, labels, kinds = bench.validation_set([category], size, per_defect, normals)[category]
        foregrounds = validation_foregrounds(category, size, per_defect, normals)
    else:  # the second half of every group of validation_split(category, 2 * per_defect, 2 * normals)
        images, masks, labels, kinds = bench.validation_set([category], size, 2 * per_defect, 2 * normals)[category]
        foregrounds = validation_foregrounds(category, size, 2 * per_defect, 2 * normals)
        kind_count = len(set(kinds) - {"good"})
        chosen = list(range(normals, 2 * normals)) + [
            2 * normals + 2 * per_defect * k + per_defect + i for k in range(kind_count) for i in range(per_defect)]
        images, masks, labels, kinds = images[chosen], masks[chosen], labels[chosen], [kinds[i] for i in chosen]
        foregrounds = foregrounds[chosen]
    small = list(range(min(SMALL_NORMALS, normals))) + [
        normals + per_defect * k + i for k in range(len(set(kinds) - {"good"}))
        for i in range(min(SMALL_PER_DEFECT, per_defect))]
    return images, masks, labels, kinds, np.array(small), foregrounds


#: Where a normal image's peak lies: within this many pixels of the object's outline (at 96 px) is "edge".
EDGE_BAND = 3


def peak_places(maps: np.ndarray, foregrounds: np.ndarray, kernel: int) -> List[str]:
    """Per map: "edge", "inside" or "background", where its image score (the kernel-averaged maximum) lies."""
    band = np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)
    places = []
    for heat, foreground in zip(maps, foregrounds):
        y, x = np.unravel_index(np.argmax(cv2.blur(heat, (kernel, kernel))), heat.shape)
        object_mask = foreground.astype(np.uint8)
        edge = cv2.dilate(object_mask, band) > cv2.erode(object_mask, band)
        places.append("edge" if edge[y, x] else ("inside" if foreground[y, x] else "background"))
    return places


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--categories", default="bottle_cap,capsule,nut,pcb")
    parser.add_argument("--variants", default="online,draem", help="online, draem and/or shards")
    parser.add_argument("--shard-count", type=int, default=3, help="as bench_transfer.py --shard-count")
    parser.add_argument("--shard-normals", choices=("split", "same"), default="same",
                        help="as bench_transfer.py --shard-normals")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--per-defect", type=int, default=20)
    parser.add_argument("--normals", type=int, default=50)
    parser.add_argument("--fresh", action="store_true", help="the big set's second half (see above)")
    parser.add_argument("--kernels", default="1,5,9,15", help="image-score kernels to compare")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--detector", choices=bench.DETECTORS, default="discriminative",
                        help="as bench_transfer.py --detector")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-drops", default="0.8,0.9", help="as bench_transfer.py --lr-drops ('': constant)")
    parser.add_argument("--prior", type=float, default=0.01, help="as bench_transfer.py --prior")
    parser.add_argument("--synthesis-config", default="{}", help="as bench_transfer.py --synthesis-config")
    parser.add_argument("--synthesis-size", type=int, default=0, help="as bench_transfer.py --synthesis-size")
    parser.add_argument("--online-kinds", default="", help="as bench_transfer.py --online-kinds")
    parser.add_argument("--train-normals", type=int, default=bench.DEMO_TRAIN_NORMALS,
                        help="as bench_transfer.py --train-normals (0: the demo's train split, 8 per category)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (results are reproducible for the same count, not across counts)")
    parser.add_argument("--out", default="", help="a JSON file for every number (and the image scores)")
    parser.add_argument("--normal-peaks", default="",
                        help="also report where each variant's maps peak on the *normal* images (median normal "
                             "score; peak on the object's outline, inside it, or on the background) and save "
                             "the highest-scoring normals of each category with their maps to this PNG (first "
                             "seed of each variant)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench.use_synthesis_config(json.loads(args.synthesis_config))
    # The fields bench_transfer.train reads that this script does not vary.
    args.physics_overrides, args.dice, args.score_kernel, args.dataset = "{}", "anomalous", 0, ""
    categories = args.categories.split(",")
    kernels = [int(k) for k in args.kernels.split(",")]
    args.source = "demo"
    source = bench.open_source(args)
    pool = NormalPool(source, categories, args.size)
    synthesis_pool = bench.synthesis_pool_for(source, categories, args)
    textures = load_textures(None, args.size)
    shards = bench.shard_pool("demo", None, categories, args.size, "", 0, args.shard_count, args.synthesis_size,
                              with_normal=args.detector == "base", demo_train_count=bench.shard_train_count(args)) \
        if "shards" in args.variants.split(",") else []
    if shards:
        print(f"shards: {len(shards)} rows", file=sys.stderr)
    sets = {c: big_validation_set(c, args.size, args.per_defect, args.normals, args.fresh) for c in categories}

    runs = {}
    sheet_rows = []  # --normal-peaks: per variant and category, the top normals over their maps
    for variant in args.variants.split(","):
        runs[variant] = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            started = time.perf_counter()
            net = bench.train(variant, pool, shards, textures, args, seed, "cpu", synthesis_pool)
            per_category = {}
            for category in categories:
                images, masks, labels, kinds, small, foregrounds = sets[category]
                maps, first_scores = bench.predict(net, images, "cpu", kernels[0])
                result = {}
                for kernel in kernels:
                    scores = image_score(torch.from_numpy(maps)[:, None], kernel).numpy()
                    result[f"image_big_k{kernel}"] = image_auroc(labels, scores)
                    result[f"image_small_k{kernel}"] = image_auroc(labels[small], scores[small])
                    result[f"scores_k{kernel}"] = scores.tolist()
                big = evaluate(masks, maps, labels, scores)
                result["pixel_big"], result["aupro_big"] = big["pixel_auroc"], big["aupro"]
                result["pixel_small"] = evaluate(masks[small], maps[small], labels[small],
                                                 scores[small])["pixel_auroc"]
                if args.normal_peaks:
                    normal = labels == 0
                    places = peak_places(maps[normal], foregrounds[normal], kernels[0])
                    result["normal_median"] = float(np.median(first_scores[normal]))
                    result["normal_peaks"] = {place: places.count(place) for place in ("edge", "inside", "background")}
                    if seed == args.first_seed:
                        top = np.flatnonzero(normal)[np.argsort(-first_scores[normal])[:6]]
                        sheet_rows.append(np.concatenate([np.concatenate([images[i], bench.heat_overlay(images[i], maps[i])])
                                                          for i in top], 1))
                per_category[category] = result
            runs[variant].append(per_category)
            print(f"{variant} seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr)

    keys = [k for k in runs[next(iter(runs))][0][categories[0]] if not k.startswith(("scores", "normal_"))]
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": runs,
                                              "labels": {c: sets[c][2].tolist() for c in categories},
                                              "kinds": {c: sets[c][3] for c in categories}}, default=float))
    half = "second" if args.fresh else "first"
    print(f"\nvalidation split ({half} half: {args.per_defect} per kind, {args.normals} normals per category; "
          f"small: {SMALL_PER_DEFECT} per kind, {SMALL_NORMALS} normals), seeds {args.first_seed}-"
          f"{args.first_seed + args.seeds - 1}, lr drops {args.lr_drops or 'none'}; mean over categories")
    print(f"{'variant':<8} {'metric':<15} {'mean +- std over seeds':>23}  per seed")
    for variant, variant_runs in runs.items():
        for key in keys:
            values = [float(np.mean([run[c][key] for c in categories])) for run in variant_runs]
            print(f"{variant:<8} {key:<15} {np.mean(values):>14.3f} +- {np.std(values):.3f}  "
                  + " ".join(f"{v:.3f}" for v in values))
    if args.normal_peaks:
        print(f"\nnormal images: median image score and where the score's window lies (outline: within "
              f"{EDGE_BAND} px of the object's edge), per category, summed over seeds")
        for variant, variant_runs in runs.items():
            for category in categories:
                peaks = {p: sum(run[category]["normal_peaks"][p] for run in variant_runs)
                         for p in ("edge", "inside", "background")}
                median = np.mean([run[category]["normal_median"] for run in variant_runs])
                print(f"{variant:<8} {category:<11} median {median:.2f}  outline {peaks['edge']:>3}  inside "
                      f"{peaks['inside']:>3}  background {peaks['background']:>3}")
        cv2.imwrite(args.normal_peaks, cv2.cvtColor(np.concatenate(sheet_rows, 0), cv2.COLOR_RGB2BGR))
        print(f"sheet (rows: {', '.join(f'{v} {c}' for v in runs for c in categories)}): {args.normal_peaks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
