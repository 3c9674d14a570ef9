"""Pieces of the BiSQAD recipe that need no dataset."""

from __future__ import annotations

import numpy as np
import torch

from maphc2f_data.evaluation.metrics import image_auroc
from maphc2f_data.models.factory import create_model
from maphc2f_data.models.sqe_checkpoint import load_sqe, save_sqe
from maphc2f_data.models.sqe import make_sqe
from maphc2f_data.training.bisqad import rank_auroc


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
