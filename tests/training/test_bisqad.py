"""Pieces of the BiSQAD recipe that need no dataset."""

from __future__ import annotations

import numpy as np
import torch

from maphc2f_data.evaluation.metrics import image_auroc
from maphc2f_data.models.factory import create_model
from maphc2f_data.models.sqe_checkpoint import load_sqe, save_sqe
from maphc2f_data.models.sqe import make_sqe
import pytest

from maphc2f_data.errors import UserError
from maphc2f_data.training.bisqad import BisqadConfig, epoch_lr, rank_auroc


def test_rank_auroc_matches_the_evaluation_metric_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    assert abs(rank_auroc(labels, scores) - image_auroc(labels, scores)) < 1e-12


def test_draem_variants_are_registered():
    model = create_model("draem-tiny", seed=0)
    assert model.registry_family == "draem" and model.config.recon_width == 4
    assert create_model("draem-tiny", recon_width=8).config.recon_width == 8


def test_sqe_checkpoint_round_trip(tmp_path):
    sqe = make_sqe()
    with torch.no_grad():
        sqe.head.weight.fill_(0.01)
    save_sqe(tmp_path / "sqe.safetensors", sqe, "efficientnet_lite0")
    again = load_sqe(tmp_path / "sqe.safetensors")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(sqe.eval()(x), again(x))


def test_epoch_lr_follows_draems_drops():
    config = BisqadConfig(category="nut", epochs=10, lr=1e-4)
    rates = [epoch_lr(config, epoch) for epoch in range(10)]
    assert rates[:8] == [1e-4] * 8  # MultiStepLR at int(0.8 * 10) = 8 and int(0.9 * 10) = 9, gamma 0.2
    assert rates[8] == pytest.approx(2e-5) and rates[9] == pytest.approx(4e-6)
    assert [epoch_lr(BisqadConfig(category="nut", epochs=10, lr_drops=()), e) for e in range(10)] == [1e-4] * 10
    # a drop that would land on the first epoch of a short run is skipped
    assert epoch_lr(BisqadConfig(category="nut", epochs=1), 0) == 1e-4
    two = BisqadConfig(category="nut", epochs=2)
    assert epoch_lr(two, 0) == 1e-4 and epoch_lr(two, 1) == pytest.approx(4e-6)


def test_lr_drops_outside_zero_one_are_a_user_error():
    with pytest.raises(UserError, match="--lr-drops"):
        BisqadConfig(category="nut", lr_drops=(0.8, 1.0)).check()
