"""CheckpointRefiner: loads tiny checkpoints, refines batches, keeps pixels outside the mask band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.refine import CheckpointRefiner, Refiner, refiner_fingerprint
from maphc2f_data.refine.checkpoints import file_sha256


def _sample(size=61, seed=0):
    rng = np.random.default_rng(seed)
    normal = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    mask[20:35, 15:40] = True
    raw = normal.copy()
    raw[mask] = (200, 60, 20)
    return normal, raw, mask


def test_two_stage_refiner_protocol_and_fingerprint(checkpoints):
    npcf, npcfpp = checkpoints
    refiner = CheckpointRefiner(npcf, npcfpp, device="cpu", dilate_px=2)
    assert isinstance(refiner, Refiner) and refiner.stage == "npcf++"
    assert refiner.fingerprint == {"npcf": file_sha256(npcf), "npcfpp": file_sha256(npcfpp), "dilate_px": 2}
    assert CheckpointRefiner(npcf, device="cpu").stage == "npcf"
    assert refiner_fingerprint(npcf)["npcfpp"] is None


def test_odd_sizes_are_padded_and_outside_the_band_is_the_normal_image(checkpoints):
    from scipy import ndimage

    refiner = CheckpointRefiner(*checkpoints, device="cpu", dilate_px=2, batch_size=2)
    samples = [_sample(61, seed) for seed in range(3)]  # 61 is no multiple of 8
    out = refiner.refine_batch(*zip(*samples))
    assert out.shape == (3, 61, 61, 3) and out.dtype == np.uint8
    for (normal, raw, mask), refined in zip(samples, out):
        band = ndimage.binary_dilation(mask, np.ones((5, 5), bool))
        assert np.array_equal(refined[~band], normal[~band])
        assert np.abs(refined[mask].astype(int) - normal[mask]).mean() > 20  # the anomaly survives
    single = refiner.refine(*samples[1])
    assert np.array_equal(single, out[1])


def test_wrong_or_missing_checkpoints_are_one_line_errors(checkpoints, tmp_path):
    npcf, npcfpp = checkpoints
    with pytest.raises(CheckpointError, match="expected a 'npcf' checkpoint"):
        CheckpointRefiner(npcfpp, device="cpu")
    with pytest.raises(CheckpointError, match="expected a 'npcfpp' checkpoint"):
        CheckpointRefiner(npcf, npcf, device="cpu")
    with pytest.raises(CheckpointError, match="not found"):
        CheckpointRefiner(tmp_path / "nope.safetensors", device="cpu")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        CheckpointRefiner(junk, device="cpu")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError):
        CheckpointRefiner(npcf, device="cpu", dilate_px=-1)


def test_importing_the_refiner_module_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, maphc2f_data.refine.checkpoints; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_compiled_refiner_matches_eager_and_is_fingerprinted(checkpoints):
    eager = CheckpointRefiner(*checkpoints, device="cpu", dilate_px=2, batch_size=2)
    compiled = CheckpointRefiner(*checkpoints, device="cpu", dilate_px=2, batch_size=2, compile=True)
    assert compiled.fingerprint == {**eager.fingerprint, "compiled": True}
    # Three samples in batches of 2: the last batch is padded to 2 (one compiled graph), its padding dropped.
    normals, raws, masks = zip(*(_sample(32, seed=4 + i) for i in range(3)))
    a, b = eager.refine_batch(normals, raws, masks), compiled.refine_batch(normals, raws, masks)
    assert a.shape == b.shape == (3, 32, 32, 3)
    # Fused kernels may round a few values to the neighbouring uint8; nothing more.
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert not np.array_equal(b[2], normals[2])
    assert np.abs(compiled.refine(normals[2], raws[2], masks[2]).astype(int) - b[2]).max() <= 1
