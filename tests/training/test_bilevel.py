import numpy as np
import pytest
import torch
from torch import nn

from maphc2f_data.evaluation import image_auroc
from maphc2f_data.models.draem import TINY_DRAEM_CONFIG, DraemLoss, build_draem
from maphc2f_data.models.sqe import SynthesisQualityEstimator, sqe_targets
from maphc2f_data.training.bilevel import (
    BilevelConfig,
    auc_loss,
    auc_surrogate,
    init_data_weights,
    inner_step,
    make_sqe_optimizer,
    outer_loss,
    outer_step,
    sample_weights,
    sqe_regression_step,
)


def test_auc_surrogate_approaches_the_exact_auc_as_the_temperature_sharpens():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    labels[:2] = (0, 1)
    scores = np.round(rng.random(40) + 0.3 * labels, 2)  # with ties
    exact = image_auroc(labels, scores)
    s = torch.tensor(scores, dtype=torch.float64)
    y = torch.tensor(labels).bool()
    errors = [abs(auc_surrogate(s[~y], s[y], a).item() - exact) for a in (1.0, 0.1, 0.01, 1e-4)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-6
    assert auc_loss(s, y, 1e-4).item() == pytest.approx(1 - exact, abs=1e-6)
    with pytest.raises(ValueError, match="positive"):
        auc_surrogate(s[~y], s[y], 0.0)


def test_sample_weights_follow_eq_15_and_the_uniform_ablation():
    d = init_data_weights(4)
    q = torch.tensor([0.1, 0.5, 0.9, 0.0])
    w = sample_weights(d.detach(), q, lambda_sqe=2.0, lambda_bi=0.5)
    assert torch.allclose(w, 2.0 * q + 0.5)
    # No SQE (lambda_sqe = 0) and d frozen at its initial 1: uniform weights.
    assert torch.equal(sample_weights(d.detach(), q, lambda_sqe=0.0, lambda_bi=0.7), torch.full((4,), 0.7))
    assert torch.equal(sample_weights(d.detach(), None, lambda_sqe=1.0, lambda_bi=0.0), torch.ones(4))


class _Features(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))  # (N, 3)


def _toy_problem(seed=0):
    """A tiny nonlinear float64 model on 2x2 "images" and an SQE on top."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    g = torch.Generator().manual_seed(seed)
    train = {
        "image": torch.rand(6, 3, 2, 2, generator=g, dtype=torch.float64),
        "target": torch.rand(6, generator=g, dtype=torch.float64),
        "index": torch.tensor([4, 0, 2, 6, 1, 3]),
    }
    train["sqe_image"] = train["image"]
    val = {"image": torch.rand(8, 3, 2, 2, generator=g, dtype=torch.float64), "label": torch.tensor([0, 1] * 4)}
    sqe = SynthesisQualityEstimator(_Features(), 3).double()

    def per_sample_loss(out, batch):
        return (out[:, 0] - batch["target"]) ** 2

    def score_fn(out):
        return out[:, 0]

    return model, sqe, per_sample_loss, score_fn, train, val


def test_second_order_gradient_matches_central_finite_differences():
    model, sqe, per_sample_loss, score_fn, train, val = _toy_problem()
    config = BilevelConfig(lambda_sqe=0.7, lambda_bi=1.3, meta_inner_lr=0.5, auc_alpha=0.3, outer_lr=0.0)
    d = init_data_weights(8, dtype=torch.float64)
    with torch.no_grad():
        d.mul_(torch.linspace(0.5, 1.5, 8, dtype=torch.float64))

    def loss_at(weights):
        return outer_loss(model, per_sample_loss, score_fn, weights, train, val, sqe=sqe, config=config)

    grad_d, grad_w = torch.autograd.grad(loss_at(d), [d, sqe.head.weight])

    # The lookahead itself needs autograd, so no torch.no_grad() here.
    h = 1e-6
    base = d.detach()
    numeric = torch.zeros(8, dtype=torch.float64)
    for i in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[i] = h
        numeric[i] = (loss_at(base + e) - loss_at(base - e)).item() / (2 * h)
    numeric_w = torch.zeros_like(sqe.head.weight)
    weight = sqe.head.weight
    for j in range(3):
        with torch.no_grad():
            weight[0, j] += h
        plus = loss_at(base).item()
        with torch.no_grad():
            weight[0, j] -= 2 * h
        minus = loss_at(base).item()
        with torch.no_grad():
            weight[0, j] += h
        numeric_w[0, j] = (plus - minus) / (2 * h)

    assert grad_d.abs().max() > 1e-6  # a nonzero gradient: it flows through the inner step
    assert grad_d[[5, 7]].abs().max() == 0  # samples outside the batch
    assert torch.allclose(grad_d, numeric, rtol=1e-4, atol=1e-10)
    assert torch.allclose(grad_w, numeric_w, rtol=1e-4, atol=1e-10)


def test_outer_step_applies_eq_28_and_leaves_the_model_alone():
    model, sqe, per_sample_loss, score_fn, train, val = _toy_problem(seed=1)
    config = BilevelConfig(meta_inner_lr=0.5, auc_alpha=0.3, outer_lr=0.1, min_data_weight=None)
    d = init_data_weights(8, dtype=torch.float64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head_before = sqe.head.weight.detach().clone()
    result = outer_step(model, per_sample_loss, score_fn, d, train, val, sqe=sqe, config=config)
    assert torch.allclose(d.detach(), 1.0 - 0.1 * result.data_weight_grad)
    assert torch.allclose(sqe.head.weight.detach(), head_before - 0.1 * result.head_grads[0])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())


def _draem_batch(n, size, seed, anomalous):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size)
    for i in range(n):
        if anomalous[i]:
            y, x = torch.randint(0, size - 8, (2,), generator=g).tolist()
            mask[i, :, y : y + 8, x : x + 8] = 1
    image = clean * (1 - mask) + mask * torch.rand(n, 3, size, size, generator=g)
    return image, clean, mask


def test_smoke_inner_and_outer_steps_on_a_tiny_draem():
    torch.manual_seed(0)
    model = build_draem(TINY_DRAEM_CONFIG)
    sqe = SynthesisQualityEstimator(nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU()), 4)
    loss_fn = DraemLoss()
    config = BilevelConfig(meta_inner_lr=1e-2, outer_lr=1e-1)

    def per_sample_loss(out, batch):
        return loss_fn.per_sample(out, batch["target"], batch["mask"])

    def score_fn(out):
        return out.image_score

    image, clean, mask = _draem_batch(6, 32, 0, [1, 1, 0, 1, 1, 1])
    train = {"image": image, "target": clean, "mask": mask, "index": torch.arange(6), "sqe_image": image}
    vimage, _, _ = _draem_batch(4, 32, 1, [0, 0, 1, 1])
    val = {"image": vimage, "label": torch.tensor([0, 0, 1, 1])}
    d = init_data_weights(6)
    d0 = d.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sqe_optimizer = make_sqe_optimizer(sqe)

    losses = []
    for step in range(2):
        part = {k: v[3 * step : 3 * step + 3] for k, v in train.items()}
        losses.append(inner_step(model, optimizer, per_sample_loss, part, d, sqe=sqe, config=config))
    epoch_losses = torch.cat(losses)
    assert epoch_losses.shape == (6,) and torch.isfinite(epoch_losses).all()
    assert np.isfinite(sqe_regression_step(sqe, sqe_optimizer, image, sqe_targets(epoch_losses)))

    params_before = [p.detach().clone() for p in model.parameters()]
    part = {k: v[:3] for k, v in train.items()}
    result = outer_step(
        model, per_sample_loss, score_fn, d, part, val, sqe=sqe, sqe_optimizer=sqe_optimizer, config=config
    )
    assert 0.0 <= result.outer_loss <= 1.0
    assert not torch.equal(d.detach(), d0)
    assert torch.equal(d.detach()[3:], d0[3:])
    assert (d.detach() >= 0).all()
    assert all(torch.equal(a, b) for a, b in zip(params_before, model.parameters()))
