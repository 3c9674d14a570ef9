import pytest
import torch
from torch import nn

from maphc2f_data.models.sqe import SynthesisQualityEstimator, sqe_loss, sqe_targets


def small_backbone():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())


@pytest.fixture
def sqe():
    torch.manual_seed(0)
    return SynthesisQualityEstimator(small_backbone(), feature_dim=8)


def test_quality_shape_and_range(sqe):
    q = sqe(torch.rand(5, 3, 32, 32))
    assert q.shape == (5,)
    assert ((q > 0) & (q < 1)).all()


def test_only_the_head_is_trainable_and_the_backbone_stays_in_eval(sqe):
    trainable = [name for name, p in sqe.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    sqe.train()
    assert not sqe.backbone.training and sqe.head.training
    before = sqe.backbone[1].running_mean.clone()
    sqe(torch.rand(4, 3, 32, 32))
    assert torch.equal(before, sqe.backbone[1].running_mean)


def test_accepts_pooled_backbones_and_rejects_wrong_features():
    pooled = nn.Sequential(small_backbone(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert SynthesisQualityEstimator(pooled, 8)(torch.rand(2, 3, 32, 32)).shape == (2,)
    with pytest.raises(ValueError, match="features"):
        SynthesisQualityEstimator(small_backbone(), 16)(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="images"):
        SynthesisQualityEstimator(small_backbone(), 8)(torch.rand(2, 1, 32, 32))


def test_targets_are_min_max_normalised_and_flipped():
    y = sqe_targets(torch.tensor([2.0, 4.0, 3.0]), eps=0.0)
    assert torch.allclose(y, torch.tensor([1.0, 0.0, 0.5]))
    assert torch.allclose(sqe_targets(torch.tensor([1.0, 1.0])), torch.ones(2))  # eps avoids 0/0
    with pytest.raises(ValueError):
        sqe_targets(torch.ones(2, 2))


def test_a_few_adamw_steps_lower_the_regression_loss(sqe):
    g = torch.Generator().manual_seed(1)
    images = torch.rand(8, 3, 32, 32, generator=g)
    targets = sqe_targets(torch.rand(8, generator=g))
    optimizer = torch.optim.AdamW(sqe.head_parameters(), lr=1e-2)
    features = sqe.features(images)
    before = sqe_loss(sqe.score_features(features), targets).item()
    for _ in range(20):
        optimizer.zero_grad()
        sqe_loss(sqe(images), targets).backward()
        optimizer.step()
    assert sqe_loss(sqe(images), targets).item() < before
    assert all(p.grad is None for p in sqe.backbone.parameters())
