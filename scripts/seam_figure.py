#!/usr/bin/env python
"""The seam figure: how sharp is the mask border after each refinement stage? (a script, not a test)

Recipe (every step is the package's own CLI, run in-process; reruns resume):

1. ``maphc2f build --source demo --size S --count N --categories C --serial --out W/raw``
2. ``maphc2f train npcf --data W/raw --out W/npcf.safetensors --model M --epochs E --batch-size 8 --size S --lr LR``
   (``--paper-loss-too``: also ``--lambda-seam 0 --out W/npcf-eq21.safetensors``, refined into ``W/npcf-eq21``)
3. ``maphc2f train npcfpp --data W/raw --npcf W/npcf.safetensors --out W/npcfpp.safetensors --model M++ ...``
4. ``maphc2f refine --data W/raw --npcf W/npcf.safetensors --out W/npcf`` and, with ``--npcfpp``, ``--out W/npcfpp``

Figures, over every row (pooled sums, not means of ratios):

* seam sharpness: mean |Laplacian| of the grey image in the band of pixels
  within ``--band`` px of the mask border, divided by the same for the
  normal image in the same band (1.0: the border is as smooth as the
  normal image there; raw pastes are typically well above 1);
* in-mask change: mean |image - normal| inside the mask (0-255, all
  channels): how much of the anomaly survives.

Usage::

    .venv/bin/python scripts/seam_figure.py --work /tmp/seam [--size 128] [--epochs 3] [--model tiny|default]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maphc2f_data.cli.main import main as maphc2f  # noqa: E402


def _run(*argv: str) -> None:
    print("$ maphc2f " + " ".join(argv), flush=True)
    code = maphc2f(list(argv))
    if code:
        raise SystemExit(f"maphc2f {argv[0]} failed with exit code {code}")


def _rows(folder: Path):
    import pyarrow.parquet as pq

    from maphc2f_data.dataset.png import decode_png

    rows = {}
    for path in sorted((folder / "data").rglob("*.parquet")):
        for row in pq.read_table(path, columns=["sample_id", "image", "mask", "category", "source_image"]).to_pylist():
            rows[row["sample_id"]] = (decode_png(row["image"]["bytes"]), decode_png(row["mask"]["bytes"]) > 0,
                                      row["category"], row["source_image"])
    return rows


def _abs_laplacian(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=1))


def measure(work: Path, stages, band_px: int):
    from maphc2f_data.sampling import NormalImages

    normals = NormalImages(work / "raw")
    tables = {name: _rows(work / name) for name in stages}
    kernel = np.ones((2 * band_px + 1,) * 2, np.uint8)
    sums = {name: {"lap": 0.0, "lap_normal": 0.0, "diff": 0.0, "mask_px": 0} for name in stages}
    for sample_id, (image, mask, category, source_image) in tables["raw"].items():
        normal = normals.image(category, source_image, image.shape[0])
        m8 = mask.astype(np.uint8)
        band = (cv2.dilate(m8, kernel) - cv2.erode(m8, kernel)).astype(bool)
        lap_normal = _abs_laplacian(normal)[band].sum()
        for name in stages:
            refined = tables[name][sample_id][0]
            s = sums[name]
            s["lap"] += _abs_laplacian(refined)[band].sum()
            s["lap_normal"] += lap_normal
            s["diff"] += np.abs(refined.astype(np.int16) - normal)[mask].sum() / 3.0
            s["mask_px"] += int(mask.sum())
    return {name: (s["lap"] / max(s["lap_normal"], 1e-9), s["diff"] / max(s["mask_px"], 1)) for name, s in sums.items()}


def crop_sheet(work: Path, stages, out: Path, count: int = 4, crop: int = 48, zoom: int = 4) -> None:
    """Zoomed crops around the first ``count`` sizeable masks, one column per stage (to look at the seams)."""
    tables = {name: _rows(work / name) for name in stages}
    rows = []
    for sample_id, (image, mask, _, _) in sorted(tables["raw"].items()):
        if mask.sum() < 3 * crop:
            continue
        ys, xs = np.nonzero(mask)
        y0 = int(np.clip(ys.mean() - crop // 2, 0, image.shape[0] - crop))
        x0 = int(np.clip(xs.mean() - crop // 2, 0, image.shape[1] - crop))
        rows.append(np.hstack([cv2.resize(tables[name][sample_id][0][y0:y0 + crop, x0:x0 + crop],
                                          (crop * zoom,) * 2, interpolation=cv2.INTER_NEAREST) for name in stages]))
        if len(rows) == count:
            break
    if rows:
        cv2.imwrite(str(out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="working folder (builds, checkpoints); reruns resume")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--categories", default="nut,capsule,bottle_cap,pcb")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1, help="samples per source image and type in the raw build")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--model", choices=("tiny", "default"), default="tiny")
    parser.add_argument("--band", type=int, default=2, help="half-width of the border band in px")
    parser.add_argument("--lambda-seam", type=float, default=0.3, help="seam term weight of both losses (0: the paper's losses)")
    parser.add_argument("--paper-loss-too", action="store_true",
                        help="also train npcF on eq. 21 alone (--lambda-seam 0) and add it as a row")
    args = parser.parse_args(argv)
    work = Path(args.work).expanduser().resolve()
    suffix = "-tiny" if args.model == "tiny" else ""
    _run("build", "--source", "demo", "--size", str(args.size), "--count", str(args.count), "--categories", args.categories,
         "--serial", "--no-progress", "--out", str(work / "raw"))
    common = ["--data", str(work / "raw"), "--epochs", str(args.epochs), "--batch-size", "8", "--size", str(args.size),
              "--lr", str(args.lr), "--no-progress"]
    npcf, npcfpp = work / "npcf.safetensors", work / "npcfpp.safetensors"
    _run("train", "npcf", *common, "--out", str(npcf), "--model", f"npcf{suffix}", "--lambda-seam", str(args.lambda_seam))
    stages = ["raw"]
    if args.paper_loss_too:
        paper = work / "npcf-eq21.safetensors"
        _run("train", "npcf", *common, "--out", str(paper), "--model", f"npcf{suffix}", "--lambda-seam", "0")
        _run("refine", "--data", str(work / "raw"), "--npcf", str(paper), "--out", str(work / "npcf-eq21"),
             "--no-progress")
        stages.append("npcf-eq21")
    stages += ["npcf", "npcfpp"]
    _run("train", "npcfpp", *common, "--npcf", str(npcf), "--out", str(npcfpp), "--model", f"npcfpp{suffix}",
         "--lambda-seam", str(args.lambda_seam))
    _run("refine", "--data", str(work / "raw"), "--npcf", str(npcf), "--out", str(work / "npcf"), "--no-progress")
    _run("refine", "--data", str(work / "raw"), "--npcf", str(npcf), "--npcfpp", str(npcfpp),
         "--out", str(work / "npcfpp"), "--no-progress")
    results = measure(work, stages, args.band)
    crop_sheet(work, stages, work / "seam_crops.png")
    print(f"crops (columns: {', '.join(stages)}): {work / 'seam_crops.png'}")
    print(f"\n| stage | seam |Laplacian| vs normal (band {args.band} px) | in-mask mean |diff| to normal (0-255) |")
    print("|---|---|---|")
    for name, (ratio, diff) in results.items():
        print(f"| {name.replace('npcfpp', 'npcf++')} | {ratio:.3f} | {diff:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
