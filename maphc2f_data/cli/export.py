"""``maphc2f export DIR --format {mvtec,coco,yolo-seg} --out DIR2``: the dataset in another tool's layout.

``mvtec`` writes MVTec AD category folders (``train/good``, ``test/good``,
``test/<defect>``, ``ground_truth/<defect>``) for anomalib's ``MVTecAD`` and
``Folder`` datamodules; ``coco`` COCO instance-segmentation JSON per split;
``yolo-seg`` the Ultralytics segmentation layout. See
:mod:`maphc2f_data.exporters`.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "Export a built dataset for anomalib (MVTec AD layout), COCO or YOLO segmentation tools."

FORMATS = ("mvtec", "coco", "yolo-seg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the export options to ``parser``."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding manifest.json)")
    parser.add_argument("--format", choices=FORMATS, default="mvtec",
                        help="mvtec = <category>/{train/good,test/good,test/<defect>,ground_truth/<defect>} "
                             "(anomalib MVTecAD/Folder); coco = images/<split>/ + annotations/instances_<split>.json; "
                             "yolo-seg = images/<split>/, labels/<split>/*.txt, data.yaml (default: mvtec)")
    parser.add_argument("--out", required=True, metavar="DIR2",
                        help="export folder: new, empty or an earlier export; not inside DIR")
    parser.add_argument("--categories", metavar="A,B", default=None,
                        help="export only these categories (default: all)")
    parser.add_argument("--link", action="store_true",
                        help="mvtec: hard-link (else symlink) normal images that are already at the dataset's "
                             "size instead of re-encoding them; every other file is written")


def run(args: argparse.Namespace) -> int:
    """Export ``args.dir`` to ``args.out`` and print what was written."""
    from maphc2f_data.dataset.export import parse_categories
    from maphc2f_data.exporters import EXPORTERS

    summary = EXPORTERS[args.format](args.dir, args.out, categories=parse_categories(args.categories),
                                     link=args.link)
    for name, counts in (summary.get("categories") or {}).items():
        print(f"{name}: " + ", ".join(f"{key} {n}" for key, n in counts.items()))
    for split, n in (summary.get("splits") or {}).items():
        extra = summary.get("annotations") or summary.get("polygons") or {}
        what = "annotations" if "annotations" in summary else "polygons"
        print(f"{split}: {n} images, {extra.get(split, 0)} {what}")
    if args.format == "mvtec":
        linked = {k: v for k, v in (summary.get("files") or {}).items() if k != "written" and v}
        note = f" ({', '.join(f'{v} {k}s' for k, v in linked.items())})" if linked else ""
        print(f"wrote {summary['images']} images and masks and {summary['normals']} normal images{note} "
              f"to {summary['dest']}")
    else:
        print(f"wrote {summary['images']} images with {args.format} labels to {summary['dest']}")
    if summary.get("stale_removed"):
        print(f"removed {summary['stale_removed']} files an earlier export left there")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.export``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("export", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
