import pytest
import torch
import torch.nn.functional as F

from maphc2f_data.errors import CheckpointError
from maphc2f_data.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_normalize,
    load_state_dict_file,
    torchvision_backbone,
    vgg16_features,
    wide_resnet50_2_features,
    TorchvisionFeatures,
)


def _image(name: str) -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255.0
    return F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)


@pytest.mark.parametrize("name, label, min_prob", [("coffee", 967, 0.6), ("chelsea", 285, 0.5)])
def test_efficientnet_lite0_classifies_imagenet_pictures(effnet, name, label, min_prob):
    probs = effnet.logits(_image(name)).softmax(-1)[0]
    assert probs.argmax().item() == label  # 967 espresso, 285 Egyptian cat
    assert probs[label].item() > min_prob


def test_efficientnet_features_pooled_and_frozen(effnet):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    features, pooled = effnet(x)
    assert [f.shape[1] for f in features] == [16, 24, 40, 112, 320]
    assert [f.shape[-1] for f in features] == [32, 16, 8, 4, 2]
    assert pooled.shape == (1, 1280)
    short, none = effnet(x, max_level=2)
    assert len(short) == 2 and none is None
    effnet.train()
    assert not effnet.training and not any(p.requires_grad for p in effnet.parameters())
    features[0].sum().backward()
    assert x.grad is not None  # gradients reach the input (perceptual loss)


def test_imagenet_normalisation_constants():
    x = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(imagenet_normalize(x), torch.ones(1, 3, 1, 1))


@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    folder = tmp_path_factory.mktemp("tv")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "r18.safetensors"))
    torch.save({"state_dict": state}, folder / "r18.pth")
    return model, folder


@pytest.mark.parametrize("filename", ["r18.safetensors", "r18.pth"])
def test_torchvision_loader_reproduces_the_saved_model(resnet18_files, filename):
    reference, folder = resnet18_files
    model = torchvision_backbone("resnet18", folder / filename)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    features = TorchvisionFeatures(model, ("layer1", "layer2", "layer3"))(x)
    assert [f.shape[1] for f in features] == [64, 128, 256]


def test_torchvision_loader_refuses_bad_files(resnet18_files, tmp_path):
    _, folder = resnet18_files
    with pytest.raises(CheckpointError, match="not found: .*missing.pth"):
        vgg16_features(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="not found"):
        wide_resnet50_2_features(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read torch weights .*junk.pth"):
        load_state_dict_file(junk)
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_state_dict_file(junk_st)
    with pytest.raises(CheckpointError, match="does not fit resnet34: .*missing"):
        torchvision_backbone("resnet34", folder / "r18.safetensors")


def test_pickled_objects_are_refused(tmp_path):
    import argparse

    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "obj": argparse.Namespace(cmd="rm -rf")}, path)
    with pytest.raises(CheckpointError, match="evil.pth: it holds pickled Python objects"):
        load_state_dict_file(path)
