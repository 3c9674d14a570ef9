"""``maphc2f export DIR --format mvtec --out DIR2``: the dataset in another folder layout.

``mvtec`` writes ``<category>/test/<defect_type>/<id>.png`` and
``<category>/ground_truth/<defect_type>/<id>_mask.png``, which anomalib's
Folder/MVTec datamodules and most research code read unchanged.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "Export a built dataset in the MVTec AD folder layout."

FORMATS = ("mvtec",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the export options to ``parser``."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding manifest.json)")
    parser.add_argument("--format", choices=FORMATS, default="mvtec",
                        help="folder layout to write: mvtec = <category>/test/<defect>/*.png "
                             "+ <category>/ground_truth/<defect>/*_mask.png")
    parser.add_argument("--out", required=True, metavar="DIR2",
                        help="export folder (created if needed; must not be inside DIR)")


def run(args: argparse.Namespace) -> int:
    """Export ``args.dir`` to ``args.out`` and print what was written."""
    from maphc2f_data.dataset.export import export_mvtec

    summary = export_mvtec(args.dir, args.out)
    for name, counts in summary["categories"].items():
        detail = ", ".join(f"{defect} {n}" for defect, n in counts.items())
        print(f"{name}: {detail}")
    print(f"wrote {summary['images']} images and masks to {summary['dest']}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.export``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("export", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
