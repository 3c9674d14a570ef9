#!/usr/bin/env python
"""Accuracy and speed of the classical foreground fallback.

Prints one table row per (image set, setting):

* ``scenes-128``: objects with known masks rendered at 128 px on textured,
  lit, noisy backdrops (``render_scene`` from
  ``tests/foreground/test_classical.py``, the scenes the tests use);
* ``demo-512``: the demo source's rendered objects (nut, bottle_cap, capsule,
  pcb) at 512 px against their exact foregrounds;
* ``demo-photos``: the demo photographs (coffee, coins), foreground fraction
  only (no ground truth).

each with GrabCut on (the default) and off, so its benefit and cost show.
Times are wall-clock medians per image on this machine.

Usage::

    .venv/bin/python scripts/bench_foreground.py [--scenes 40] [--demo-images 8]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from maphc2f_data.foreground.classical import DEFAULT_CONFIG, classical_foreground
from maphc2f_data.sources.demo import DemoSource, RENDERED_CATEGORIES

ROOT = Path(__file__).resolve().parents[1]


def _load_scene_renderer():
    path = ROOT / "tests" / "foreground" / "test_classical.py"
    spec = importlib.util.spec_from_file_location("foreground_test_scenes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_scene, module.SCENE_KINDS, module.iou


def _timed(image, config):
    start = time.perf_counter()
    mask = classical_foreground(image, config=config)
    return mask, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40, help="rendered 128 px scenes (default 40)")
    parser.add_argument("--demo-images", type=int, default=8, help="demo train images per category (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the rendered scenes (default 1)")
    args = parser.parse_args(argv)

    render_scene, kinds, iou = _load_scene_renderer()
    rng = np.random.default_rng(args.seed)
    scenes = [render_scene(kinds[i % len(kinds)], rng) for i in range(args.scenes)]
    source = DemoSource()
    demo = [
        (category, source.load_image(item), source.known_foreground(item))
        for category in RENDERED_CATEGORIES
        for item in source.train_images(category)[: args.demo_images]
    ]
    photos = [
        (category, source.load_image(item))
        for category in ("coffee", "coins")
        for item in source.train_images(category)[: args.demo_images]
    ]
    settings = {"grabcut": DEFAULT_CONFIG, "no-grabcut": replace(DEFAULT_CONFIG, grabcut_iterations=0)}
    classical_foreground(scenes[0][0])  # warm-up (imports, OpenCV init)

    print(f"# classical foreground, {platform.processor() or platform.machine()}, cv2 threads={cv2.getNumThreads()}")
    header = f"{'set':<12} {'setting':<11} {'n':>3} {'mean IoU':>9} {'min IoU':>8} {'ms/img':>7}  per-kind"
    print(header)
    print("-" * len(header))
    for name, config in settings.items():
        labelled_scenes = [(kinds[i % len(kinds)], *scene) for i, scene in enumerate(scenes)]
        for set_name, items in (("scenes-128", labelled_scenes), ("demo-512", demo)):
            scores, times, per_kind = [], [], {}
            for kind, image, truth in items:
                mask, seconds = _timed(image, config)
                scores.append(iou(mask, truth))
                times.append(seconds)
                per_kind.setdefault(kind, []).append(scores[-1])
            breakdown = " ".join(f"{k}={np.mean(v):.3f}" for k, v in per_kind.items())
            print(
                f"{set_name:<12} {name:<11} {len(scores):>3} {np.mean(scores):>9.4f} {np.min(scores):>8.4f} "
                f"{np.median(times) * 1e3:>7.1f}  {breakdown}"
            )
        fractions, times = {}, []
        for category, image in photos:
            mask, seconds = _timed(image, config)
            fractions.setdefault(category, []).append(mask.mean())
            times.append(seconds)
        breakdown = " ".join(
            f"{k}: fg fraction {np.min(v):.2f}-{np.max(v):.2f}" for k, v in fractions.items()
        )
        print(
            f"{'demo-photos':<12} {name:<11} {len(times):>3} {'-':>9} {'-':>8} "
            f"{np.median(times) * 1e3:>7.1f}  {breakdown}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
