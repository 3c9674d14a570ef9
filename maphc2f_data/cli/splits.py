"""``maphc2f splits DIR --val-fraction F --seed S``: deterministic validation splits.

Rewrites each category's shards as ``train-*``/``validation-*`` (a row is in
validation iff a SHA-256 of seed and sample_id falls below F), updates the
manifest and the card, and prints the rows per split and category.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "(Re)make per-category train/validation splits by a hash of sample_id."


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the splits options to ``parser``."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding manifest.json)")
    parser.add_argument("--val-fraction", type=_fraction, default=0.1,
                        help="expected fraction of each category's rows in the validation split; "
                             "0 puts every row back into train")
    parser.add_argument("--seed", type=int, default=0,
                        help="salt of the sample_id hash; another seed gives another split")


def run(args: argparse.Namespace) -> int:
    """Split ``args.dir`` and print the rows per split."""
    from maphc2f_data.dataset.splits import make_splits

    summary = make_splits(args.dir, args.val_fraction, args.seed)
    width = max([len("category")] + [len(name) for name in summary["categories"]])
    print(f"{'category':<{width}}  {'train':>8}  {'validation':>10}")
    for name, counts in summary["categories"].items():
        print(f"{name:<{width}}  {counts['train']:>8}  {counts['validation']:>10}")
    print(f"{'total':<{width}}  {summary['train']:>8}  {summary['validation']:>10}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.splits``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("splits", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
