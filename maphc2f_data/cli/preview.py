"""``maphc2f preview``: write a contact sheet of synthetic anomalies.

Two modes (exactly one):

* ``maphc2f preview --source demo --out sheet.png`` synthesises one crack,
  corrosion and deformation on the first training image of every category;
* ``maphc2f preview DIR --out sheet.png`` shows the first row of each kind
  per category of a dataset built into ``DIR``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

from maphc2f_data.errors import UserError
from maphc2f_data.synthesis import DEFECT_TYPES

HELP = (f"Write a contact sheet (category x original/{'/'.join(DEFECT_TYPES)}) of a source or a built "
        "dataset.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", metavar="DIR", help="a dataset built by maphc2f-build (instead of --source)")
    parser.add_argument("--source", help="synthesise on this source's images: demo, mvtec, visa, btad, folder")
    parser.add_argument("--root", help="dataset root of --source (not needed for demo)")
    parser.add_argument("--out", required=True, help="PNG file to write (parent folders are created)")
    parser.add_argument("--category", action="extend", nargs="+", metavar="C", help="only these categories (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed")
    parser.add_argument("--size", type=int, default=256, help="working image size and tile size in pixels")
    parser.add_argument("--sam-checkpoint", help="SAM weights for the foreground (default: classical extractor)")
    parser.add_argument("--sam-model", default="vit_h", help="SAM variant of --sam-checkpoint")
    parser.add_argument("--npcf", default=None, metavar="CKPT",
                        help="with --source: add a row per category refined by this npcF checkpoint")
    parser.add_argument("--npcfpp", default=None, metavar="CKPT",
                        help="with --source and --npcf: add a row refined by npcF then this npcF++ checkpoint")


def _progress(categories):
    from tqdm import tqdm

    return tqdm(categories, desc="preview", unit="category")


def _write_png(path: Path, sheet: np.ndarray) -> None:
    """Write an RGB sheet as PNG atomically (temporary file + rename)."""
    import cv2

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB
        raise RuntimeError("PNG encoding of the sheet failed")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_bytes(encoded.tobytes())
        os.replace(temporary, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _source_sheet(args: argparse.Namespace) -> np.ndarray:
    from maphc2f_data.foreground import make_extractor
    from maphc2f_data.preview import preview_source
    from maphc2f_data.sources import get_source

    if args.source == "demo":
        from maphc2f_data.sources.demo import DemoSource

        if args.root is not None:
            raise UserError("--root does not apply to the demo source (it needs no files)")
        source = DemoSource()
    else:
        source = get_source(args.source, args.root)
    with warnings.catch_warnings(record=True) as caught:
        # The fallback-to-classical warning is worth one plain line, not a traceback-style warning.
        warnings.simplefilter("always", UserWarning)
        extractor = make_extractor(sam_checkpoint=args.sam_checkpoint, sam_model=args.sam_model)
    for warning in caught:
        print(f"maphc2f: note: {' '.join(str(warning.message).split())}")
    refiners = None
    if args.npcf or args.npcfpp:
        from maphc2f_data.refine import CheckpointRefiner, IdentityRefiner
        from maphc2f_data.refine.checkpoints import check_checkpoints

        check_checkpoints(args.npcf, args.npcfpp)
        refiners = [IdentityRefiner(), CheckpointRefiner(args.npcf)]
        if args.npcfpp:
            refiners.append(CheckpointRefiner(args.npcf, args.npcfpp))
    return preview_source(source, args.category, seed=args.seed, size=args.size, extractor=extractor,
                          progress=_progress, refiners=refiners)


def run(args: argparse.Namespace) -> int:
    if (args.dataset is None) == (args.source is None):
        raise UserError("give exactly one of DIR (a built dataset) or --source NAME")
    if args.size < 16:
        raise UserError(f"--size must be at least 16, got {args.size}")
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got {args.out}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    if args.dataset is not None:
        for option in ("root", "sam_checkpoint", "npcf", "npcfpp"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option.replace('_', '-')} applies to --source, not to a built dataset")
        from maphc2f_data.preview import preview_dataset

        sheet = preview_dataset(Path(args.dataset).expanduser(), args.category, tile=args.size, progress=_progress)
    else:
        sheet = _source_sheet(args)
    _write_png(out, sheet)
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]} px)")
    return 0
