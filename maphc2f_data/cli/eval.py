"""``maphc2f eval``: a detector checkpoint on a source's real test split.

Prints a table shaped like the paper's Tables 2-4 (image/pixel AUROC, plus
AUPRO) and writes ``{category: {"image_auroc", "pixel_auroc", "aupro"}}`` as
JSON (and CSV beside it), optionally a heat-map sheet PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

HELP = "Evaluate a detector checkpoint on a source's test split (image AUROC, pixel AUROC, AUPRO)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the eval options to ``parser``."""
    parser.add_argument("--source", required=True, help="mvtec, visa, btad, folder or demo")
    parser.add_argument("--root", default=None, help="dataset root of the source (not for demo)")
    parser.add_argument("--category", "--categories", dest="categories", required=True,
                        help="category, or several separated by commas")
    parser.add_argument("--checkpoint", required=True, help="RUN/model.safetensors")
    parser.add_argument("--out", default="metrics.json", help="metrics JSON (a .csv is written beside it)")
    parser.add_argument("--heatmaps", default=None, help="write a heat-map sheet PNG here")
    parser.add_argument("--size", type=int, default=None, help="input side (default: the size trained at)")
    parser.add_argument("--device", default="cpu", help="cuda or cpu")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table."""
    import cv2

    from maphc2f_data.evaluation.run import evaluate_checkpoint, format_table, heatmap_sheet, write_metrics

    categories = [c for c in args.categories.split(",") if c]
    results = evaluate_checkpoint(args.source, args.root, categories, args.checkpoint, size=args.size,
                                  device=args.device)
    out = Path(args.out)
    table = write_metrics(results, out, out.with_suffix(".csv"))
    print(format_table(table))
    print(f"metrics: {out}")
    if args.heatmaps:
        Path(args.heatmaps).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.heatmaps), heatmap_sheet(results)[..., ::-1])
        print(f"heat maps: {args.heatmaps}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.eval``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("eval", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
