"""``maphc2f train bisqad``: train BiSQAD (DRAEM + SQE, bi-level weights) on one category.

A recipe of :mod:`maphc2f_data.cli.train` (this module holds its options and run).
Writes ``RUN/model.safetensors`` (the epoch chosen on the validation split),
``RUN/sqe.safetensors``, ``RUN/train_log.jsonl``, ``RUN/state.safetensors``
(resume) and, when the category's source has a test split,
``RUN/metrics.json`` (evaluated once at the end, reported only); then fills
the category's ``quality`` column in the dataset with the SQE's scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

HELP = "Train BiSQAD (DRAEM base model, SQE, second-order data weights) on one category of a built dataset."

_EPILOG = """paper defaults (Sec. 4.1, Table 6): batch size 32, 512x512 images, SQE = frozen WideResNet-50-2 +
linear head trained with AdamW at 1e-4 for 2-10 epochs per outer iteration, outer step every epoch,
weights w = lambda_sqe*q + lambda_bi*d (eq. 15). The paper gives no epoch count, AUC temperature or
lookahead rate for BiSQAD; the defaults here are ours. '--lambda-sqe 0 --outer-every 0' is Table 6's
'No SQE / default weight' row. Needs a validation split: maphc2f splits DIR --val-fraction 0.1 --seed 0."""


def _default_device() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``train bisqad`` to ``parser``."""
    parser.epilog = _EPILOG
    parser.add_argument("--data", required=True, help="built dataset folder (with a validation split)")
    parser.add_argument("--category", required=True, help="category to train on")
    parser.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (paper: not given)")
    parser.add_argument("--batch-size", type=int, default=32, help="half synthetic rows, half normal images (paper: 32)")
    parser.add_argument("--size", type=int, default=512, help="image side; must match the build (paper: 512)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam rate of the base model (DRAEM's)")
    parser.add_argument("--lr-drops", default="0.8,0.9",
                        help="fractions of --epochs after which the rate is multiplied by 0.2 (DRAEM's schedule; "
                             "'' for a constant rate)")
    parser.add_argument("--lambda-sqe", type=float, default=1.0, help="eq. 15 weight of the SQE score q")
    parser.add_argument("--lambda-bi", type=float, default=1.0, help="eq. 15 weight of the learned data weight d")
    parser.add_argument("--outer-every", type=int, default=1,
                        help="second-order outer step after every k-th epoch (paper: every epoch; 0: never)")
    parser.add_argument("--auc-alpha", type=float, default=0.05, help="temperature of the AUC surrogate")
    parser.add_argument("--meta-inner-lr", type=float, default=1e-3, help="lookahead SGD rate of the outer step")
    parser.add_argument("--outer-lr", type=float, default=1e-4, help="eta_outer of eq. 28 (paper: 1e-4)")
    parser.add_argument("--sqe-lr", type=float, default=1e-4, help="AdamW rate of the SQE head (paper: 1e-4)")
    parser.add_argument("--sqe-epochs", type=int, default=2, help="SQE regression passes per epoch (paper: 2-10)")
    parser.add_argument("--backbone", choices=["efficientnet_lite0", "wide_resnet50_2"], default="efficientnet_lite0",
                        help="SQE's frozen backbone (paper: wide_resnet50_2, needs --backbone-weights)")
    parser.add_argument("--backbone-weights", default=None, help="local torchvision weights file for the backbone")
    parser.add_argument("--model", choices=["draem", "draem-tiny"], default="draem", help="base detector")
    parser.add_argument("--width", type=int, default=None,
                        help="override both DRAEM widths (reconstructive and discriminative base channels)")
    parser.add_argument("--head-prior", type=float, default=0.0,
                        help="anomaly probability the untrained segmentation head starts at (focal-loss prior "
                             "initialisation; 0: DRAEM's default; the transfer benchmark uses 0.01)")
    parser.add_argument("--val-max", type=int, default=32, help="validation anomalies (and normals) used at most")
    parser.add_argument("--device", default=_default_device(), help="cuda or cpu")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast in the inner loop")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and shuffles")
    parser.add_argument("--root", default=None,
                        help="source root for the test evaluation (default: the one the manifest records)")
    parser.add_argument("--no-eval", action="store_true", help="skip the final test-split evaluation")
    parser.add_argument("--no-quality", action="store_true", help="do not write the quality column back")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train, evaluate on the source's test split if it has one, print a summary."""
    from maphc2f_data.errors import UserError
    from maphc2f_data.training.bisqad import BisqadConfig, train_bisqad

    overrides = {} if args.width is None else {"recon_width": args.width, "disc_width": args.width}
    if args.head_prior:
        if not 0.0 < args.head_prior < 1.0:
            raise UserError(f"--head-prior must be in [0, 1); got {args.head_prior}")
        overrides["head_prior"] = args.head_prior
    try:
        lr_drops = tuple(float(f) for f in args.lr_drops.split(",") if f.strip())
    except ValueError:
        raise UserError(f"--lr-drops must be comma-separated fractions such as 0.8,0.9; got {args.lr_drops!r}") from None
    config = BisqadConfig(
        category=args.category, epochs=args.epochs, batch_size=args.batch_size, size=args.size, lr=args.lr,
        lr_drops=lr_drops,
        lambda_sqe=args.lambda_sqe, lambda_bi=args.lambda_bi, outer_every=args.outer_every,
        auc_alpha=args.auc_alpha, meta_inner_lr=args.meta_inner_lr, outer_lr=args.outer_lr, sqe_lr=args.sqe_lr,
        sqe_epochs=args.sqe_epochs, backbone=args.backbone, backbone_weights=args.backbone_weights,
        model=args.model, model_overrides=overrides, val_max=args.val_max, seed=args.seed, device=args.device,
        amp=args.amp, progress=not args.no_progress, write_quality=not args.no_quality,
    )
    result = train_bisqad(args.data, args.out, config)
    print(f"model: {result.model_path} (epoch {result.best_epoch + 1}, chosen on validation: "
          + ", ".join(f"{k} {v:.3f}" for k, v in result.validation.items()) + ")")
    print(f"sqe: {result.sqe_path}")
    if result.quality:
        print(f"quality: {result.quality['scored']} rows of {args.category} scored in {args.data}")
    if not args.no_eval:
        _evaluate_on_test(args, result.model_path, Path(args.out))
    return 0


def _evaluate_on_test(args: argparse.Namespace, model_path: Path, run_dir: Path) -> None:
    from maphc2f_data.errors import UserError
    from maphc2f_data.evaluation.run import evaluate_checkpoint, format_table, write_metrics
    from maphc2f_data.sampling import NormalImages

    name, root = NormalImages(args.data).source_of(args.category)
    root = args.root or root
    try:
        results = evaluate_checkpoint(name, root, [args.category], model_path, device=args.device)
    except UserError as exc:
        print(f"no test evaluation: {exc}")
        return
    table = write_metrics(results, run_dir / "metrics.json", run_dir / "metrics.csv")
    print(f"test split of {name} (reported only, never used for selection): {run_dir / 'metrics.json'}")
    print(format_table(table))


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.train_bisqad``)."""
    from maphc2f_data.cli.main import main as maphc2f

    return maphc2f(["train", "bisqad", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
