import pytest
import torch

import torch.nn.functional as F

from maphc2f_data.models.npcf.loss import NpcfLoss, NpcfLossConfig, boundary_band, seam_excess, total_variation
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


def test_boundary_band_is_the_ring_around_the_mask_border():
    m = torch.zeros(1, 1, 16, 16)
    m[..., 5:11, 5:11] = 1
    band = boundary_band(m, 1)
    # A 6x6 square: the 8x8 dilation minus the 4x4 erosion.
    assert band.sum().item() == 64 - 16
    assert band[0, 0, 4, 4] == 1 and band[0, 0, 7, 7] == 0 and band[0, 0, 2, 2] == 0


def test_seam_term_measures_a_sharp_paste_and_not_the_normal_texture():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32) * 0.2 + 0.4
    m = torch.zeros(1, 1, 32, 32)
    m[..., 10:22, 10:22] = 1
    sharp = x * (1 - m) + 0.05 * m  # a dark patch pasted with a hard edge
    soft_mask = F.avg_pool2d(F.pad(m, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    soft = x * (1 - soft_mask) + 0.05 * soft_mask
    band = boundary_band(m, 2)
    assert seam_excess(x, x, band).item() == 0.0
    assert seam_excess(sharp, x, band).item() > seam_excess(soft, x, band).item() > 0
    terms = NpcfLoss(NpcfLossConfig(), backbone=None)(sharp, x, sharp, m)
    assert terms["total"].item() == pytest.approx(
        terms["rec_normal"].item() + 0.05 * terms["rec_anom"].item() + 0.1 * terms["pde"].item()
        + 0.005 * terms["tv"].item() + terms["color"].item() + 0.3 * terms["seam"].item(), rel=1e-5)
    off = NpcfLoss(NpcfLossConfig(lambda_seam=0.0), backbone=None)(sharp, x, sharp, m)
    assert off["seam"].item() == 0.0
    with pytest.raises(ValueError, match="seam_band"):
        NpcfLossConfig(seam_band=0)
