import pytest
import torch

from maphc2f_data.models.factory import create_model, list_models
from maphc2f_data.models.registry import MODELS


def test_builtin_models_and_tiny_variants_are_registered():
    names = list_models()
    for name in ("npcf", "npcf-tiny", "npcfpp", "npcfpp-tiny"):
        assert name in names
    assert MODELS["npcf-tiny"].family == "npcf"
    assert MODELS["npcfpp"].family == "npcfpp"


def test_create_model_applies_overrides_and_stamps_the_name():
    model = create_model("npcf-tiny", widths=[4, 4, 8])  # JSON lists come back as tuples
    assert model.config.widths == (4, 4, 8)
    assert model.registry_name == "npcf-tiny"


def test_seed_is_reproducible_and_leaves_the_global_stream_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = create_model("npcfpp-tiny", seed=7)
    after = torch.rand(1)
    b = create_model("npcfpp-tiny", seed=7)
    assert torch.equal(after, expected_next)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_unknown_names_and_fields_are_named():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="no field.*colour"):
        create_model("npcf-tiny", colour=3)
