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


def test_laplacian_equals_the_stencil_convolution_and_keeps_channels_last():
    import torch.nn.functional as F

    from maphc2f_data.models.components.pde import LAPLACIAN_KERNEL

    x = torch.rand(2, 5, 9, 7, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=torch.channels_last)
    weight = torch.tensor(LAPLACIAN_KERNEL).expand(5, 1, 3, 3)
    reference = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=5)
    out = laplacian(x)
    assert torch.allclose(out, reference, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last)
