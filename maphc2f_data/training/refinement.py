"""Training the refiners on a raw build: npcF (Algorithm 6) and npcF++ (Algorithm 7).

Data: every row of a *raw* build (``stage = "raw"``) streamed by
:class:`~maphc2f_data.training.data.ShardRows` with its normal image, so a
batch holds ``x`` (the normal image), the stage-A image (the row's raw
anomaly) and the mask. npcF learns ``u = npcF(x, stageA, M)`` under
:class:`~maphc2f_data.models.npcf.loss.NpcfLoss`; npcF++ learns
``u = npcF++(x, b1, M)`` under :class:`~maphc2f_data.models.npcfpp.loss.NpcfppLoss`,
where ``b1`` is the output of a *frozen* npcF checkpoint on the same batch.

Seeded: the model is initialised with ``create_model(seed=seed)`` and the
shuffle of epoch ``e`` is ``ShardRows(seed=seed).set_epoch(e)``; no global
RNG is read. Resumable: after every epoch ``<out>`` (the model checkpoint,
with the model config, the training arguments and the epoch in its metadata)
and ``<out>.train-state.safetensors`` (AdamW state and epoch; tensors plus
JSON metadata, no pickle) are written atomically, so rerunning the same
command continues after the last finished epoch; ``epochs`` is the total.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.training.data import ShardRows

__all__ = ["RECIPES", "RefineTrainArgs", "TrainResult", "state_path", "train_npcf", "train_npcfpp", "train_refiner"]

#: Registered model names each recipe trains.
RECIPES: Dict[str, Tuple[str, ...]] = {"npcf": ("npcf", "npcf-tiny"), "npcfpp": ("npcfpp", "npcfpp-tiny")}

STATE_SUFFIX = ".train-state.safetensors"
_STATE_FORMAT = "maphc2f-train-state/1"


@dataclass(frozen=True)
class RefineTrainArgs:
    """Arguments of one refiner training run (recorded in the checkpoint's metadata).

    data : a raw build (``maphc2f build``).
    out : checkpoint to write (and resume from).
    epochs : total epochs (paper: 200 npcF, 50 npcF++).
    batch_size : paper 32.
    size : training image side (paper 512); rows of another size are resized.
    lr, weight_decay : AdamW.
    device : torch device (default CUDA when available).
    amp : bf16 autocast on CUDA (ignored on the CPU, which trains float32).
    categories : only these categories of ``data``.
    seed : model init and shuffles.
    model : registered model name (``npcf``/``npcf-tiny``, ``npcfpp``/``npcfpp-tiny``).
    perceptual_weights : npcF only: a torchvision VGG16 weights file for the
        perceptual loss (paper eq. 20); default the offline EfficientNet-Lite0.
    npcf : npcF++ only: the frozen npcF checkpoint giving ``b1``.
    lambda_seam : weight of the boundary-band seam term (ours, not the
        paper's; 0 trains eq. 21 / eqs. 11-12 alone), see
        :class:`~maphc2f_data.models.npcf.loss.NpcfLossConfig`.
    num_workers : DataLoader worker processes.
    """

    data: str
    out: str
    epochs: int
    batch_size: int = 32
    size: int = 512
    lr: float = 1e-4
    weight_decay: float = 1e-2
    device: Optional[str] = None
    amp: bool = False
    categories: Optional[Tuple[str, ...]] = None
    seed: int = 0
    model: str = "npcf"
    perceptual_weights: Optional[str] = None
    npcf: Optional[str] = None
    lambda_seam: float = 0.3
    num_workers: int = 0

    def record(self) -> Dict[str, Any]:
        """JSON-ready copy with absolute paths."""
        record = dataclasses.asdict(self)
        for key in ("data", "out", "perceptual_weights", "npcf"):
            if record[key]:
                record[key] = str(Path(record[key]).expanduser().resolve())
        record["categories"] = list(self.categories) if self.categories else None
        return record


@dataclass
class TrainResult:
    """What a run did: ``start_epoch`` (epochs already done when it began), ``epoch`` (done now),
    ``losses`` (mean of each loss term over the last epoch run; empty when nothing ran)."""

    out: Path
    recipe: str
    start_epoch: int
    epoch: int
    losses: Dict[str, float]
    seconds_per_step: Optional[float] = None


def state_path(out: Path) -> Path:
    """The optimizer-state sidecar of checkpoint ``out``."""
    return out.with_name(out.name + STATE_SUFFIX)


def resolve_device(device: Optional[str]) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device must be cpu, cuda or cuda:N, got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    return resolved


# -- optimizer state as safetensors ---------------------------------------


def save_train_state(path: Path, optimizer: torch.optim.Optimizer, epoch: int, checkpoint_epoch: int) -> None:
    """AdamW's state dict as flat tensors ``state.<param>.<key>`` plus JSON param groups; atomic."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors: Dict[str, torch.Tensor] = {}
    scalars: Dict[str, Any] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars[f"{index}.{key}"] = value
    header = {"format": _STATE_FORMAT, "epoch": str(int(epoch)), "checkpoint_epoch": str(int(checkpoint_epoch)),
              "param_groups": json.dumps(state["param_groups"]), "scalars": json.dumps(scalars)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    tmp.replace(path)


def load_train_state(path: Path, optimizer: torch.optim.Optimizer) -> int:
    """Restore ``optimizer`` from :func:`save_train_state`'s file; returns its epoch."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        if header.get("format") != _STATE_FORMAT:
            raise ValueError("no train-state format tag")
        groups = json.loads(header["param_groups"])
        scalars = json.loads(header.get("scalars", "{}"))
        epoch = int(header["epoch"])
    except Exception as exc:
        raise CheckpointError(f"unreadable training state {path} ({type(exc).__name__}: {exc}); "
                              "remove it to restart the optimizer") from None
    state: Dict[int, Dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in scalars.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"training state {path} does not fit the model ({exc})") from None
    return epoch


# -- the loop -------------------------------------------------------------


def _batches(args: RefineTrainArgs, epoch: int, device: torch.device):
    rows = ShardRows(args.data, categories=args.categories, with_normal=True, seed=args.seed)
    rows.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(rows, batch_size=args.batch_size, num_workers=args.num_workers,
                                         drop_last=False)
    for batch in loader:
        x, raw, mask = batch["normal"], batch["image"], batch["mask"]
        if x.shape[-1] != args.size or x.shape[-2] != args.size:
            x = F.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
            raw = F.interpolate(raw, size=(args.size, args.size), mode="bilinear", align_corners=False)
            mask = (F.interpolate(mask, size=(args.size, args.size), mode="nearest") > 0.5).float()
        non_blocking = device.type == "cuda"
        x, raw, mask = (t.to(device, non_blocking=non_blocking) for t in (x, raw, mask))
        if device.type == "cuda" and args.amp:
            x, raw, mask = (t.contiguous(memory_format=torch.channels_last) for t in (x, raw, mask))
        yield x, raw, mask


def _check_args(recipe: str, args: RefineTrainArgs) -> None:
    if recipe not in RECIPES:
        raise UserError(f"unknown training recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if args.model not in RECIPES[recipe]:
        raise UserError(f"--model {args.model!r} is not an {recipe} model; choose from {', '.join(RECIPES[recipe])}")
    for name in ("epochs", "batch_size", "size"):
        if int(getattr(args, name)) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, got {args.lr}")
    if recipe == "npcfpp" and not args.npcf:
        raise UserError("npcF++ training needs --npcf (the frozen npcF checkpoint that gives b1)")
    if args.perceptual_weights and recipe != "npcf":
        raise UserError("--perceptual-weights applies to npcF training only")
    if args.lambda_seam < 0:
        raise UserError(f"--lambda-seam must be >= 0, got {args.lambda_seam}")


def _resume(out: Path, recipe: str, args: RefineTrainArgs, device: torch.device, log
            ) -> Tuple[Optional[nn.Module], int, Optional[Path]]:
    """(model, epochs done, state file) of an earlier run of this command, or (None, 0, None)."""
    from maphc2f_data.models.checkpoint import load_checkpoint

    if not out.exists():
        return None, 0, None
    state = state_path(out)
    if not state.is_file():
        raise UserError(f"{out} exists but is not a resumable training run (no {state.name} next to it); "
                        "remove it or choose another --out")
    model, info = load_checkpoint(out, map_location=device)
    training = info.metadata.get("training") or {}
    if training.get("recipe") != recipe or info.model_name != args.model:
        raise UserError(f"{out} is a {training.get('recipe')} run of model {info.model_name!r}, not {recipe} "
                        f"of {args.model!r}; choose another --out")
    recorded_npcf = training.get("npcf_sha256")
    if recipe == "npcfpp" and recorded_npcf is not None:
        from maphc2f_data.refine.checkpoints import file_sha256

        if file_sha256(args.npcf, "npcF checkpoint") != recorded_npcf:
            raise UserError(f"{out} was trained on another npcF checkpoint than {args.npcf}; choose another --out")
    model.train()
    return model, int(training.get("epoch", 0)), state


def _loss(recipe: str, args: RefineTrainArgs, device: torch.device) -> nn.Module:
    if recipe == "npcf":
        from maphc2f_data.models.npcf.loss import NpcfLoss, NpcfLossConfig

        backbone: Any = "default"
        if args.perceptual_weights:
            from maphc2f_data.models.backbones import vgg16_features

            backbone = vgg16_features(Path(args.perceptual_weights).expanduser())
        loss = NpcfLoss(NpcfLossConfig(lambda_seam=args.lambda_seam), backbone=backbone)
        if loss.backbone is not None:
            loss.backbone.to(device)
        return loss
    from maphc2f_data.models.npcfpp.loss import NpcfppLoss, NpcfppLossConfig

    return NpcfppLoss(NpcfppLossConfig(lambda_seam=args.lambda_seam))


def _progress(total: Optional[int], desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, disable=not enabled, file=sys.stderr,
                leave=False)


def train_refiner(recipe: str, args: RefineTrainArgs, *, progress: bool = True,
                  log: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Train (or resume training) npcF (``recipe="npcf"``) or npcF++ (``"npcfpp"``) to ``args.epochs`` epochs.

    Returns
    -------
    TrainResult

    Raises
    ------
    UserError
        Bad arguments, a dataset that cannot be read, a checkpoint that does
        not fit (:class:`~maphc2f_data.errors.CheckpointError`).
    """
    import math
    import time

    from maphc2f_data.models.checkpoint import load_checkpoint, save_checkpoint
    from maphc2f_data.models.factory import create_model

    log = log or (lambda message: print(f"maphc2f train: {message}", file=sys.stderr))
    _check_args(recipe, args)
    device = resolve_device(args.device)
    amp = bool(args.amp) and device.type == "cuda"
    out = Path(args.out).expanduser().resolve()
    rows = ShardRows(args.data, categories=args.categories, with_normal=False)  # checks the dataset early
    steps_per_epoch = math.ceil(len(rows) / args.batch_size)

    frozen = None
    npcf_sha = None
    if recipe == "npcfpp":
        from maphc2f_data.refine.checkpoints import file_sha256

        frozen, _ = load_checkpoint(Path(args.npcf).expanduser(), expected_name="npcf", map_location=device)
        frozen.requires_grad_(False)
        npcf_sha = file_sha256(args.npcf, "npcF checkpoint")

    model, done, state = _resume(out, recipe, args, device, log)
    if model is None:
        model = create_model(args.model, seed=args.seed).to(device)
        model.train()
    if amp:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    if state is not None:
        state_epoch = load_train_state(state, optimizer)
        if state_epoch != done:
            log(f"optimizer state of epoch {state_epoch} does not match the checkpoint's epoch {done} "
                "(interrupted while saving); continuing with a fresh optimizer")
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        for group in optimizer.param_groups:  # this run's settings win
            group["lr"], group["weight_decay"] = args.lr, args.weight_decay
    if done >= args.epochs:
        log(f"{out} already has {done} of {args.epochs} epochs; nothing to do")
        return TrainResult(out, recipe, done, done, {})
    if done:
        log(f"resuming {out} after epoch {done} of {args.epochs}")
    criterion = _loss(recipe, args, device)
    autocast = (lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    losses: Dict[str, float] = {}
    step_seconds: List[float] = []
    for epoch in range(done, args.epochs):
        sums: Dict[str, float] = {}
        count = 0
        bar = _progress(steps_per_epoch, f"{recipe} epoch {epoch + 1}/{args.epochs}", progress)
        try:
            for x, raw, mask in _batches(args, epoch, device):
                started = time.perf_counter()
                with autocast():
                    if frozen is not None:
                        with torch.no_grad():
                            b1 = frozen(x, raw, mask).to(x.dtype)
                        u = model(x, b1, mask)
                        terms = criterion(u.float(), x, b1, mask)
                    else:
                        u = model(x, raw, mask)
                        terms = criterion(u.float(), x, raw, mask)
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                optimizer.step()
                step_seconds.append(time.perf_counter() - started)
                n = x.shape[0]
                count += n
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach()) * n
                bar.set_postfix({key: f"{value / count:.4g}" for key, value in sums.items()}, refresh=False)
                bar.update(1)
        finally:
            bar.close()
        losses = {key: value / max(count, 1) for key, value in sums.items()}
        metadata = {"training": {"recipe": recipe, "args": args.record(), "epoch": epoch + 1,
                                 "epochs": args.epochs, "losses": losses, "rows": len(rows),
                                 "npcf_sha256": npcf_sha}}
        # Sidecar first, then the checkpoint: an interruption in between is detected by the epochs disagreeing.
        save_train_state(state_path(out), optimizer, epoch + 1, epoch + 1)
        save_checkpoint(out, model, metadata=metadata)
        log(f"epoch {epoch + 1}/{args.epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    per_step = sum(step_seconds) / len(step_seconds) if step_seconds else None
    return TrainResult(out, recipe, done, args.epochs, losses, per_step)


def train_npcf(args: RefineTrainArgs, **kwargs: Any) -> TrainResult:
    """Algorithm 6 over a raw build; see :func:`train_refiner`."""
    return train_refiner("npcf", args, **kwargs)


def train_npcfpp(args: RefineTrainArgs, **kwargs: Any) -> TrainResult:
    """Algorithm 7 over a raw build with a frozen npcF; see :func:`train_refiner`."""
    return train_refiner("npcfpp", args, **kwargs)
