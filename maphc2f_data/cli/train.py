"""``maphc2f train <recipe>``: train a model on a built dataset.

Each recipe is one entry of :data:`RECIPES`: ``(help, add_arguments, run)``.
``npcf`` and ``npcfpp`` train the refiners (paper Algorithms 6-7), ``bisqad``
the detector with its quality estimator (Algorithms 9-10; options and run in
:mod:`maphc2f_data.cli.train_bisqad`).
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict, List, NamedTuple

HELP = "Train a model on a built dataset: npcf (coarse refiner), npcfpp (fine refiner) or bisqad (detector)."


class Recipe(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _categories(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated category names")
    return names


def _refiner_arguments(parser: argparse.ArgumentParser, recipe: str) -> None:
    from maphc2f_data.models.npcf.torch_model import NPCF_TRAINING
    from maphc2f_data.models.npcfpp.torch_model import NPCFPP_TRAINING
    from maphc2f_data.training.refinement import RECIPES as MODELS

    defaults = NPCF_TRAINING if recipe == "npcf" else NPCFPP_TRAINING
    parser.add_argument("--data", required=True, metavar="DIR", help="a raw build (maphc2f build) to train on")
    parser.add_argument("--out", required=True, metavar="CKPT",
                        help="checkpoint to write (.safetensors) after every epoch; rerunning the command resumes "
                             "from it (its optimizer state is kept next to it in CKPT.train-state.safetensors)")
    if recipe == "npcfpp":
        parser.add_argument("--npcf", required=True, metavar="CKPT",
                            help="the trained npcF checkpoint (frozen); its output is npcF++'s coarse input b1")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="total epochs (the paper's value; a resumed run continues up to it)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="batch size (paper)")
    parser.add_argument("--size", type=int, default=defaults.image_size,
                        help="training image side (paper); rows of another size are resized")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"{defaults.optimizer} learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help=f"{defaults.optimizer} weight decay")
    parser.add_argument("--device", default=None, help="torch device: cuda, cuda:N or cpu (None: CUDA when available)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast and channels-last on CUDA")
    parser.add_argument("--categories", type=_categories, default=None, metavar="A,B",
                        help="train on these categories only (None: all)")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and shuffle seed")
    parser.add_argument("--model", default=recipe, choices=MODELS[recipe],
                        help="registered model (the -tiny variant is for tests and smoke runs)")
    if recipe == "npcf":
        parser.add_argument("--perceptual-weights", default=None, metavar="PATH",
                            help="torchvision VGG16 weights file for the perceptual loss (paper eq. 20); "
                                 "None: the bundled ImageNet EfficientNet-Lite0")
    parser.add_argument("--lambda-seam", type=float, default=0.3,
                        help="weight of the boundary-band seam term (ours, not the paper's: its loss alone is "
                             "optimal at the raw paste); 0 trains the paper's loss")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def _run_refiner(recipe: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from maphc2f_data.training.refinement import RefineTrainArgs, train_refiner

        train_args = RefineTrainArgs(
            data=args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size, size=args.size,
            lr=args.lr, weight_decay=args.weight_decay, device=args.device, amp=args.amp,
            categories=tuple(args.categories) if args.categories else None, seed=args.seed, model=args.model,
            perceptual_weights=getattr(args, "perceptual_weights", None), npcf=getattr(args, "npcf", None),
            lambda_seam=args.lambda_seam,
            num_workers=args.num_workers,
        )
        result = train_refiner(recipe, train_args, progress=not args.no_progress)
        terms = ", ".join(f"{key} {value:.4g}" for key, value in result.losses.items())
        print(f"{recipe}: {result.out} at epoch {result.epoch}/{args.epochs}"
              f" (this run: epochs {result.start_epoch + 1}-{result.epoch})" * (result.epoch > result.start_epoch)
              + (f"; last epoch: {terms}" if terms else ""))
        return 0

    return run


#: Recipe name -> how to parse and run it.
RECIPES: Dict[str, Recipe] = {
    "npcf": Recipe("npcF, the coarse refiner (paper Alg. 6): normal image + raw anomaly + mask -> refined",
                   lambda parser: _refiner_arguments(parser, "npcf"), _run_refiner("npcf")),
    "npcfpp": Recipe("npcF++, the fine refiner (paper Alg. 7) on a frozen npcF's output",
                     lambda parser: _refiner_arguments(parser, "npcfpp"), _run_refiner("npcfpp")),
    "bisqad": Recipe("BiSQAD (paper Alg. 9-10): DRAEM-style detector, SQE, second-order data weights",
                     lambda parser: _bisqad().add_arguments(parser), lambda args: _bisqad().run(args)),
}


def _bisqad():
    from maphc2f_data.cli import train_bisqad

    return train_bisqad


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    for name, recipe in RECIPES.items():
        recipe_parser = sub.add_parser(name, help=recipe.help, description=recipe.help,
                                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        recipe.add_arguments(recipe_parser)
        recipe_parser.set_defaults(_recipe_run=recipe.run)


def run(args: argparse.Namespace) -> int:
    return args._recipe_run(args)
