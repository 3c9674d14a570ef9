import pytest
import torch

from maphc2f_data.models.draem import TINY_DRAEM_CONFIG, DraemConfig, DraemLoss, DraemOutput, build_draem
from maphc2f_data.models.draem.loss import ssim_per_sample


def _batch(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 3, size, size, generator=g)
    mask = torch.zeros(n, 1, size, size)
    mask[0, :, 4:12, 6:14] = 1
    mask[1, :, 20:30, 2:8] = 1
    image = clean * (1 - mask) + mask * torch.rand(n, 3, size, size, generator=g)
    return image, clean, mask


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_draem(TINY_DRAEM_CONFIG)


def test_forward_shapes_and_ranges(model):
    image, _, _ = _batch()
    out = model(image)
    assert isinstance(out, DraemOutput)
    assert out.reconstruction.shape == (3, 3, 32, 32)
    assert out.segmentation_logits.shape == (3, 2, 32, 32)
    assert out.anomaly_map.shape == (3, 1, 32, 32)
    assert out.image_score.shape == (3,)
    assert torch.allclose(out.anomaly_map, torch.softmax(out.segmentation_logits, 1)[:, 1:])
    assert ((out.anomaly_map >= 0) & (out.anomaly_map <= 1)).all()
    assert (out.image_score <= out.anomaly_map.flatten(1).amax(1) + 1e-6).all()


def test_rejects_bad_inputs(model):
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 3, 40, 32))
    with pytest.raises(ValueError, match="images"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="odd"):
        DraemConfig(score_kernel=4)


def test_default_config_is_draem_sized():
    config = DraemConfig()
    assert (config.recon_width, config.disc_width, config.score_kernel) == (128, 64, 21)
    assert config.size_multiple == 32


def test_head_prior_starts_every_pixel_at_the_prior_and_default_is_unchanged():
    from dataclasses import replace

    image, _, _ = _batch()
    torch.manual_seed(0)
    default = build_draem(TINY_DRAEM_CONFIG)
    torch.manual_seed(0)
    primed = build_draem(replace(TINY_DRAEM_CONFIG, head_prior=0.01))
    # Same weights drawn; only the head's biases differ.
    different = [name for name, value in default.state_dict().items()
                 if not torch.equal(value, primed.state_dict()[name])]
    assert different == ["discriminative.head.bias"]
    torch.testing.assert_close(primed.discriminative.head.bias, torch.tensor([0.0, -4.59512]), atol=1e-4, rtol=0)
    with torch.no_grad():
        start = primed(image).anomaly_map
        baseline = default(image).anomaly_map
    # The head's weights still see the features, but the start is near the prior, far below the default.
    assert start.mean() < 0.05 < baseline.mean()
    with pytest.raises(ValueError, match="head_prior"):
        DraemConfig(head_prior=1.0)


def test_uses_group_norm_only(model):
    kinds = {type(m).__name__ for m in model.modules()}
    assert "GroupNorm" in kinds and not any("BatchNorm" in k for k in kinds)
    assert len(list(model.buffers())) == 0  # nothing a functional lookahead could miss


def test_per_sample_loss_averages_to_the_mean_loss(model):
    image, clean, mask = _batch()
    out = model(image)
    loss = DraemLoss()
    per = loss.per_sample(out, clean, mask)
    assert per.shape == (3,)
    assert torch.allclose(per.mean(), loss(out, clean, mask))
    # The mean-reduced DRAEM loss computed over the whole batch at once.
    terms = loss.terms(out, clean, mask)
    l2 = torch.nn.functional.mse_loss(out.reconstruction, clean)
    assert torch.allclose(terms["l2"].mean(), l2)
    weights = torch.tensor([0.0, 2.0, 1.0])
    assert torch.allclose(loss(out, clean, mask, weights), (per * weights).mean())
    with pytest.raises(ValueError, match="weights"):
        loss(out, clean, mask, torch.ones(2))


def test_ssim_is_one_for_identical_images():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim_per_sample(x, x), torch.ones(2), atol=1e-5)
    assert (ssim_per_sample(x, torch.rand(2, 3, 32, 32)) < 0.5).all()


def test_a_few_adamw_steps_lower_the_loss(model):
    image, clean, mask = _batch(seed=1)
    loss_fn = DraemLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = loss_fn(model(image), clean, mask).item()
    for _ in range(8):
        optimizer.zero_grad()
        loss_fn(model(image), clean, mask).backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_fn(model(image), clean, mask).item()
    assert after < before
