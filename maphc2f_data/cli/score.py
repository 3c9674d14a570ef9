"""``maphc2f score --data DIR --sqe RUN/sqe.safetensors``: fill the quality column.

Scores every row of the chosen categories (all splits) with a trained SQE and
rewrites those categories' shards with ``quality`` filled (staged, then
renamed; manifest sha256s updated; under the dataset's lock).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "Write a trained SQE's scores into the dataset's quality column."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the score options to ``parser``."""
    parser.add_argument("--data", required=True, help="built dataset folder")
    parser.add_argument("--sqe", required=True, help="RUN/sqe.safetensors from maphc2f train bisqad")
    parser.add_argument("--categories", default=None, help="comma-separated categories (default: all)")
    parser.add_argument("--backbone-weights", default=None, help="backbone weights file, if not where training had it")
    parser.add_argument("--batch-size", type=int, default=32, help="images per SQE call")
    parser.add_argument("--device", default="cpu", help="cuda or cpu")


def run(args: argparse.Namespace) -> int:
    """Score and print rows per category."""
    from maphc2f_data.models.checkpoint import checkpoint_sha256
    from maphc2f_data.models.sqe_checkpoint import load_sqe
    from maphc2f_data.training.bisqad import score_rows

    sqe = load_sqe(args.sqe, args.backbone_weights, map_location=args.device)
    categories = [c for c in args.categories.split(",") if c] if args.categories else None
    summary = score_rows(args.data, sqe, categories, batch_size=args.batch_size, device=args.device,
                         record={"sqe": str(args.sqe), "sqe_sha256": checkpoint_sha256(args.sqe)})
    for category, info in summary.items():
        print(f"{category}: quality written for {info['scored']} of {info['rows']} rows ({info['shards']} shards)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.score``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("score", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
