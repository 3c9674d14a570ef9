import json

import pytest
import torch
from safetensors.torch import save_file

from maphc2f_data.errors import CheckpointError
from maphc2f_data.models.checkpoint import checkpoint_sha256, load_checkpoint, read_checkpoint_info, save_checkpoint
from maphc2f_data.models.npcf.torch_model import NpcfConfig
from maphc2f_data.models.factory import create_model


@pytest.mark.parametrize("name", ["npcf-tiny", "npcfpp-tiny"])
def test_round_trip_is_exact(tmp_path, name, make_batch):
    model = create_model(name, seed=0)
    x, a, m = make_batch(1, 32, 32)
    model.train()
    model(x, a, m)  # move the batch-norm running statistics off their defaults
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    model.eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, config=model.config, metadata={"epochs": 3, "lr": 1e-4})
    loaded, info = load_checkpoint(path, expected_name=name.split("-")[0])
    assert info.model_name == name and info.metadata == {"epochs": 3, "lr": 1e-4}
    assert loaded.config == model.config and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) and original[k].dtype == restored[k].dtype for k in original)
    with torch.no_grad():
        assert torch.equal(model(x, a, m), loaded(x, a, m))
    assert len(checkpoint_sha256(path)) == 64
    assert not (tmp_path / "m.safetensors.tmp").exists()


def test_metadata_is_plain_json(tmp_path):
    model = create_model("npcf-tiny", seed=0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, metadata={"batch_size": 32})
    info = read_checkpoint_info(path)
    assert info.config["widths"] == [4, 8] and info.family == "npcf"
    json.dumps(info.config)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.safetensors"):
        load_checkpoint(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"PK\x03\x04 not safetensors at all")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint: .*junk.safetensors"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="plain.safetensors is a safetensors file but not a maphc2f"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        checkpoint_sha256(tmp_path / "nope.safetensors")


def test_wrong_name_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", create_model("npcf-tiny", seed=0))
    with pytest.raises(CheckpointError, match=r"holds model 'npcf-tiny', expected 'npcfpp'"):
        load_checkpoint(path, expected_name="npcfpp")


def test_config_key_and_shape_mismatches(tmp_path):
    model = create_model("npcf-tiny", seed=0)
    wider = save_checkpoint(tmp_path / "w.safetensors", model, config=NpcfConfig(widths=(4, 16)))
    with pytest.raises(CheckpointError, match=r"w.safetensors does not match model 'npcf-tiny': .* has shape"):
        load_checkpoint(wider)
    deeper = save_checkpoint(tmp_path / "d.safetensors", model, config=NpcfConfig(widths=(4, 8), blocks_per_stage=2))
    with pytest.raises(CheckpointError, match=r"d.safetensors does not match model 'npcf-tiny': missing"):
        load_checkpoint(deeper)
    odd = save_checkpoint(tmp_path / "o.safetensors", model, config={"widths": [4, 8], "colour": 1})
    with pytest.raises(CheckpointError, match=r"o.safetensors: its config does not fit model 'npcf-tiny'.*colour"):
        load_checkpoint(odd)
