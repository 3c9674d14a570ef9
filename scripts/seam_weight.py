#!/usr/bin/env python
"""How strongly does npcF's seam term act? (a script, not a test)

Fits ``npcf-tiny`` to a fixed batch of a raw build for a few AdamW steps with
each ``lambda_seam`` and prints the seam term (mean |Laplacian| excess in the
2 px border band, before/after) and the in-mask change to the normal image
(0-255). This is how the default ``lambda_seam = 0.3`` was chosen.

Usage::

    .venv/bin/python scripts/seam_weight.py --data /tmp/seam/raw [--rows 16 --steps 100 --weights 0.05,0.3,1.0]
"""

from __future__ import annotations

import argparse
import itertools
import sys

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a raw build (e.g. scripts/seam_figure.py's W/raw)")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weights", default="0,0.05,0.3,1.0")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    from maphc2f_data.models.factory import create_model
    from maphc2f_data.models.npcf.loss import NpcfLoss, NpcfLossConfig, boundary_band, seam_excess
    from maphc2f_data.training.data import ShardRows

    rows = list(itertools.islice(iter(ShardRows(args.data, with_normal=True)), args.rows))
    x = torch.stack([row["normal"] for row in rows])
    stage_a = torch.stack([row["image"] for row in rows])
    mask = torch.stack([row["mask"] for row in rows]).reshape(len(rows), 1, *x.shape[-2:])
    band = boundary_band(mask, 2)

    def in_mask_change(u: torch.Tensor) -> float:
        return float(((u - x).abs() * mask).sum() / (3 * mask.sum()) * 255)

    before = seam_excess(stage_a, x, band).item()
    print(f"{len(rows)} rows, {args.steps} AdamW steps of npcf-tiny at lr {args.lr}; raw: seam term "
          f"{before:.5f}, in-mask change {in_mask_change(stage_a):.1f}")
    print("| lambda_seam | seam term | change | in-mask change | change |\n|---|---|---|---|---|")
    for weight in (float(w) for w in args.weights.split(",")):
        model = create_model("npcf-tiny", seed=0)
        loss_fn = NpcfLoss(NpcfLossConfig(lambda_seam=weight), backbone=None)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        for _ in range(args.steps):
            total = loss_fn(model(x, stage_a, mask), x, stage_a, mask)["total"]
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        with torch.no_grad():
            u = model(x, stage_a, mask)
        seam, change = seam_excess(u, x, band).item(), in_mask_change(u)
        print(f"| {weight:g} | {seam:.5f} | {100 * (seam / before - 1):+.0f} % | {change:.1f} | "
              f"{100 * (change / in_mask_change(stage_a) - 1):+.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
