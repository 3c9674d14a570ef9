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
