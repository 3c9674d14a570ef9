import pytest
import torch

from maphc2f_data.models.npcf.loss import NpcfLoss, NpcfLossConfig, total_variation
from maphc2f_data.models.npcf.torch_model import NPCF_TRAINING, NpcfConfig, NpcfNet
from maphc2f_data.models.factory import create_model


@pytest.mark.parametrize("size", [(64, 64), (60, 68), (33, 47)])
def test_output_shape_and_range_for_any_size(size, make_batch):
    x, a, m = make_batch(2, *size)
    model = create_model("npcf-tiny", seed=0, widths=(4, 8, 8))
    u = model(x, a, m)
    assert u.shape == x.shape
    assert 0.0 <= u.min().item() and u.max().item() <= 1.0


def test_untrained_residual_model_returns_the_stage_a_image(make_batch):
    x, a, m = make_batch(1, 32, 32)
    u = create_model("npcf-tiny", seed=0)(x, a, m[:, 0])  # (B, H, W) masks accepted
    assert torch.allclose(u, a.clamp(1e-3, 1 - 1e-3), atol=1e-5)


def test_input_channels_follow_the_config(make_batch):
    assert NpcfNet(NpcfConfig(widths=(4,))).stem.in_channels == 7
    model = NpcfNet(NpcfConfig(widths=(4,), use_stage_a=False, residual=False))
    assert model.stem.in_channels == 4
    x, _, m = make_batch(1, 16, 16)
    assert model(x, None, m).shape == x.shape


def test_loss_terms_by_hand():
    x = torch.zeros(1, 3, 4, 4)
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    u = torch.full((1, 3, 4, 4), 0.5)
    a = torch.ones(1, 3, 4, 4)
    terms = NpcfLoss(NpcfLossConfig(), backbone=None)(u, x, a, m)
    assert terms["rec_normal"].item() == pytest.approx(0.125)  # half the pixels at 0.25
    assert terms["rec_anom"].item() == pytest.approx(0.125)
    assert terms["color"].item() == pytest.approx(0.125)
    assert terms["tv"].item() == 0.0 and terms["perc"].item() == 0.0
    assert terms["pde"].item() == pytest.approx(0.5 * 0.375**2)
    c = NpcfLossConfig()
    expected = 0.125 * (1 + c.lambda_anom + c.lambda_color) + c.lambda_pde * terms["pde"].item()
    assert terms["total"].item() == pytest.approx(expected)
    assert total_variation(torch.eye(4).view(1, 1, 4, 4)).item() == pytest.approx(2 * 6 / 12)


@pytest.mark.parametrize("residual", [True, False])
def test_a_few_adamw_steps_lower_the_total(residual, effnet, make_batch):
    x, a, m = make_batch(2, 64, 64)
    model = create_model("npcf-tiny", seed=0, residual=residual)
    loss_fn = NpcfLoss(backbone=effnet)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3 if residual else 1e-2)
    totals = []
    for _ in range(6):
        terms = loss_fn(model(x, a, m), x, a, m)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        totals.append(terms["total"].item())
    assert set(terms) >= {"rec_normal", "rec_anom", "pde", "tv", "color", "perc", "total"}
    assert totals[-1] < totals[0]
    assert not any(p.grad is not None for p in effnet.parameters())


def test_the_perceptual_backbone_stays_out_of_the_loss_state(effnet):
    loss_fn = NpcfLoss(backbone=effnet)
    assert list(loss_fn.parameters()) == [] and loss_fn.state_dict() == {}


def test_paper_training_defaults():
    assert (NPCF_TRAINING.batch_size, NPCF_TRAINING.epochs, NPCF_TRAINING.image_size) == (32, 200, 512)
    assert NPCF_TRAINING.optimizer == "AdamW"


def test_default_weights_prefer_keeping_the_anomaly(effnet, make_batch):
    x, a, m = make_batch(2, 64, 64)
    loss_fn = NpcfLoss(backbone=effnet)
    kept = loss_fn(a, x, a, m)["total"]  # u = stage A: the anomaly survives
    erased = loss_fn(x, x, a, m)["total"]  # u = x: the anomaly is painted over
    assert kept < erased
