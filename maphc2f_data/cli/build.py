"""``maphc2f-build`` / ``maphc2f build``: turn a source into a dataset folder.

Thin: parse the options into a :class:`~maphc2f_data.builder.plan.BuildConfig`,
call the builder, print the plan (``--dry-run``) or the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

HELP = "Build the MaPhC2F dataset (Parquet shards + card) from a source."


def _categories(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated category names")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the build options to ``parser``."""
    from maphc2f_data.dataset.config import DEFAULT_PNG_COMPRESSION
    from maphc2f_data.names import SAM_MODELS
    from maphc2f_data.sources import SOURCES

    parser.add_argument("--source", required=True, choices=sorted(SOURCES), default=argparse.SUPPRESS,
                        help="where the normal images come from: the built-in demo (no download), "
                             "MVTec AD, VisA (as downloaded with split_csv/1cls.csv, or prepared), BTAD, or a plain "
                             "image folder (one category per sub-folder); "
                             "one source per run (build several sources into one --out with one run each)")
    parser.add_argument("--root", default=None,
                        help="source dataset root folder (required for every source but demo)")
    parser.add_argument("--demo-train-count", type=int, default=None, metavar="N",
                        help="demo source only: normal training renders per category, 1-100 (default 8); "
                             "train render i is the same for every N")
    parser.add_argument("--out", default="maphc2f",
                        help="output dataset folder; the default lets load_dataset('maphc2f') work "
                             "from the current directory. An existing dataset there is resumed or updated")
    parser.add_argument("--categories", type=_categories, default=None, metavar="A,B",
                        help="comma-separated categories to (re)build (None: every category of the source); "
                             "other categories already in --out are kept untouched")
    parser.add_argument("--count", default="auto", metavar="paper|N",
                        help="'paper': the exact per-category counts of the paper's Tables 7-9 "
                             "(mvtec/visa/btad only; 115,987 images over the three); N: N samples per "
                             "source image and defect type; 'auto': paper for mvtec/visa/btad, 1 otherwise")
    parser.add_argument("--seed", type=int, default=0,
                        help="build seed; every sample's seed and id derive from it (same seed and "
                             "options give byte-identical shards)")
    parser.add_argument("--size", type=int, default=512,
                        help="side of the output images in pixels; every image is resized to a "
                             "size x size square (area interpolation when shrinking, cubic when enlarging)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan as JSON (per category: source, source_images and samples per "
                             "defect type) and stop; nothing is synthesised or written")
    parser.add_argument("--sam-checkpoint", default=None, metavar="PATH",
                        help="Segment Anything checkpoint for object foregrounds; without it a classical "
                             "(colour/threshold) extractor is used. Textures always use the whole image")
    parser.add_argument("--sam-model", default="vit_h", choices=SAM_MODELS,
                        help="SAM variant of --sam-checkpoint")
    parser.add_argument("--png-compression", type=int, default=DEFAULT_PNG_COMPRESSION, metavar="LEVEL",
                        help="PNG zlib level 0-9 for images and masks (higher: slightly smaller, much slower)")
    parser.add_argument("--device", default=None, metavar="DEVICE",
                        help="torch device for SAM: cuda, cuda:1 or cpu (None: CUDA when the machine or "
                             "cluster has a GPU, else the CPU)")
    parser.add_argument("--npcf", default=None, metavar="CKPT",
                        help="npcF checkpoint (maphc2f train npcf): refine every sample (stage npcf); the "
                             "refiner runs in each shard worker, loaded once per process")
    parser.add_argument("--npcfpp", default=None, metavar="CKPT",
                        help="npcF++ checkpoint (maphc2f train npcfpp), applied after --npcf (stage npcf++)")
    parser.add_argument("--compile", action="store_true",
                        help="with --npcf: torch.compile the refinement networks (about 2x on a GPU after a first "
                             "batch that compiles, tens of seconds per process); recorded in the refine "
                             "fingerprint, so a resumed build never mixes compiled and eager rows")
    add_runner_arguments(parser)
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                        help="after a successful build, upload --out to this Hugging Face dataset repo "
                             "(created if missing; needs a token); the .cache folder is never uploaded")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2, after build_report.json is written) when a source image was "
                             "unreadable or a sample failed; without it they are skipped with a warning")
    parser.add_argument("--no-progress", action="store_true",
                        help="do not show the progress bar")
    # Testing aid: small shards without building thousands of samples.
    parser.add_argument("--rows-per-shard", type=int, default=None, help=argparse.SUPPRESS)


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose where shards are made (the runner)."""
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="shard workers (synthesis, PNG encoding, Parquet writing) on Ray; None: one per "
                             "CPU of the local machine or the --ray-address cluster")
    parser.add_argument("--foreground-actors", type=int, default=None, metavar="N",
                        help="SAM actors (with --sam-checkpoint), each loading the model once; None: one per "
                             "GPU of the machine or cluster, or one on the CPU without GPUs")
    parser.add_argument("--refine-actors", type=int, default=None, metavar="N",
                        help="npcF/npcF++ actors (with --npcf), each loading the checkpoints once; None: one per "
                             "GPU of the machine or cluster (num_gpus=1), or, without GPUs, none: each shard "
                             "worker then refines on its own CPU")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="join this Ray cluster instead of starting an embedded local Ray: HOST:PORT of "
                             "`ray start --head` or 'auto' (default: the RAY_ADDRESS environment variable). "
                             "Every node needs this package and --out/--root on a shared file system at the "
                             "same paths")
    parser.add_argument("--serial", action="store_true",
                        help="debugging: make every shard in this process, one after the other, without Ray "
                             "(same bytes as a Ray build)")


def runner_from_args(args: argparse.Namespace):
    """The runner of parsed ``--workers``/``--foreground-actors``/``--ray-address``/``--serial``."""
    from maphc2f_data.builder.runner import make_runner

    return make_runner(args.workers, args.ray_address, serial=args.serial, foreground_actors=args.foreground_actors,
                       refine_actors=args.refine_actors)


def config_from_args(args: argparse.Namespace):
    """The :class:`BuildConfig` of parsed arguments."""
    from maphc2f_data.builder.plan import BuildConfig, parse_count

    return BuildConfig(
        source=args.source,
        root=args.root,
        out=args.out,
        categories=tuple(args.categories) if args.categories else None,
        count=parse_count(args.count),
        seed=args.seed,
        size=args.size,
        png_compression=args.png_compression,
        sam_checkpoint=args.sam_checkpoint,
        sam_model=args.sam_model,
        device=args.device,
        rows_per_shard=args.rows_per_shard,
        strict=args.strict,
        npcf=args.npcf,
        npcfpp=args.npcfpp,
        compile=args.compile,
        demo_train_count=args.demo_train_count,
    )


def print_plan(plan) -> None:
    """``--dry-run``: the plan's warnings on stderr, its summary as JSON on stdout."""
    for message in plan.warnings:
        print(f"maphc2f-build: warning: {message}", file=sys.stderr)
    print(json.dumps(plan.summary(), indent=2))


def run(args: argparse.Namespace) -> int:
    """Run the build (or print the plan); returns the exit code."""
    from maphc2f_data.builder.driver import build, make_plan, push_to_hub

    config = config_from_args(args)
    if args.dry_run:
        print_plan(make_plan(config))
        return 0
    runner = runner_from_args(args)
    command = ["maphc2f-build", *recorded_argv(args)]
    try:
        report = build(config, runner=runner, command=command, progress=not args.no_progress)
    finally:
        runner.close()
    print(report.format_text())
    if args.push_to_hub:
        url = push_to_hub(config.out, args.push_to_hub)
        print(f"Pushed to {url}")
    return 0


def recorded_argv(args: argparse.Namespace) -> List[str]:
    """The options of this run as typed, without the subcommand (for the manifest);
    ``cli.main`` stores them in ``args._argv``."""
    return list(getattr(args, "_argv", ()))


def _get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maphc2f-build", description=HELP,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``maphc2f-build``; returns the exit code."""
    from maphc2f_data.cli.main import run_command

    args = _get_parser().parse_args(argv)
    args._argv = list(argv) if argv is not None else sys.argv[1:]
    return run_command(run, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
