import pytest
import torch

from maphc2f_data.models.npcfpp.blocks import PDEWaveAttnBlock, RegionSynergyBlock, window_partition, window_reverse
from maphc2f_data.models.npcfpp.loss import NpcfppLoss, NpcfppLossConfig
from maphc2f_data.models.npcfpp.torch_model import NPCFPP_TRAINING
from maphc2f_data.models.factory import create_model


@pytest.mark.parametrize("size", [(64, 64), (60, 68), (33, 47)])
def test_output_shape_and_range_for_any_size(size, make_batch):
    x, b1, m = make_batch(2, *size)
    u = create_model("npcfpp-tiny", seed=0)(x, b1, m)
    assert u.shape == x.shape
    assert 0.0 <= u.min().item() and u.max().item() <= 1.0


def test_window_partition_round_trip():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 3)
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_synergy_block_changes_only_the_boundary_band():
    g = torch.Generator().manual_seed(0)
    block = RegionSynergyBlock(4, window=4, boundary_px=1)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    z_n, z_a = torch.randn(1, 4, 10, 10, generator=g), torch.randn(1, 4, 10, 10, generator=g)
    mask = torch.zeros(1, 1, 10, 10)
    mask[..., 3:7, 3:7] = 1
    out = block(z_n, z_a, mask)  # 10 is not a multiple of 4: padded windows
    changed = (out - z_n).abs().sum(1)[0] > 0
    band = block.band(mask, (10, 10))[0, 0] > 0
    assert torch.equal(changed, band)
    assert torch.isfinite(out).all()


def test_pde_wave_block_is_the_pde_step_when_the_subband_conv_is_zero():
    block = PDEWaveAttnBlock(2, eps_init=0.0)
    torch.nn.init.zeros_(block.subband_conv.weight)
    torch.nn.init.zeros_(block.subband_conv.bias)
    f = torch.rand(1, 2, 7, 9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(block(f), f, atol=1e-6)
    assert block.eps_p.requires_grad


def test_loss_terms_by_hand():
    x = torch.zeros(1, 3, 4, 4)
    b1 = torch.ones(1, 3, 4, 4)
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    u = torch.full((1, 3, 4, 4), 0.5)
    c = NpcfppLossConfig(beta=2.0, delta=0.5, alpha_wave=3.0)
    terms = NpcfppLoss(c)(u, x, b1, m)
    assert terms["region_normal"].item() == pytest.approx(0.25)
    assert terms["region_anom"].item() == pytest.approx(0.25)
    assert terms["region_l2"].item() == pytest.approx(0.25)
    assert terms["region"].item() == pytest.approx(0.25 + 2.0 * (0.25 + 0.5 * 0.25))
    assert terms["wave_hf"].item() == 0.0
    assert terms["seam"].item() == 0.0  # constant u and x: no high frequencies anywhere
    assert terms["total"].item() == pytest.approx(terms["region"].item())


def test_seam_term_weighs_a_hard_border_and_can_be_switched_off():
    x = torch.full((1, 3, 16, 16), 0.5)
    m = torch.zeros(1, 1, 16, 16)
    m[..., 4:12, 4:12] = 1
    hard = x * (1 - m) + 0.1 * m
    terms = NpcfppLoss()(hard, x, hard, m)
    assert terms["seam"].item() > 0
    assert terms["total"].item() == pytest.approx(
        terms["region"].item() + 0.1 * terms["wave_hf"].item() + 0.3 * terms["seam"].item(), rel=1e-5)
    assert NpcfppLoss(NpcfppLossConfig(lambda_seam=0.0))(hard, x, hard, m)["seam"].item() == 0.0


def test_untrained_residual_model_starts_at_npcf_output(make_batch):
    # With the default weights u = b1 is the optimum inside the mask (see
    # NpcfppLossConfig), so the residual model starts near the loss minimum.
    x, b1, m = make_batch(2, 64, 64)
    u = create_model("npcfpp-tiny", seed=0)(x, b1, m)
    assert torch.allclose(u, b1.clamp(1e-3, 1 - 1e-3), atol=1e-5)
    # Outside the mask too: npcF's softened border is kept, not the original re-pasted.
    softened = b1 * 0.9 + 0.05  # differs from x outside the mask as well
    u = create_model("npcfpp-tiny", seed=0)(x, softened, m)
    assert torch.allclose(u, softened.clamp(1e-3, 1 - 1e-3), atol=1e-5)
    assert not torch.allclose(u * (1 - m), x * (1 - m), atol=1e-3)
    plain = create_model("npcfpp-tiny", seed=0, residual=False)(x, b1, m)
    assert NpcfppLoss()(u, x, b1, m)["total"] < NpcfppLoss()(plain, x, b1, m)["total"]


def test_a_few_adamw_steps_lower_the_total(make_batch):
    x, b1, m = make_batch(2, 64, 64)
    model = create_model("npcfpp-tiny", seed=0, residual=False)
    loss_fn = NpcfppLoss()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    totals = []
    for _ in range(6):
        terms = loss_fn(model(x, b1, m), x, b1, m)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        totals.append(terms["total"].item())
    assert totals[-1] < totals[0]
    assert model.synergy2.gamma.item() != 0.0  # the synergy gate learns


def test_paper_training_defaults():
    assert (NPCFPP_TRAINING.batch_size, NPCFPP_TRAINING.epochs, NPCFPP_TRAINING.image_size) == (32, 50, 512)


def test_default_weights_prefer_keeping_the_anomaly(make_batch):
    x, b1, m = make_batch(2, 64, 64)
    loss_fn = NpcfppLoss()
    assert loss_fn(b1, x, b1, m)["total"] < loss_fn(x, x, b1, m)["total"]
