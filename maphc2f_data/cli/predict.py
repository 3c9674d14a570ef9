"""``maphc2f predict --checkpoint RUN/model.safetensors IMAGE... --out DIR``.

One 8-bit anomaly-map PNG per image (the size the image was resized to) and
``DIR/scores.csv`` (path, image score, map file). No dataset layout needed.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "Anomaly maps and image scores of a detector checkpoint on image files."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the predict options to ``parser``."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--checkpoint", required=True, help="RUN/model.safetensors")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", type=int, default=None, help="input side (default: the size trained at)")
    parser.add_argument("--device", default="cpu", help="cuda or cpu")


def run(args: argparse.Namespace) -> int:
    """Predict and print one line per image."""
    from maphc2f_data.evaluation.run import predict_images

    for path, score in predict_images(args.checkpoint, args.images, args.out, size=args.size, device=args.device):
        print(f"{score:.4f}  {path}")
    print(f"maps and scores.csv: {args.out}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.predict``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("predict", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
