"""``maphc2f refine``: refine an existing raw build into a new dataset folder (npcF, then npcF++)."""

from __future__ import annotations

import argparse

HELP = "Refine a raw build with trained npcF (and npcF++) checkpoints into a new dataset folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from maphc2f_data.refine.checkpoints import DEFAULT_DILATE_PX

    parser.add_argument("--data", required=True, metavar="DIR", help="a raw build (maphc2f build)")
    parser.add_argument("--npcf", required=True, metavar="CKPT", help="npcF checkpoint (maphc2f train npcf)")
    parser.add_argument("--npcfpp", default=None, metavar="CKPT",
                        help="npcF++ checkpoint (maphc2f train npcfpp); None: stop after npcF (stage npcf)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="new dataset folder (same shards layout and sample ids, refined images); an earlier "
                             "refine output there is resumed")
    parser.add_argument("--device", default=None, help="torch device (None: CUDA when available)")
    parser.add_argument("--no-amp", action="store_true", help="float32 on CUDA too (default: bf16 autocast)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="samples per forward pass (default: 16 on CUDA, 8 on the CPU)")
    parser.add_argument("--dilate-px", type=int, default=DEFAULT_DILATE_PX,
                        help="pixels around the mask the refined image may differ from the normal image")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks: about 2x faster on a GPU after a first batch that "
                             "compiles (tens of seconds); recorded in the refiner fingerprint")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def run(args: argparse.Namespace) -> int:
    from maphc2f_data.builder.refined import refine_dataset
    from maphc2f_data.refine.checkpoints import CheckpointRefiner

    refiner = CheckpointRefiner(args.npcf, args.npcfpp, device=args.device, amp=False if args.no_amp else None,
                                dilate_px=args.dilate_px, batch_size=args.batch_size, compile=args.compile)
    manifest = refine_dataset(args.data, args.out, refiner, command=["maphc2f", "refine", *getattr(args, "_argv", ())],
                              progress=not args.no_progress)
    print(f"refined {manifest.get('total_rows', 0)} rows to stage {refiner.stage} into {args.out}")
    return 0
