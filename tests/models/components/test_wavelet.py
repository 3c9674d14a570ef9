import pytest
import torch

from maphc2f_data.models.components.wavelet import crop_to, haar_dwt, haar_idwt, pad_to_multiple


def test_dwt_then_idwt_is_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 24, generator=g)
    bands = haar_dwt(x)
    assert all(b.shape == (2, 3, 8, 12) for b in bands)
    assert torch.allclose(haar_idwt(*bands), x, atol=1e-6)


def test_subbands_of_a_constant_and_an_edge():
    ll, lh, hl, hh = haar_dwt(torch.full((1, 1, 4, 4), 0.5))
    assert torch.allclose(ll, torch.ones_like(ll))  # orthonormal: 0.5 * (4 * 0.5)
    assert lh.abs().max() == 0 and hl.abs().max() == 0 and hh.abs().max() == 0
    x = torch.zeros(1, 1, 2, 2)
    x[..., 0, :] = 1.0  # top row bright: a horizontal edge shows in LH only
    _, lh, hl, hh = haar_dwt(x)
    assert lh.item() == pytest.approx(1.0) and hl.item() == 0 and hh.item() == 0


def test_energy_is_preserved():
    x = torch.rand(1, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    energy = sum(b.pow(2).sum() for b in haar_dwt(x))
    assert energy.item() == pytest.approx(x.pow(2).sum().item(), rel=1e-6)


def test_odd_size_is_refused_and_padding_round_trips():
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="even height and width, got 7x9"):
        haar_dwt(x)
    padded, size = pad_to_multiple(x, 2)
    assert padded.shape[-2:] == (8, 10)
    assert torch.allclose(crop_to(haar_idwt(*haar_dwt(padded)), size), x, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dwt_and_idwt_equal_the_grouped_convolutions_with_the_haar_filters(channels_last):
    # The filters applied by a stride-2 grouped convolution (and its transpose) are the definition.
    import torch.nn.functional as F

    from maphc2f_data.models.components.wavelet import haar_filters

    x = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(3))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = haar_filters().repeat(3, 1, 1, 1)
    reference = F.conv2d(x, weight, stride=2, groups=3).view(2, 3, 4, 4, 5)
    bands = haar_dwt(x)
    for k in range(4):
        assert torch.allclose(bands[k], reference[:, :, k], atol=1e-6)
    y = torch.rand(2, 12, 4, 5, generator=torch.Generator().manual_seed(4))
    inverse = F.conv_transpose2d(y, weight, stride=2, groups=3)
    out = haar_idwt(*y.view(2, 3, 4, 4, 5).unbind(2))
    assert torch.allclose(out, inverse, atol=1e-6)


def test_idwt_keeps_channels_last_and_passes_gradients():
    bands = [torch.rand(1, 4, 3, 3, generator=torch.Generator().manual_seed(k)).contiguous(
        memory_format=torch.channels_last).requires_grad_() for k in range(4)]
    out = haar_idwt(*bands)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.pow(2).sum().backward()
    # Orthonormal: the energy's gradient in the subbands is 2 * the subbands.
    assert all(torch.allclose(b.grad, 2 * b.detach(), atol=1e-6) for b in bands)
