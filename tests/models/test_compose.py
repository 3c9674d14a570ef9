import pytest
import torch

from maphc2f_data.models.compose import boundary_band, dilate_mask, paste_back


def test_paste_back_keeps_the_original_exactly_outside_the_dilated_mask():
    g = torch.Generator().manual_seed(0)
    original = torch.rand(2, 3, 20, 24, generator=g)
    refined = torch.rand(2, 3, 20, 24, generator=g)
    mask = torch.zeros(2, 1, 20, 24)
    mask[0, :, 5:8, 6:10] = 1
    mask[1, :, 0:2, 20:24] = 1
    out = paste_back(refined, original, mask, dilate_px=2)
    grown = dilate_mask(mask, 2).expand_as(original) > 0
    assert torch.equal(out[~grown], original[~grown])
    assert torch.equal(out[grown], refined[grown])
    assert grown[0, 0, 3, 4] and not grown[0, 0, 2, 4]  # two pixels, not three
    assert torch.equal(paste_back(refined, original, torch.zeros(2, 20, 24), 3), original)


def test_boundary_band_straddles_the_border():
    mask = torch.zeros(1, 1, 12, 12)
    mask[..., 3:9, 3:9] = 1
    band = boundary_band(mask, 1)
    assert band[0, 0, 6, 6] == 0  # deep inside
    assert band[0, 0, 3, 6] == 1 and band[0, 0, 2, 6] == 1  # either side of the edge
    assert band[0, 0, 0, 0] == 0


@pytest.mark.parametrize("radius", [1, 2, 8])
def test_dilation_equals_the_square_max_filter(radius):
    # The separable form must be the (2r+1)^2 square max, border pixels included.
    import torch.nn.functional as F

    from maphc2f_data.models.compose import dilate_mask

    mask = (torch.rand(2, 1, 23, 19, generator=torch.Generator().manual_seed(radius)) > 0.93).float()
    square = F.max_pool2d(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)
    assert torch.equal(dilate_mask(mask, radius), square)
