"""BiSQAD's recipe for one category (paper Sec. 3.3, Sec. 6.3, Algs. 9-10, eqs. 13-15, 27-28).

Per epoch:

1. **Inner loop** (Alg. 9, :func:`~maphc2f_data.training.bilevel.inner_step`):
   batches of half synthetic rows of the ``train`` split (image, mask; the
   reconstruction target is the row's normal image) and half normal images
   (the same rows' normal images, mask 0), as DRAEM trains. The base model
   (DRAEM) is trained on ``mean_i(w_i * l_i)`` with ``w_i = lambda_sqe q_i +
   lambda_bi d_i`` (eq. 15). Every training sample has a data weight ``d_i``:
   synthetic rows at their stable row index, each distinct normal image after
   them. ``q_i`` is the SQE on the sample's image (its frozen backbone
   features are computed once per sample and cached).
2. **SQE regression** (eq. 14): the epoch's per-sample losses become targets
   ``y = 1 - minmax(l)``; the SQE head regresses them (L2, AdamW at 1e-4) for
   ``sqe_epochs`` passes.
3. **Outer step** every ``outer_every`` epochs (Alg. 10, eqs. 27-28): one
   second-order step through a differentiable lookahead of a training batch,
   scored on the ``validation`` split (synthetic anomalies = 1, their normal
   images = 0) with the AUC surrogate (``auc_alpha``); it updates ``d`` and
   the SQE head. The base model is not changed by it.
4. **Model selection on validation only**: the validation image AUROC and
   pixel AUROC (exact, on the same validation rows) are computed; the epoch
   with the best mean (ties: the later) is written to ``RUN/model.safetensors``.
   No test split is ever read here.

The ``validation`` split must exist (``maphc2f splits DIR --val-fraction 0.1
--seed S``): a run without one fails with that advice rather than carving a
split on the fly, so the rows a model was selected on are recorded in the
dataset itself.

Resumable: after each epoch ``RUN/state.safetensors`` (model, SQE head, ``d``,
both optimizers' state, epoch, best score) is rewritten atomically and a line
appended to ``RUN/train_log.jsonl``; rerunning the same command continues
after the last finished epoch. At the end ``RUN/sqe.safetensors`` holds the
SQE and, with ``write_quality``, the SQE's score of every row of the category
(train and validation) is written back to the dataset's ``quality`` column.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from maphc2f_data.errors import UserError
from maphc2f_data.training.bilevel import (
    BilevelConfig,
    batch_weights,
    init_data_weights,
    inner_step,
    outer_step,
)

__all__ = ["BisqadConfig", "BisqadResult", "epoch_lr", "rank_auroc", "score_rows", "train_bisqad"]

STATE_NAME = "state.safetensors"
MODEL_NAME = "model.safetensors"
SQE_NAME = "sqe.safetensors"
LOG_NAME = "train_log.jsonl"

#: Config fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "device", "amp", "progress", "write_quality")


@dataclass(frozen=True)
class BisqadConfig:
    """Options of one BiSQAD run (paper defaults where the paper gives one).

    category : the dataset category to train on.
    epochs : training epochs (the paper gives none for BiSQAD; DRAEM uses 700).
    batch_size : samples per step, half synthetic, half normal (paper: 32).
    size : square input side; must match the build's image size (paper: 512).
    lr : Adam rate of the base model (DRAEM: 1e-4).
    lr_drops : fractions of ``epochs`` after which that rate is multiplied by
        0.2 (DRAEM's MultiStepLR at 80 % and 90 % of its epochs; see
        :func:`epoch_lr`); empty: a constant rate. The drops follow
        ``epochs``, so a resumed run given more epochs moves them.
    lambda_sqe, lambda_bi : eq. 15 (``lambda_sqe = 0`` and ``outer_every = 0``:
        the uniform-weight ablation, Table 6 row 1).
    outer_every : an outer step after every k-th epoch (paper: every epoch; 0: never).
    auc_alpha, meta_inner_lr, outer_lr : see :class:`~.bilevel.BilevelConfig`.
    sqe_lr, sqe_epochs : AdamW rate of the SQE head (paper 1e-4) and its
        regression passes per epoch (paper: 2-10).
    backbone, backbone_weights : the SQE's frozen backbone (paper: WideResNet-50-2;
        ``efficientnet_lite0`` ships with the package and needs no file).
    model, model_overrides : registered base model (``draem``, ``draem-tiny``) and config overrides.
    val_max : at most this many validation anomalies (and as many normals) are used.
    seed : model initialisation and shuffles.
    """

    category: str
    epochs: int = 50
    batch_size: int = 32
    size: int = 512
    lr: float = 1e-4
    lr_drops: Tuple[float, ...] = (0.8, 0.9)
    lambda_sqe: float = 1.0
    lambda_bi: float = 1.0
    outer_every: int = 1
    auc_alpha: float = 0.05
    meta_inner_lr: float = 1e-3
    outer_lr: float = 1e-4
    sqe_lr: float = 1e-4
    sqe_epochs: int = 2
    backbone: str = "efficientnet_lite0"
    backbone_weights: Optional[str] = None
    model: str = "draem"
    model_overrides: Dict[str, Any] = field(default_factory=dict)
    val_max: int = 32
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    progress: bool = True
    write_quality: bool = True

    def check(self) -> None:
        """One-line UserErrors for impossible values."""
        for name in ("epochs", "batch_size", "size", "val_max"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be positive; got {getattr(self, name)}")
        if self.batch_size < 2:
            raise UserError("--batch-size must be at least 2 (half synthetic, half normal)")
        if self.outer_every < 0 or self.sqe_epochs < 0:
            raise UserError("--outer-every and --sqe-epochs must not be negative")
        if any(not 0.0 < float(f) < 1.0 for f in self.lr_drops):
            raise UserError(f"--lr-drops must be fractions of the epochs in (0, 1); got {list(self.lr_drops)}")
        if self.auc_alpha <= 0:
            raise UserError(f"--auc-alpha must be positive; got {self.auc_alpha}")

    def bilevel(self) -> BilevelConfig:
        return BilevelConfig(lambda_sqe=self.lambda_sqe, lambda_bi=self.lambda_bi, meta_inner_lr=self.meta_inner_lr,
                             auc_alpha=self.auc_alpha, outer_lr=self.outer_lr)


@dataclass
class BisqadResult:
    """What a run wrote: paths, the selected epoch and its validation metrics."""

    run_dir: Path
    model_path: Path
    sqe_path: Path
    best_epoch: int
    validation: Dict[str, float]
    epochs_run: int
    seconds: float
    quality: Optional[Dict[str, Any]] = None


def epoch_lr(config: BisqadConfig, epoch: int) -> float:
    """The base model's learning rate in ``epoch`` (0-based): ``config.lr`` times 0.2 for every drop
    ``f`` in ``config.lr_drops`` with ``1 <= int(f * epochs) <= epoch`` (a drop that would fall on the
    first epoch of a very short run is skipped)."""
    milestones = [int(float(f) * config.epochs) for f in config.lr_drops]
    return config.lr * 0.2 ** sum(1 for m in milestones if 1 <= m <= epoch)


# --------------------------------------------------------------------------- metrics (exact, validation only)


def rank_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact AUROC (ties count 1/2) by the Mann-Whitney rank sum."""
    from scipy.stats import rankdata

    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------- data


def _rows_or_advice(data: Path, category: str, split: str, seed: Optional[int]):
    from maphc2f_data.training.data import ShardRows

    try:
        return ShardRows(data, categories=[category], split=split, with_normal=True, seed=seed)
    except UserError as exc:
        if split == "validation" and "no validation shards" in str(exc):
            raise UserError(f"no validation split for {category} in {data}; make one first: "
                            f"maphc2f splits {data} --val-fraction 0.1 --seed 0") from None
        raise


def _check_size(image: torch.Tensor, size: int, data: Path) -> None:
    if tuple(image.shape[-2:]) != (size, size):
        raise UserError(f"--size {size} does not match the images of {data} "
                        f"({image.shape[-1]}x{image.shape[-2]}); pass --size {image.shape[-1]}")


def _normal_ids(rows) -> Dict[str, int]:
    """Distinct normal images (``source_image``) of the rows, sorted, -> 0.."""
    import pyarrow.parquet as pq

    names = set()
    for path in rows.paths:
        names.update(pq.read_table(path, columns=["source_image"]).column("source_image").to_pylist())
    return {name: i for i, name in enumerate(sorted(names))}


def _batches(rows: Iterator[Dict[str, Any]], k: int) -> Iterator[List[Dict[str, Any]]]:
    chunk: List[Dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == k:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _make_batch(chunk: Sequence[Dict[str, Any]], n_rows: int, normal_ids: Mapping[str, int]) -> Dict[str, torch.Tensor]:
    """Synthetic rows then their normal images (mask 0, reconstruction target = the normal)."""
    normals = torch.stack([r["normal"] for r in chunk])
    synthetic = torch.stack([r["image"] for r in chunk])
    masks = torch.stack([r["mask"] for r in chunk])
    index = [r["index"] for r in chunk] + [n_rows + normal_ids[r["source_image"]] for r in chunk]
    return {
        "image": torch.cat([synthetic, normals]),
        "target": torch.cat([normals, normals]),
        "mask": torch.cat([masks, torch.zeros_like(masks)]),
        "index": torch.tensor(index, dtype=torch.long),
        "label": torch.cat([torch.ones(len(chunk)), torch.zeros(len(chunk))]),
    }


def _validation_batch(rows, limit: int) -> Dict[str, torch.Tensor]:
    """Up to ``limit`` validation anomalies (manifest order) and their distinct normal images."""
    images, masks, normals, seen = [], [], [], set()
    for row in rows:
        if len(images) >= limit:
            break
        images.append(row["image"])
        masks.append(row["mask"])
        if row["source_image"] not in seen:
            seen.add(row["source_image"])
            normals.append(row["normal"])
    normals = normals[:limit]
    image = torch.stack(images + normals)
    mask = torch.cat([torch.stack(masks), torch.zeros(len(normals), *masks[0].shape)])
    label = torch.cat([torch.ones(len(images)), torch.zeros(len(normals))])
    return {"image": image, "mask": mask, "label": label}


class _FeatureSQE(nn.Module):
    """The SQE seen through cached backbone features: ``forward(features) -> q``.

    ``batch_weights`` and ``outer_step`` call ``sqe(batch["sqe_image"])`` and
    ``sqe.head_parameters()``; giving them this wrapper and the cached
    features as ``sqe_image`` skips the frozen backbone after a sample's
    first visit. Gradients still reach the head.
    """

    def __init__(self, sqe):
        super().__init__()
        self.sqe = sqe

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.sqe.score_features(features)

    def head_parameters(self):
        return self.sqe.head_parameters()


class _FeatureCache:
    def __init__(self, sqe, size: int, dim: int, device: torch.device):
        self.sqe = sqe
        self.features = torch.zeros(size, dim, device=device)
        self.have = torch.zeros(size, dtype=torch.bool, device=device)

    def get(self, index: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        missing = ~self.have[index]
        if missing.any():
            self.features[index[missing]] = self.sqe.features(images[missing]).float()
            self.have[index[missing]] = True
        return self.features[index]


# --------------------------------------------------------------------------- state (resume)


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, extra = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                extra["scalars"][f"{pid}.{key}"] = value
    return tensors, extra


def _optimizer_state(tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any], prefix: str) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for name, value in extra["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": extra["param_groups"]}


def _save_state(path: Path, model, sqe, d, optimizer, sqe_optimizer, meta: Dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"sqe_head.{k}": v for k, v in sqe.head.state_dict().items()})
    tensors["d"] = d.detach()
    opt_t, opt_x = _optimizer_tensors(optimizer, "opt")
    sqe_t, sqe_x = _optimizer_tensors(sqe_optimizer, "sqe_opt")
    tensors.update(opt_t)
    tensors.update(sqe_t)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {"maphc2f.bisqad_state": json.dumps({**meta, "opt": opt_x, "sqe_opt": sqe_x}, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    os.replace(tmp, path)


def _load_state(path: Path, device) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["maphc2f.bisqad_state"])
        tensors = load_file(str(path), device=str(device))
    except Exception as exc:
        raise UserError(f"cannot resume from {path} ({type(exc).__name__}); delete it to start over") from None
    return tensors, meta


def _comparable(config: BisqadConfig) -> Dict[str, Any]:
    data = dataclasses.asdict(config)
    for key in _RESUMABLE_CHANGES:
        data.pop(key, None)
    return json.loads(json.dumps(data))


# --------------------------------------------------------------------------- the run


def _validate(model, val: Dict[str, torch.Tensor], device, batch: int) -> Dict[str, float]:
    model.eval()
    scores, maps = [], []
    with torch.no_grad():
        for start in range(0, len(val["image"]), batch):
            out = model(val["image"][start:start + batch].to(device))
            scores.append(out.image_score.float().cpu())
            maps.append(out.anomaly_map.float().cpu())
    model.train()
    scores_np = torch.cat(scores).numpy()
    maps_np = torch.cat(maps).numpy().reshape(-1)
    return {
        "val_image_auroc": rank_auroc(val["label"].numpy(), scores_np),
        "val_pixel_auroc": rank_auroc(val["mask"].numpy().reshape(-1) > 0.5, maps_np),
    }


def train_bisqad(data: os.PathLike, out: os.PathLike, config: BisqadConfig,
                 log: Callable[[str], None] = print) -> BisqadResult:
    """Train BiSQAD on ``config.category`` of the dataset ``data`` into the run folder ``out``.

    See the module docstring for what is written. Raises a one-line
    :class:`UserError` for bad input (no validation split, wrong size,
    unknown category, a run folder holding other options).
    """
    from tqdm.auto import tqdm

    from maphc2f_data.models.checkpoint import save_checkpoint
    from maphc2f_data.models.draem import DraemLoss
    from maphc2f_data.models.factory import create_model
    from maphc2f_data.models.sqe import make_sqe, sqe_loss, sqe_targets
    from maphc2f_data.models.sqe_checkpoint import save_sqe

    config.check()
    started = time.perf_counter()
    data = Path(data).expanduser().resolve()
    run = Path(out).expanduser().resolve()
    if run.exists() and not run.is_dir():
        raise UserError(f"--out {run} is a file, not a folder")
    run.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is available")

    train_rows = _rows_or_advice(data, config.category, "train", config.seed)
    val_rows = _rows_or_advice(data, config.category, "validation", None)
    normal_ids = _normal_ids(train_rows)
    n_rows = len(train_rows)
    val = _validation_batch(val_rows, config.val_max)
    _check_size(val["image"], config.size, data)

    try:
        model = create_model(config.model, seed=config.seed, **config.model_overrides).to(device)
    except ValueError as exc:
        raise UserError(f"--model {config.model}: {exc}") from None
    sqe = make_sqe(config.backbone, config.backbone_weights).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        sqe.head.reset_parameters()
    criterion = DraemLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    sqe_optimizer = torch.optim.AdamW(sqe.head_parameters(), lr=config.sqe_lr)
    d = init_data_weights(n_rows + len(normal_ids), device=device)
    bilevel = config.bilevel()
    feature_sqe = _FeatureSQE(sqe)
    cache = _FeatureCache(sqe, len(d), sqe.head.in_features, device)

    def per_sample_loss(output, batch):
        return criterion.per_sample(output, batch["target"], batch["mask"])

    # ---- resume
    state_path, log_path, model_path = run / STATE_NAME, run / LOG_NAME, run / MODEL_NAME
    start_epoch, best = 0, {"score": -math.inf, "epoch": -1, "metrics": {}}
    if state_path.is_file():
        tensors, meta = _load_state(state_path, device)
        if meta.get("config") != _comparable(config) or meta.get("n_weights") != len(d):
            theirs = meta.get("config") or {}
            diff = sorted(k for k in set(theirs) | set(_comparable(config)) if theirs.get(k) != _comparable(config).get(k))
            raise UserError(f"{run} holds a BiSQAD run with other options or data (differs in: "
                            f"{', '.join(diff) or 'number of rows'}); use a new --out or the same options")
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        sqe.head.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("sqe_head.")})
        with torch.no_grad():
            d.copy_(tensors["d"])
        optimizer.load_state_dict(_optimizer_state(tensors, meta["opt"], "opt"))
        sqe_optimizer.load_state_dict(_optimizer_state(tensors, meta["sqe_opt"], "sqe_opt"))
        start_epoch, best = int(meta["epoch"]) + 1, meta["best"]
        log(f"resuming {run} after epoch {start_epoch}")
    if log_path.is_file():  # drop lines of an epoch whose state was never saved
        kept = [line for line in log_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("epoch", -1) < start_epoch]
        log_path.write_text("".join(line + "\n" for line in kept))

    def with_features(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["sqe_image"] = cache.get(batch["index"], batch["image"])
        return batch

    amp = torch.autocast(device.type, dtype=torch.bfloat16) if config.amp else None
    half = max(1, config.batch_size // 2)
    steps = math.ceil(n_rows / half)
    val_device = {k: v for k, v in val.items()}
    for epoch in range(start_epoch, config.epochs):
        epoch_started = time.perf_counter()
        lr = epoch_lr(config, epoch)  # set every epoch, so a resumed run follows the same schedule
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_rows.set_epoch(epoch)
        model.train()
        indices, losses, first_batch = [], [], None
        bar = tqdm(_batches(iter(train_rows), half), total=steps, desc=f"bisqad {config.category} {epoch + 1}/"
                   f"{config.epochs}", unit="step", disable=None if config.progress else True, leave=False)
        w_std = 0.0
        for chunk in bar:
            batch = with_features(_make_batch(chunk, n_rows, normal_ids))
            if first_batch is None:
                first_batch = batch
            if amp is not None:
                with amp:
                    step_losses = inner_step(model, optimizer, per_sample_loss, batch, d, sqe=feature_sqe,
                                             config=bilevel)
            else:
                step_losses = inner_step(model, optimizer, per_sample_loss, batch, d, sqe=feature_sqe, config=bilevel)
            indices.append(batch["index"])
            losses.append(step_losses.float())
            with torch.no_grad():
                w_std = float(batch_weights(batch, d, feature_sqe, bilevel).std())
            bar.set_postfix(loss=f"{float(step_losses.mean()):.4f}", w_std=f"{w_std:.4f}")
        bar.close()
        index = torch.cat(indices)
        epoch_losses = torch.cat(losses)

        # eq. 14: the epoch's losses -> quality targets; L2 regression of the SQE head.
        sqe_fit = float("nan")
        if config.sqe_epochs and len(epoch_losses) > 1:
            targets = sqe_targets(epoch_losses)
            features = cache.features[index]
            generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
            for _ in range(config.sqe_epochs):
                order = torch.randperm(len(targets), generator=generator).to(device)
                for start in range(0, len(order), config.batch_size):
                    part = order[start:start + config.batch_size]
                    sqe_optimizer.zero_grad()
                    fit = sqe_loss(sqe.score_features(features[part]), targets[part])
                    fit.backward()
                    sqe_optimizer.step()
                    sqe_fit = float(fit.detach())

        # Alg. 10: second-order outer step on the validation split.
        outer = None
        if config.outer_every and (epoch + 1) % config.outer_every == 0:
            val_batch = {k: v.to(device) for k, v in val_device.items()}
            result = outer_step(model, per_sample_loss, lambda o: o.image_score, d, first_batch, val_batch,
                                sqe=feature_sqe, sqe_optimizer=sqe_optimizer, config=bilevel)
            outer = result.outer_loss

        metrics = _validate(model, val, device, config.batch_size)
        with torch.no_grad():
            all_w = batch_weights({"index": torch.arange(len(d), device=device),
                                   "sqe_image": cache.features}, d, feature_sqe, bilevel)
            seen = cache.have
            w_all_std = float(all_w[seen].std()) if int(seen.sum()) > 1 else 0.0
        score = float(np.nanmean([metrics["val_image_auroc"], metrics["val_pixel_auroc"]]))
        selected = score >= best["score"]
        if selected:
            best = {"score": score, "epoch": epoch, "metrics": metrics}
            save_checkpoint(model_path, model, metadata={
                "recipe": "bisqad", "category": config.category, "size": config.size, "epoch": epoch,
                "selected_on": "validation", **metrics, "data": str(data),
            })
        entry = {
            "epoch": epoch, "lr": lr, "loss": float(epoch_losses.mean()), "sqe_fit": sqe_fit, "outer_loss": outer,
            "w_std": w_all_std, "d_min": float(d.detach().min()), "d_max": float(d.detach().max()), **metrics,
            "selected": selected, "seconds": round(time.perf_counter() - epoch_started, 3),
        }
        meta = {"epoch": epoch, "best": best, "config": _comparable(config), "n_weights": len(d)}
        with log_path.open("a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        _save_state(state_path, model, sqe, d, optimizer, sqe_optimizer, meta)
        save_sqe(run / SQE_NAME, sqe, config.backbone,
                 metadata={"backbone_weights": config.backbone_weights, "category": config.category,
                           "epoch": epoch, "size": config.size})
        log(f"epoch {epoch + 1}/{config.epochs}: loss {entry['loss']:.4f}  w_std {w_all_std:.4f}  "
            f"val image AUROC {metrics['val_image_auroc']:.3f}  pixel AUROC {metrics['val_pixel_auroc']:.3f}"
            + ("  (selected)" if selected else ""))

    sqe_path = run / SQE_NAME
    if not sqe_path.is_file():  # resumed a finished run whose sqe file was removed
        save_sqe(sqe_path, sqe, config.backbone, metadata={"backbone_weights": config.backbone_weights})
    quality = None
    if config.write_quality:
        quality = score_rows(data, sqe, [config.category], batch_size=config.batch_size, device=device,
                             record={"sqe": str(sqe_path), "recipe": "bisqad"})[config.category]
    return BisqadResult(run, model_path, sqe_path, int(best["epoch"]), dict(best["metrics"]),
                        config.epochs - start_epoch, time.perf_counter() - started, quality)


def score_rows(data: os.PathLike, sqe, categories: Optional[Sequence[str]] = None, *, batch_size: int = 32,
               device="cpu", record: Optional[Mapping[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """SQE quality of every row (all splits) of ``categories``, written back as the ``quality`` column.

    Returns ``{category: write_quality's summary}``.
    """
    from maphc2f_data.dataset.quality import write_quality
    from maphc2f_data.dataset.shards import iter_rows
    from maphc2f_data.dataset.png import decode_png
    from maphc2f_data.dataset.splits import _input_shards
    from maphc2f_data.training.data import dataset_categories, to_tensor

    root, entries, chosen = dataset_categories(data, categories)
    sqe = sqe.to(device).eval()

    def quality(images: List[torch.Tensor]) -> List[float]:
        with torch.no_grad():
            return sqe(torch.stack(images).to(device)).float().cpu().tolist()

    summary = {}
    for category in chosen:
        scores: Dict[str, float] = {}
        for path, _ in _input_shards(root, category, entries[category]):
            ids, images = [], []
            for row in iter_rows(path, columns=["sample_id", "image"]):
                ids.append(row["sample_id"])
                images.append(to_tensor(decode_png(row["image"]["bytes"])))
                if len(images) == batch_size:
                    scores.update(zip(ids, quality(images)))
                    ids, images = [], []
            if images:
                scores.update(zip(ids, quality(images)))
        summary[category] = write_quality(root, category, scores, record=record)
    return summary
