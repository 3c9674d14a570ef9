"""BiSQAD's bi-loop optimisation (paper Sec. 3.3.2, Sec. 6.3, Algs. 9-10).

Inner loop (Alg. 9, :func:`inner_step`): an ordinary training step of the base
detector on the loss ``mean_i(w_i * l_i)`` with per-sample weights
``w_i = lambda_sqe * q_i + lambda_bi * d_i`` (eq. 15), where ``q_i`` is the
SQE's quality score and ``d_i`` a learnable data weight (initialised to 1).
The weights are constants there; the per-sample losses are returned so the
SQE can be regressed on them (eq. 14, :func:`sqe_regression_step`).

Outer loop (Alg. 10, eqs. 27-28, :func:`outer_step`): a genuine second-order
MAML step in the style of functorch's MAML example. The base model's
parameters are taken as a dict, one differentiable SGD step
``theta' = theta - meta_inner_lr * grad(mean_i(w_i * l_i))`` is taken with
``create_graph=True`` through ``torch.func.functional_call``, the validation
batch is scored under ``theta'`` and a differentiable AUC surrogate is
back-propagated through that step into ``d`` and the SQE's final layer.
``d`` follows eq. 28 (``d <- d - outer_lr * dL/dd``); the SQE head is stepped
by its own optimizer (AdamW at 1e-4 in the paper). ``theta'`` is discarded:
the base model is never changed by the outer step.

Batches are mappings of tensors: a training batch holds ``"image"`` (the
model input), ``"index"`` (positions of the samples in the data-weight
vector) and, when an SQE is used, ``"sqe_image"`` (its [0, 1] input) plus
whatever ``per_sample_loss`` reads; a validation batch holds ``"image"`` and
``"label"`` (0 normal, 1 anomalous; both classes must be present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.func import functional_call

from maphc2f_data.models.sqe import SynthesisQualityEstimator, sqe_loss

__all__ = [
    "BilevelConfig",
    "OuterStepResult",
    "auc_loss",
    "auc_surrogate",
    "batch_weights",
    "init_data_weights",
    "inner_step",
    "make_sqe_optimizer",
    "outer_loss",
    "outer_step",
    "sample_weights",
    "sqe_regression_step",
]

PerSampleLoss = Callable[[Any, Mapping[str, torch.Tensor]], torch.Tensor]
ScoreFn = Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class BilevelConfig:
    """Hyper-parameters of the bi-loop.

    lambda_sqe, lambda_bi : eq. 15 mixing weights. ``lambda_sqe = 0`` with
        ``d`` left at its initial 1 (no outer step) is the "No SQE / default
        weight" ablation: uniform weights ``lambda_bi``.
    meta_inner_lr : SGD rate of the differentiable lookahead step (Alg. 10;
        the paper gives no value).
    auc_alpha : temperature of the AUC surrogate (paper gives no value; image
        scores live in [0, 1], so differences are small).
    outer_lr : eta_outer of eq. 28 (paper: 1e-4).
    min_data_weight : ``d`` is clipped from below after each outer update so
        no sample gets a negative weight; ``None`` disables the clip.
    """

    lambda_sqe: float = 1.0
    lambda_bi: float = 1.0
    meta_inner_lr: float = 1e-3
    auc_alpha: float = 0.05
    outer_lr: float = 1e-4
    min_data_weight: Optional[float] = 0.0


@dataclass
class OuterStepResult:
    """outer_loss: the validation AUC loss under theta' (before the update).
    data_weight_grad: dL/dd, same shape as ``d`` (zero outside the batch).
    head_grads: dL/d(SQE head parameters), empty when no SQE is used."""

    outer_loss: float
    data_weight_grad: torch.Tensor
    head_grads: Tuple[torch.Tensor, ...]


def init_data_weights(num_samples: int, *, dtype: torch.dtype = torch.float32, device=None) -> nn.Parameter:
    """The learnable data weights ``d``, one per training sample, all 1."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive; got {num_samples}")
    return nn.Parameter(torch.ones(num_samples, dtype=dtype, device=device))


def sample_weights(
    data_weights: torch.Tensor,
    quality: Optional[torch.Tensor] = None,
    *,
    lambda_sqe: float,
    lambda_bi: float,
) -> torch.Tensor:
    """Eq. 15: ``w = lambda_sqe * q + lambda_bi * d`` (q counts 0 when None).

    When both terms are switched off (no SQE or ``lambda_sqe = 0``, and
    ``lambda_bi = 0``) the weights fall back to uniform ones (Alg. 9 step 6).
    """
    use_sqe = quality is not None and lambda_sqe != 0
    if not use_sqe and lambda_bi == 0:
        return torch.ones_like(data_weights)
    w = lambda_bi * data_weights
    if use_sqe:
        if quality.shape != data_weights.shape:
            raise ValueError(f"quality {tuple(quality.shape)} and data weights {tuple(data_weights.shape)} differ")
        w = w + lambda_sqe * quality
    return w


def batch_weights(
    batch: Mapping[str, torch.Tensor],
    data_weights: torch.Tensor,
    sqe: Optional[SynthesisQualityEstimator],
    config: BilevelConfig,
) -> torch.Tensor:
    """Eq. 15 for the samples of one batch (differentiable in ``d`` and the SQE head)."""
    d = data_weights[batch["index"]]
    q = None
    if sqe is not None and config.lambda_sqe != 0:
        if "sqe_image" not in batch:
            raise KeyError("the batch needs 'sqe_image' when an SQE is used")
        q = sqe(batch["sqe_image"]).to(d.dtype)
    return sample_weights(d, q, lambda_sqe=config.lambda_sqe, lambda_bi=config.lambda_bi)


def auc_surrogate(scores_normal: torch.Tensor, scores_anomalous: torch.Tensor, alpha: float) -> torch.Tensor:
    """Differentiable AUC: mean over all (normal, anomalous) pairs of
    ``sigmoid((s_anomalous - s_normal) / alpha)``.

    As ``alpha -> 0`` this tends to the exact AUROC (a tie gives sigmoid(0) =
    1/2, as in the rank definition).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive; got {alpha}")
    if scores_normal.numel() == 0 or scores_anomalous.numel() == 0:
        raise ValueError("the AUC surrogate needs at least one normal and one anomalous score")
    diff = scores_anomalous.reshape(1, -1) - scores_normal.reshape(-1, 1)
    return torch.sigmoid(diff / alpha).mean()


def auc_loss(scores: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """``1 - auc_surrogate`` for scores (N,) and 0/1 labels (N,)."""
    labels = labels.reshape(-1).bool()
    scores = scores.reshape(-1)
    return 1.0 - auc_surrogate(scores[~labels], scores[labels], alpha)


def inner_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    per_sample_loss: PerSampleLoss,
    batch: Mapping[str, torch.Tensor],
    data_weights: torch.Tensor,
    *,
    sqe: Optional[SynthesisQualityEstimator] = None,
    config: BilevelConfig = BilevelConfig(),
) -> torch.Tensor:
    """One weighted training step of the base model (Alg. 9 steps 4-8).

    ``per_sample_loss(model(batch["image"]), batch)`` must return shape (N,).
    The weights are constants here. Returns the detached per-sample losses
    (for :func:`sqe_regression_step`).
    """
    with torch.no_grad():
        weights = batch_weights(batch, data_weights, sqe, config)
    losses = per_sample_loss(model(batch["image"]), batch)
    _check_per_sample(losses, weights)
    optimizer.zero_grad()
    (losses * weights.to(losses.dtype)).mean().backward()
    optimizer.step()
    return losses.detach()


def _check_per_sample(losses: torch.Tensor, weights: torch.Tensor) -> None:
    if losses.shape != weights.shape:
        raise ValueError(f"per_sample_loss must return shape {tuple(weights.shape)}; got {tuple(losses.shape)}")


def _lookahead_params(
    model: nn.Module,
    per_sample_loss: PerSampleLoss,
    data_weights: torch.Tensor,
    train_batch: Mapping[str, torch.Tensor],
    sqe: Optional[SynthesisQualityEstimator],
    config: BilevelConfig,
    buffers: Dict[str, torch.Tensor],
) -> Dict[str, torch.Tensor]:
    """theta' = theta - meta_inner_lr * grad_theta mean_i(w_i l_i), kept differentiable."""
    params = dict(model.named_parameters())
    trainable = [k for k, p in params.items() if p.requires_grad]
    output = functional_call(model, (params, buffers), (train_batch["image"],))
    losses = per_sample_loss(output, train_batch)
    weights = batch_weights(train_batch, data_weights, sqe, config)
    _check_per_sample(losses, weights)
    inner = (losses * weights.to(losses.dtype)).mean()
    grads = torch.autograd.grad(inner, [params[k] for k in trainable], create_graph=True, allow_unused=True)
    updated = dict(params)
    for k, g in zip(trainable, grads):
        if g is not None:
            updated[k] = params[k] - config.meta_inner_lr * g
    return updated


def outer_loss(
    model: nn.Module,
    per_sample_loss: PerSampleLoss,
    score_fn: ScoreFn,
    data_weights: torch.Tensor,
    train_batch: Mapping[str, torch.Tensor],
    val_batch: Mapping[str, torch.Tensor],
    *,
    sqe: Optional[SynthesisQualityEstimator] = None,
    config: BilevelConfig = BilevelConfig(),
) -> torch.Tensor:
    """Eq. 27: the validation AUC loss of the model after one differentiable
    weighted inner step (differentiable in ``d`` and the SQE head).

    ``score_fn(output)`` gives image scores (N,), e.g. ``out.image_score``.
    """
    buffers = dict(model.named_buffers())
    updated = _lookahead_params(model, per_sample_loss, data_weights, train_batch, sqe, config, buffers)
    val_output = functional_call(model, (updated, buffers), (val_batch["image"],))
    return auc_loss(score_fn(val_output), val_batch["label"], config.auc_alpha)


def outer_step(
    model: nn.Module,
    per_sample_loss: PerSampleLoss,
    score_fn: ScoreFn,
    data_weights: torch.Tensor,
    train_batch: Mapping[str, torch.Tensor],
    val_batch: Mapping[str, torch.Tensor],
    *,
    sqe: Optional[SynthesisQualityEstimator] = None,
    sqe_optimizer: Optional[torch.optim.Optimizer] = None,
    config: BilevelConfig = BilevelConfig(),
) -> OuterStepResult:
    """One second-order outer update (Alg. 10): updates ``d`` in place by eq. 28
    and the SQE head with ``sqe_optimizer`` (plain SGD at ``outer_lr`` when
    None). The base model's parameters are left untouched.
    """
    if not data_weights.requires_grad:
        raise ValueError("data_weights must require grad (use init_data_weights)")
    head = list(sqe.head_parameters()) if sqe is not None and config.lambda_sqe != 0 else []
    loss = outer_loss(
        model, per_sample_loss, score_fn, data_weights, train_batch, val_batch, sqe=sqe, config=config
    )
    grads = torch.autograd.grad(loss, [data_weights, *head], allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip([data_weights, *head], grads)]
    d_grad, head_grads = grads[0], tuple(grads[1:])
    with torch.no_grad():
        data_weights.sub_(config.outer_lr * d_grad)  # eq. 28
        if config.min_data_weight is not None:
            data_weights.clamp_(min=config.min_data_weight)
        if head:
            if sqe_optimizer is None:
                for p, g in zip(head, head_grads):
                    p.sub_(config.outer_lr * g)
            else:
                sqe_optimizer.zero_grad()
                for p, g in zip(head, head_grads):
                    p.grad = g.clone()
                sqe_optimizer.step()
                sqe_optimizer.zero_grad()
    return OuterStepResult(float(loss.detach()), d_grad.detach(), tuple(g.detach() for g in head_grads))


def make_sqe_optimizer(sqe: SynthesisQualityEstimator, lr: float = 1e-4) -> torch.optim.AdamW:
    """AdamW on the SQE's final layer at the paper's 1e-4."""
    return torch.optim.AdamW(sqe.head_parameters(), lr=lr)


def sqe_regression_step(
    sqe: SynthesisQualityEstimator,
    optimizer: torch.optim.Optimizer,
    sqe_images: torch.Tensor,
    targets: torch.Tensor,
) -> float:
    """One L2 regression step of q toward quality targets (N,).

    The targets come from :func:`maphc2f_data.models.sqe.sqe_targets` applied
    to the per-sample losses collected over an epoch (Alg. 9's output), then
    indexed like ``sqe_images``: eq. 14 normalises over the whole collection.
    """
    optimizer.zero_grad()
    loss = sqe_loss(sqe(sqe_images), targets.detach().to(sqe_images.dtype))
    loss.backward()
    optimizer.step()
    return float(loss.detach())
