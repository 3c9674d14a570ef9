"""Does the data teach? One detector, one budget, four sources of anomalies.

The paper's central claim (Fig. 1, Tables 5-6) is that math-physics anomalies
are closer to real defects than DRAEM's, so a detector trained on them finds
real defects better. This script trains the same segmentation network (the
discriminative U-Net of the BiSQAD base model, DRAEM's, trained from scratch;
``--detector base``: the whole base model, reconstructive sub-network too)
with an identical budget on:

* ``shards``  - a fixed pool of MaPhC2F rows from a build (what the dataset ships);
* ``online``  - fresh MaPhC2F anomalies at every step (``training.augment.PhysicsAnomalies``);
* ``draem``   - fresh DRAEM-style anomalies (Perlin mask + augmented texture; the baseline);
* ``mixed``   - half online MaPhC2F, half DRAEM-style;

and evaluates each on a source's *real* test split (the demo source's
held-out defects by default: scratches, dents, stains, missing pieces and
cut-paste, made by processes other than the three generators), with image
AUROC, pixel AUROC and AUPRO, next to a training-free per-pixel z-score
against the normals. Every batch is half untouched normals, half anomalies.
Settings were chosen on synthetic validation data, never on the test split
(``scripts/transfer_validation.py`` asks the questions that need several
scores of the same networks).

Usage::

    python scripts/bench_transfer.py                           # demo, 3 seeds x 1200 steps, table + JSON + sheet
    python scripts/bench_transfer.py --steps 60 --seeds 1      # a quick look
    python scripts/bench_transfer.py --split validation --variants online,draem   # where settings are chosen
    python scripts/bench_transfer.py --extra-defects 8         # demo: 8 more held-out defects per kind
    python scripts/bench_transfer.py --source mvtec --root ~/data/mvtec_ad --categories bottle --size 256 \\
        --steps 4000 --width 32 --device cuda --texture-dir ~/data/dtd/images
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from maphc2f_data.evaluation import evaluate
from maphc2f_data.models.draem.loss import DraemLoss, focal_loss_per_sample
from maphc2f_data.models.draem.torch_model import (DiscriminativeSubNetwork, DraemConfig, DraemModel, DraemOutput,
                                                    image_score)
from maphc2f_data.sampling import load_square, resize_label, resize_square
from maphc2f_data.sources import get_source
from maphc2f_data.training.augment import DraemStyleAnomalies, NormalPool, PhysicsAnomalies
from maphc2f_data.training.data import ShardRows, to_tensor
from maphc2f_data.training.draem_style import load_textures

VARIANTS = ("shards", "online", "draem", "mixed")
# "base": the BiSQAD base model (DRAEM's reconstructive + discriminative sub-networks, L2 + SSIM + focal);
# "discriminative": its discriminative U-Net alone (the benchmark's detector before question 14, README).
DETECTORS = ("base", "discriminative")
DEFAULT_CATEGORIES = {"demo": ["bottle_cap", "capsule", "nut", "pcb"]}
# Normal training renders per demo category: as many as MVTec AD's smallest train split (toothbrush, 60) has,
# not the demo's 8 (README, question 11).
DEMO_TRAIN_NORMALS = 64


def use_synthesis_config(changes: Dict[str, Dict]) -> None:
    """Re-register anomaly types with changed sampling configs (this process only).

    ``changes`` maps a type to fields of its config dataclass, e.g.
    ``{"crack": {"bright_prob": 0.0}}``; how the generator defaults were
    compared on validation categories (see the README).
    """
    import dataclasses
    import functools

    from maphc2f_data.synthesis import ANOMALY_TYPES, AnomalyType, corrosion, crack, deformation

    modules = {
        "crack": (crack.CrackConfig, crack.sample_crack_params, crack.render_crack),
        "corrosion": (corrosion.CorrosionConfig, corrosion.sample_corrosion_params, None),
        "deformation": (deformation.DeformationConfig, deformation.sample_deformation_params, None),
    }
    for kind, fields in changes.items():
        if kind not in modules:
            raise SystemExit(f"--synthesis-config: unknown anomaly type {kind!r}; choose from {sorted(modules)}")
        config_class, sample, render = modules[kind]
        fields = {k: tuple(map(tuple, v)) if k == "colour_families" else tuple(v) if isinstance(v, list) else v
                  for k, v in fields.items()}
        config = dataclasses.replace(config_class(), **fields)
        # Only the crack's render reads its config (minimum sizes); the others render from params alone.
        render = functools.partial(render, config=config) if render else ANOMALY_TYPES[kind].render
        ANOMALY_TYPES[kind] = AnomalyType(kind, functools.partial(sample, config=config), render)


def make_net(width: int, size: int, prior: float = 0.0) -> torch.nn.Module:
    """The discriminative U-Net; ``prior`` > 0 starts its anomaly probability at ``prior`` everywhere
    (the focal-loss paper's initialisation of the head's bias; ``DraemConfig.head_prior``)."""
    levels = 5 if size % 32 == 0 else 4
    return DiscriminativeSubNetwork(3, 2, width, (1, 2, 4, 8, 8, 8)[:levels + 1], 4, head_prior=prior)


def make_detector(detector: str, width: int, size: int, prior: float = 0.0, kernel: int = 5) -> torch.nn.Module:
    """The benchmark's detector (``DETECTORS``) at ``width`` for ``size``-px inputs.

    ``base`` is :class:`DraemModel` with both sub-networks at ``width`` (DRAEM's ratio is 2:1; equal widths
    keep the CPU budget), the same levels and GroupNorm groups as :func:`make_net`; ``discriminative`` is
    :func:`make_net`.
    """
    if detector not in DETECTORS:
        raise SystemExit(f"bench_transfer.py: --detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    if detector == "discriminative":
        return make_net(width, size, prior)
    levels = 5 if size % 32 == 0 else 4
    return DraemModel(DraemConfig(recon_width=width, disc_width=width, recon_multipliers=(1, 2, 4, 8, 8)[:levels],
                                  disc_multipliers=(1, 2, 4, 8, 8, 8)[:levels + 1], norm_groups=4,
                                  score_kernel=kernel, head_prior=prior))


def segmentation_logits(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) logits of either detector."""
    output = net(images)
    return output.segmentation_logits if isinstance(output, DraemOutput) else output


def lr_schedule(optimizer: torch.optim.Optimizer, steps: int, drops: str):
    """DRAEM's schedule: the learning rate times 0.2 at each fraction of ``steps`` in ``drops``
    ("0.8,0.9", its MultiStepLR); ``drops`` empty: constant (the first versions)."""
    fractions = [float(f) for f in drops.split(",")] if drops else []
    if any(not 0 < f < 1 for f in fractions):
        raise SystemExit(f"--lr-drops: fractions of the steps in (0, 1), got {drops!r}")
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(steps * f) for f in fractions], gamma=0.2)


def score_kernel(size: int) -> int:
    """Side of the image score's averaging window (image score: max of the map averaged over it, DRAEM's
    rule). DRAEM's 21 at 256 px is about ``size // 12``; half of that (5 at 96 px), chosen on the
    validation split, keeps thin scratches from being averaged away."""
    return max(3, size // 24) | 1


def dice_loss(logits: torch.Tensor, mask: torch.Tensor, anomalous_only: bool = False) -> torch.Tensor:
    """Soft Dice of the anomaly class per sample, averaged; ``anomalous_only``: over the samples with
    an anomaly only (an empty mask's Dice rewards an all-normal map and nothing else)."""
    probability = logits.softmax(1)[:, 1:2]
    inter = (probability * mask).sum((1, 2, 3))
    per_sample = 1 - (2 * inter + 1) / (probability.sum((1, 2, 3)) + mask.sum((1, 2, 3)) + 1)
    if anomalous_only:
        has = mask.flatten(1).amax(1) > 0.5
        return per_sample[has].mean() if bool(has.any()) else per_sample.sum() * 0.0
    return per_sample.mean()


def shard_pool(source_name: str, root, categories: Sequence[str], size: int, dataset: str, seed: int,
               count: int, build_size: int = 0, with_normal: bool = False,
               demo_train_count: Optional[int] = None) -> List[Dict[str, torch.Tensor]]:
    """The anomalies of a MaPhC2F build (built here at ``build_size``, default ``size``, from
    ``demo_train_count`` demo training renders per category when given, unless ``dataset`` names one),
    resized to ``size`` (``resize_square``, masks by ``resize_label``; rows whose mask vanishes at ``size``
    are left out); ``with_normal``: each row's untouched source image too (``normal``, the base detector's
    reconstruction target)."""
    if not dataset:
        from maphc2f_data.builder import BuildConfig, SerialRunner, build

        dataset = str(Path(tempfile.mkdtemp(prefix="bench-transfer-")) / "maphc2f")
        build(BuildConfig(source=source_name, root=root, out=dataset, categories=tuple(categories), count=count,
                          size=build_size or size, seed=seed, demo_train_count=demo_train_count),
              runner=SerialRunner(), progress=False,
              log=lambda m: None)
    rows = []
    def pixels(tensor: torch.Tensor) -> np.ndarray:
        return (tensor.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    for row in ShardRows(dataset, categories=list(categories), with_normal=with_normal):
        image, mask = row["image"], row["mask"]
        normal = row.get("normal")
        if image.shape[-1] != size:
            label = resize_label(mask[0].numpy() > 0.5, size)
            if not label.any():
                continue
            image, mask = to_tensor(resize_square(pixels(image), size)), torch.from_numpy(label.astype(np.float32))[None]
            normal = None if normal is None else to_tensor(resize_square(pixels(normal), size))
        rows.append({"image": image, "mask": mask} if normal is None else {"image": image, "mask": mask,
                                                                           "normal": normal})
    return rows


class Batches:
    """Training batches of one variant: half normals, half anomalies."""

    def __init__(self, variant: str, pool: NormalPool, shards, textures, seed: int, batch: int,
                 overrides=None, kinds=None, synthesis_pool: NormalPool = None):
        self.variant, self.pool, self.shards, self.batch = variant, pool, shards, batch
        self.rng = np.random.default_rng([seed, 7])
        length = 10**9
        # MaPhC2F anomalies are made on ``synthesis_pool`` (e.g. the build's 512 px) and resized to the pool's size.
        self.physics = PhysicsAnomalies(synthesis_pool or pool, seed=seed, normal_ratio=0.0, length=length,
                                        overrides=overrides, kinds=kinds, size=pool.size)
        self.draem = DraemStyleAnomalies(pool, textures, seed=seed, normal_ratio=0.0, length=length)

    def _anomaly(self, step: int, slot: int) -> Dict[str, torch.Tensor]:
        index = step * self.batch + slot
        kind = self.variant
        if kind == "mixed":
            kind = "online" if slot % 2 == 0 else "draem"
        if kind == "shards":
            return self.shards[int(self.rng.integers(len(self.shards)))]
        return (self.physics if kind == "online" else self.draem)[index]

    def __call__(self, step: int):
        """(images, masks, normals) of ``step``: (B, 3, S, S), (B, 1, S, S), (B, 3, S, S); ``normals`` are the
        untouched images (a normal slot's is itself; a shard row without one: itself too)."""
        images, masks, normals = [], [], []
        half = self.batch // 2
        for slot in range(self.batch):
            if slot < half:
                image, _ = self.pool.get(int(self.rng.integers(len(self.pool))))
                images.append(to_tensor(image))
                masks.append(torch.zeros(1, *image.shape[:2]))
                normals.append(images[-1])
            else:
                item = self._anomaly(step, slot)
                images.append(item["image"])
                masks.append(item["mask"])
                normals.append(item.get("normal", item["image"]))
        return torch.stack(images), torch.stack(masks), torch.stack(normals)


def open_source(args):
    """The source of ``--source``/``--root``; the demo with ``--train-normals`` training renders per category."""
    if args.train_normals is None:
        args.train_normals = DEMO_TRAIN_NORMALS if args.source == "demo" else 0
    if args.train_normals < 0 or (args.train_normals and args.source != "demo"):
        raise SystemExit(f"bench_transfer.py: --train-normals N (N >= 1) is for the demo source only "
                         f"(got {args.train_normals} with --source {args.source})")
    if args.train_normals:
        from maphc2f_data.sources.demo import DemoSource

        return DemoSource(train_count=args.train_normals)
    return get_source(args.source, args.root)


def shard_train_count(args) -> Optional[int]:
    """``demo_train_count`` of the shards' build: --train-normals with ``--shard-normals same`` on the demo, else
    None (the source's train split, which for a real source is what every variant trains on; ``--dataset``
    names a build made elsewhere). Call after :func:`open_source`."""
    if args.shard_normals == "split" or args.source != "demo" or args.dataset:
        return None
    return args.train_normals or None


def synthesis_pool_for(source, categories, args):
    """The normals MaPhC2F anomalies are made on: at ``--synthesis-size`` (None: the detector's pool)."""
    if args.synthesis_size < 0 or (args.synthesis_size and args.synthesis_size < args.size):
        raise SystemExit(f"bench_transfer.py: --synthesis-size must be 0 or at least --size {args.size}, "
                         f"got {args.synthesis_size}")
    if args.synthesis_size in (0, args.size):
        return None
    return NormalPool(source, categories, args.synthesis_size)


def train(variant, pool, shards, textures, args, seed, device, synthesis_pool=None):
    torch.manual_seed(seed)  # the script's own process: seeds the network's initialisation
    base = args.detector == "base"
    if base and variant in ("shards", "mixed") and shards and "normal" not in shards[0]:
        raise SystemExit("bench_transfer.py: the base detector needs the shards' normal images (shard_pool with_normal)")
    net = make_detector(args.detector, args.width, args.size, args.prior,
                        args.score_kernel or score_kernel(args.size)).to(device)
    reconstruction_loss = DraemLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    schedule = lr_schedule(optimizer, args.steps, args.lr_drops)
    batches = Batches(variant, pool, shards, textures, seed, args.batch, json.loads(args.physics_overrides),
                      args.online_kinds.split(",") if args.online_kinds else None, synthesis_pool)
    net.train()
    for step in range(args.steps):
        images, masks, normals = (t.to(device) for t in batches(step))
        if base:  # L2 + SSIM of the reconstruction against the untouched image, focal on the mask
            output = net(images)
            logits = output.segmentation_logits
            loss = reconstruction_loss(output, normals, masks)
        else:
            logits = net(images)
            loss = focal_loss_per_sample(logits, masks).mean()
        loss = loss + dice_loss(logits, masks, args.dice == "anomalous")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval()


def resize_mask(mask, size: int) -> np.ndarray:
    """A defect mask (or None: an all-normal one) at ``size`` x ``size``, nearest neighbour, bool."""
    if mask is None:
        return np.zeros((size, size), bool)
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def validation_set(categories, size, per_defect=4, normals=10):
    """Per category: (images, masks, labels, kinds) of the demo's validation split (the test split's
    defect processes on renders no other split uses; ``sources.demo.validation_split``)."""
    from maphc2f_data.sources.demo import validation_split

    sets = {}
    for category in categories:
        split = validation_split(category, per_defect, normals)
        images = np.stack([resize_square(item.image, size) for _, item in split])
        masks = np.stack([resize_mask(item.defect_mask, size) for _, item in split])
        sets[category] = (images, masks, masks.reshape(len(masks), -1).any(1).astype(int),
                          [kind for kind, _ in split])
    return sets


def test_set(source, categories, size, extra_normals=0, extra_defects=0):
    """Per category: (images, masks, labels, kinds) of the real test split, plus ``extra_normals``
    held-out normal renders and ``extra_defects`` held-out defects of each kind (demo only; its split
    has 2 normals and 2 defects of each kind per category)."""
    from maphc2f_data.sources.demo import held_out_defects, held_out_normals

    sets = {}
    for category in categories:
        images, masks, labels, kinds = [], [], [], []
        for image in held_out_normals(category, extra_normals) if extra_normals else []:
            images.append(resize_square(image, size))  # the one resize rule of the test images too
            masks.append(np.zeros((size, size), bool))
            labels.append(0)
            kinds.append("good")
        for kind, item in held_out_defects(category, extra_defects) if extra_defects else []:
            images.append(resize_square(item.image, size))
            masks.append(resize_mask(item.defect_mask, size))
            labels.append(int(masks[-1].any()))
            kinds.append(kind)
        for item in source.test_images(category):
            image = load_square(source, item, size)
            mask = resize_mask(source.load_mask(item), size)
            images.append(image)
            masks.append(mask)
            labels.append(int(mask.any()))
            kinds.append(item.defect)
        sets[category] = (np.stack(images), np.stack(masks), np.array(labels), kinds)
    return sets


@torch.no_grad()
def predict(net, images: np.ndarray, device, kernel: int) -> "tuple[np.ndarray, np.ndarray]":
    maps = []
    for start in range(0, len(images), 16):
        x = torch.stack([to_tensor(image) for image in images[start:start + 16]]).to(device)
        maps.append(segmentation_logits(net, x).softmax(1)[:, 1].float().cpu())
    maps = torch.cat(maps)
    return maps.numpy(), image_score(maps[:, None], kernel).numpy()


def zscore_maps(pool: NormalPool, images: np.ndarray, kernel: int):
    normals = np.stack([pool.get(i)[0] for i in range(len(pool))]).astype(np.float32)
    mean, std = normals.mean(0), normals.std(0) + 8.0  # +8 grey levels: a floor for flat regions
    maps = np.abs((images.astype(np.float32) - mean) / std).max(-1)
    maps = np.stack([cv2.blur(m, (3, 3)) for m in maps])
    return maps, image_score(torch.from_numpy(maps)[:, None], kernel).numpy()


def metrics(maps, scores, masks, labels, kinds):
    result = evaluate(masks, maps, labels, scores)
    # Pixel AUROC per test defect kind (against all normal pixels of that category).
    from maphc2f_data.evaluation import image_auroc, pixel_auroc

    by_kind, image_by_kind = {}, {}
    for kind in sorted(set(kinds) - {"good"}):
        chosen = [i for i, k in enumerate(kinds) if k in (kind, "good")]
        by_kind[kind] = pixel_auroc(masks[chosen], maps[chosen])
        # Image AUROC of this kind's defective images against every normal image.
        image_by_kind[kind] = image_auroc(labels[chosen], scores[chosen])
    result["pixel_auroc_by_kind"] = by_kind
    result["image_auroc_by_kind"] = image_by_kind
    return result


def heat_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    colour = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.5, cv2.cvtColor(colour, cv2.COLOR_BGR2RGB), 0.5, 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--source", default="demo")
    parser.add_argument("--root", default=None)
    parser.add_argument("--categories", default=None, help="comma-separated (default: the demo's rendered objects)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--detector", choices=DETECTORS, default="discriminative",
                        help="base: the BiSQAD base model (reconstructive + discriminative); discriminative: "
                             "its discriminative U-Net alone")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-drops", default="0.8,0.9",
                        help="fractions of the steps where the learning rate drops x0.2 (DRAEM's MultiStepLR; "
                             "chosen on the validation split); '': constant (the first versions)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dice", choices=("all", "anomalous"), default="anomalous",
                        help="Dice term over the batch's samples with an anomaly (default, chosen on the "
                             "validation categories) or over every sample, normals too (the first versions)")
    parser.add_argument("--prior", type=float, default=0.01,
                        help="start the anomaly probability at this value (focal-loss prior initialisation of "
                             "the head's bias; the default was chosen on the validation split); 0: PyTorch's "
                             "default initialisation (the first versions)")
    parser.add_argument("--score-kernel", type=int, default=0,
                        help="image score: max of the map averaged over this many pixels square (default "
                             "size // 24, odd: 5 at 96 px, chosen on the validation split; DRAEM's size // 12 "
                             "gives 9, the first versions)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--synthesis-size", type=int, default=0,
                        help="MaPhC2F anomalies (online, and the shards' build) are made at this size and resized "
                             "to --size, as a detector reads a build made at a larger size (0: at --size)")
    parser.add_argument("--shard-count", type=int, default=3, help="samples per image and type in the shards pool")
    parser.add_argument("--dataset", default="", help="an existing build for the shards variant")
    parser.add_argument("--shard-normals", choices=("split", "same"), default="same",
                        help="demo: build the shards variant from the same --train-normals renders the other "
                             "variants train on (maphc2f-build --demo-train-count; chosen on the validation "
                             "split, question 18) or from the source's train split, 8 renders per category "
                             "(the first versions)")
    parser.add_argument("--physics-overrides", default="{}",
                        help='JSON: anomaly type -> fixed synthesis parameters of the online MaPhC2F variants, '
                             'e.g. \'{"deformation": {"shading": 0.05}}\'')
    parser.add_argument("--online-kinds", default="",
                        help="comma-separated anomaly types the online variants draw from, uniformly; repeat a "
                             "type to weight it (default: every type once)")
    parser.add_argument("--synthesis-config", default="{}",
                        help='JSON: anomaly type -> config fields for every MaPhC2F variant (shards built here '
                             'included), e.g. \'{"crack": {"bright_prob": 0.0}}\' for the paper\'s dark-only cracks')
    parser.add_argument("--train-normals", type=int, default=None,
                        help="demo only: normal training renders per category (DemoSource(train_count=N); default "
                             "64 for the demo, whose train split has 8 where real sources have 60-1000); 0: the "
                             "source's train split. The shards variant follows --shard-normals")
    parser.add_argument("--extra-normals", type=int, default=None,
                        help="demo only: held-out normal renders added per category to the test split "
                             "(default 10 for the demo, whose split has 2; 0 for the split alone)")
    parser.add_argument("--extra-defects", type=int, default=0,
                        help="demo only: held-out defects of each kind added per category to the test split "
                             "(sources.demo.held_out_defects; default 0, the split's 2 per kind alone)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="evaluate on the source's test split, or (demo only) on its validation split: the "
                             "same defect processes on other renders (4 per kind, 10 normals), where settings "
                             "are chosen")
    parser.add_argument("--texture-dir", default=None, help="DTD-like texture folder (default: skimage stand-ins)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="bench_transfer", help="folder for results.json and heatmaps.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    use_synthesis_config(json.loads(args.synthesis_config))
    source = open_source(args)
    categories = args.categories.split(",") if args.categories else DEFAULT_CATEGORIES.get(args.source,
                                                                                          source.categories())
    variants = args.variants.split(",")
    started = time.perf_counter()
    pool = NormalPool(source, categories, args.size)
    synthesis_pool = synthesis_pool_for(source, categories, args)
    textures = load_textures(args.texture_dir, args.size)
    shards = shard_pool(args.source, args.root, categories, args.size, args.dataset, 0, args.shard_count,
                        args.synthesis_size, with_normal=args.detector == "base",
                        demo_train_count=shard_train_count(args)) if "shards" in variants else []
    if args.extra_normals is None:
        args.extra_normals = 10 if args.source == "demo" else 0
    for name in ("extra_normals", "extra_defects"):
        if getattr(args, name) and args.source != "demo":
            raise SystemExit(f"bench_transfer.py: --{name.replace('_', '-')} is for the demo source only "
                             f"(got --source {args.source})")
    if args.split == "validation":
        if args.source != "demo":
            raise SystemExit(f"bench_transfer.py: --split validation is for the demo source only "
                             f"(got --source {args.source}); hold out a category instead")
        tests = validation_set(categories, args.size)
    else:
        tests = test_set(source, categories, args.size, args.extra_normals, args.extra_defects)
    if args.score_kernel < 0:
        raise SystemExit(f"bench_transfer.py: --score-kernel must be >= 0 (0: the default), got {args.score_kernel}")
    kernel = args.score_kernel or score_kernel(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results: Dict[str, Dict] = {"settings": vars(args), "categories": categories, "runs": {}}
    all_images = np.concatenate([tests[c][0] for c in categories])
    z_maps, z_scores = zscore_maps(pool, all_images, kernel)
    offset, z_result = 0, {}
    for category in categories:
        images, masks, labels, kinds = tests[category]
        n = len(images)
        z_result[category] = metrics(z_maps[offset:offset + n], z_scores[offset:offset + n], masks, labels, kinds)
        offset += n
    results["runs"]["zscore"] = [z_result]
    sheet_rows = []
    for variant in variants:
        results["runs"][variant] = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            net = train(variant, pool, shards, textures, args, seed, args.device, synthesis_pool)
            per_category = {}
            for category in categories:
                images, masks, labels, kinds = tests[category]
                maps, scores = predict(net, images, args.device, kernel)
                per_category[category] = metrics(maps, scores, masks, labels, kinds)
                if seed == 0 and category == categories[0]:
                    # One normal first (false positives show there), then five defects.
                    defective = [i for i, label in enumerate(labels) if label][:5]
                    shown = [i for i, label in enumerate(labels) if not label][:1] + defective
                    sheet_rows.append((variant, images[defective[0]], [
                        (kinds[i], heat_overlay(images[i], maps[i]), masks[i]) for i in shown]))
            results["runs"][variant].append(per_category)
            print(f"{variant} seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    results["seconds"] = time.perf_counter() - started

    def summary(runs):
        keys = ("image_auroc", "pixel_auroc", "aupro")
        values = {k: [np.mean([run[c][k] for c in categories]) for run in runs] for k in keys}
        return {k: (float(np.mean(v)), float(np.std(v))) for k, v in values.items()}

    results["summary"] = {variant: summary(runs) for variant, runs in results["runs"].items()}
    kinds_all = sorted({k for c in categories for k in tests[c][3]} - {"good"})
    results["pixel_auroc_by_kind"] = {
        variant: {kind: float(np.mean([run[c]["pixel_auroc_by_kind"].get(kind, np.nan) for run in runs
                                       for c in categories if kind in run[c]["pixel_auroc_by_kind"]]))
                  for kind in kinds_all}
        for variant, runs in results["runs"].items()}
    results["image_auroc_by_kind"] = {
        variant: {kind: float(np.mean([run[c]["image_auroc_by_kind"][kind] for run in runs
                                       for c in categories if kind in run[c]["image_auroc_by_kind"]]))
                  for kind in kinds_all}
        for variant, runs in results["runs"].items()}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    if sheet_rows:
        from maphc2f_data.preview import contact_sheet

        sheet = contact_sheet(sheet_rows, tile=max(96, args.size), first_title=categories[0])
        cv2.imwrite(str(out / "heatmaps.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))

    print(f"\n{args.source} ({args.split} split): {', '.join(categories)}; {args.size} px, "
          f"{args.steps} steps x batch {args.batch}, {args.detector} detector, width {args.width}, {args.seeds} "
          f"seed(s), image score "
          f"kernel {kernel}; "
          f"{results['seconds'] / 60:.1f} min")
    print(f"{'anomalies':<10} {'image AUROC':>16} {'pixel AUROC':>16} {'AUPRO':>16}")
    for variant, stats in results["summary"].items():
        cells = [f"{stats[k][0]:.3f} +- {stats[k][1]:.3f}" for k in ("image_auroc", "pixel_auroc", "aupro")]
        print(f"{variant:<10} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")
    print("\npixel AUROC by test defect kind:")
    print(f"{'anomalies':<10} " + " ".join(f"{k:>10}" for k in kinds_all))
    for variant, by_kind in results["pixel_auroc_by_kind"].items():
        print(f"{variant:<10} " + " ".join(f"{by_kind[k]:>10.3f}" for k in kinds_all))
    print("\nimage AUROC by test defect kind (its defective images against every normal):")
    print(f"{'anomalies':<10} " + " ".join(f"{k:>10}" for k in kinds_all))
    for variant, by_kind in results["image_auroc_by_kind"].items():
        print(f"{variant:<10} " + " ".join(f"{by_kind[k]:>10.3f}" for k in kinds_all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
