import pytest
import torch

from maphc2f_data.models.components.pde import allen_cahn_residual, laplacian


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_residual_vanishes_on_the_pure_phases(value):
    u = torch.full((1, 3, 5, 6), value)
    assert allen_cahn_residual(u, eps=0.7).abs().max().item() == 0.0


def test_laplacian_and_residual_by_hand():
    u = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3)
    lap = laplacian(u)[0, 0]
    # Centre: 4 zero neighbours - 4 * 0.5 = -2; edge middles see the centre once: +0.5;
    # corners (replicate padding) see only zeros.
    expected_lap = torch.tensor([[0.0, 0.5, 0.0], [0.5, -2.0, 0.5], [0.0, 0.5, 0.0]])
    assert torch.allclose(lap, expected_lap)
    res = allen_cahn_residual(u, eps=0.5)[0, 0]
    # centre: 0.25 * (-2) - (0.125 - 0.5) = -0.5 + 0.375 = -0.125; edge middle: 0.25 * 0.5 - 0 = 0.125
    assert res[1, 1].item() == pytest.approx(-0.125)
    assert res[0, 1].item() == pytest.approx(0.125)
    assert res[0, 0].item() == 0.0


def test_laplacian_of_a_ramp_is_zero_inside():
    ramp = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 2, 4, 6)
    assert laplacian(ramp)[..., 1:-1].abs().max().item() == 0.0


def test_laplacian_refuses_wrong_rank():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        laplacian(torch.zeros(3, 4))
