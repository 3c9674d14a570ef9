"""SAM through segment-anything's own classes: a tiny random model, safe loading.

No SAM weights exist offline, so the predictor path runs on a small randomly
initialised SAM built from the library's modules (64 px input); its masks mean
nothing, so the tests check shapes, determinism, and that the output follows
the documented selection rule applied to SAM's own candidates.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from segment_anything import sam_model_registry
from segment_anything.modeling import Sam

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.foreground import SAM_MODELS, make_extractor
from maphc2f_data.foreground.classical import DEFAULT_CONFIG, tidy_mask
from maphc2f_data.foreground.sam import SamForeground, SamSelection, select_object_mask
from maphc2f_data.models import sam as sam_models


@pytest.fixture(scope="module")
def tiny_sam() -> Sam:
    return sam_models.build_tiny_sam(seed=0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    picture = np.full((72, 96, 3), 40, np.uint8)
    picture[18:56, 24:70] = (200, 170, 60)
    return np.clip(picture + rng.normal(0, 4, picture.shape), 0, 255).astype(np.uint8)


def _tensors_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------
# The real predictor path on a tiny SAM
# ---------------------------------------------------------------------------
def test_tiny_sam_is_built_from_segment_anything_classes(tiny_sam):
    assert isinstance(tiny_sam, Sam)
    assert tiny_sam.image_encoder.img_size == 64
    assert not tiny_sam.training
    assert sum(p.numel() for p in tiny_sam.parameters()) < 200_000


def test_build_tiny_sam_is_seeded_and_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    a = sam_models.build_tiny_sam(seed=3).state_dict()
    b = sam_models.build_tiny_sam(seed=3).state_dict()
    c = sam_models.build_tiny_sam(seed=4).state_dict()
    assert torch.equal(before, torch.random.get_rng_state())
    assert _tensors_equal(a, b)
    assert not _tensors_equal(a, c)


def test_box_prompter_returns_three_candidates(tiny_sam, image):
    prompter = sam_models.SamBoxPrompter(tiny_sam, device="cpu")
    masks, scores = prompter(image)
    assert masks.shape == (3, 72, 96) and masks.dtype == np.bool_
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_sam_foreground_output_follows_the_selection_rule(tiny_sam, image):
    extractor = SamForeground(tiny_sam, "vit_b", device="cpu")
    assert extractor.method == "sam-vit_b"
    assert str(extractor.device) == "cpu"
    mask = extractor(image)
    assert mask.shape == (72, 96) and mask.dtype == np.bool_
    # Independently: SAM's candidates, the documented rule, the shared tidy-up.
    masks, scores = sam_models.SamBoxPrompter(tiny_sam, device="cpu")(image)
    index = select_object_mask(masks, scores)
    expected = tidy_mask(masks[index], DEFAULT_CONFIG) if index is not None else None
    if expected is None or not expected.any():
        expected = np.ones((72, 96), bool)
    assert np.array_equal(mask, expected)


def test_sam_foreground_is_deterministic_across_identical_models(image):
    first = SamForeground(sam_models.build_tiny_sam(seed=1), "vit_h", device="cpu")
    second = SamForeground(sam_models.build_tiny_sam(seed=1), "vit_h", device="cpu")
    assert np.array_equal(first(image), second(image))
    assert np.array_equal(first(image), first(image))


def test_sam_foreground_validates_inputs(tiny_sam):
    with pytest.raises(UserError, match="vit_h, vit_l, vit_b"):
        SamForeground(tiny_sam, "vit_x")
    with pytest.raises(TypeError, match="Sam model"):
        SamForeground(object(), "vit_b")
    extractor = SamForeground(tiny_sam, "vit_b", device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        extractor(np.zeros((32, 32), np.uint8))


def test_centred_box_covers_the_central_ninety_percent():
    assert np.allclose(sam_models.centred_box(100, 200), [10, 5, 190, 95])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_asking_for_cuda_without_it_is_a_user_error(tiny_sam):
    with pytest.raises(UserError, match="CUDA is not available"):
        sam_models.resolve_device("cuda")
    assert sam_models.resolve_device(None).type == "cpu"


@pytest.mark.gpu
def test_tiny_sam_runs_on_cuda_like_on_cpu(image):
    cpu = SamForeground(sam_models.build_tiny_sam(seed=2), "vit_b", device="cpu")
    gpu = SamForeground(sam_models.build_tiny_sam(seed=2), "vit_b")
    assert gpu.device.type == "cuda"
    on_gpu = gpu(image)
    assert on_gpu.shape == (72, 96) and on_gpu.dtype == np.bool_
    # Kernels differ slightly; the masks must still agree almost everywhere.
    assert (on_gpu == cpu(image)).mean() > 0.95


# ---------------------------------------------------------------------------
# Candidate selection rule (numpy only)
# ---------------------------------------------------------------------------
def _candidates():
    masks = np.zeros((3, 40, 40), bool)
    masks[0, 16:24, 16:24] = True  # part
    masks[1, 8:32, 8:32] = True  # whole object
    masks[2] = True  # everything
    masks[2, 0, 0] = False
    return masks


def test_selection_prefers_the_largest_confident_valid_candidate():
    masks = _candidates()
    assert select_object_mask(masks, np.array([0.90, 0.88, 0.99])) == 1
    # The whole object is chosen only while SAM is about as confident in it.
    assert select_object_mask(masks, np.array([0.95, 0.70, 0.99])) == 0


def test_selection_rejects_border_hugging_tiny_and_huge_masks():
    masks = np.zeros((3, 40, 40), bool)
    masks[0, :, :25] = True  # touches 3 sides: > half the frame
    masks[0, 10:30, 10:30] = True
    masks[1, 20, 20] = True  # 1 pixel: under min_fraction
    masks[2, 1:39, 1:39] = True  # 90% of the image but clear of the frame
    assert select_object_mask(masks[:2], np.array([0.9, 0.9])) is None
    assert select_object_mask(masks, np.array([0.99, 0.99, 0.5])) == 2
    assert select_object_mask(masks, np.array([0.9, 0.9, 0.5]), SamSelection(max_fraction=0.5)) is None


def test_selection_validates_shapes():
    with pytest.raises(ValueError, match="scores"):
        select_object_mask(np.zeros((3, 8, 8), bool), np.zeros(2))


# ---------------------------------------------------------------------------
# Checkpoints: round trips, refusals, mismatches
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_checkpoint_round_trip_into_a_fresh_model(tmp_path, suffix, image):
    trained = sam_models.build_tiny_sam(seed=11)
    state = trained.state_dict()
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    fresh = sam_models.build_tiny_sam(seed=12)
    assert not _tensors_equal(fresh.state_dict(), state)
    sam_models.load_state_dict_into(fresh, sam_models.read_state_dict(path), path)
    assert _tensors_equal(fresh.state_dict(), state)
    assert np.array_equal(
        SamForeground(fresh, "vit_b", device="cpu")(image),
        SamForeground(trained, "vit_b", device="cpu")(image),
    )


class _RunsCodeWhenUnpickled:
    """A checkpoint payload that would create a directory if unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "unpickled-code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1), "payload": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(CheckpointError) as caught:
        sam_models.read_state_dict(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and "pickled" in message
    assert not marker.exists()


def test_missing_checkpoint_is_a_one_line_checkpoint_error(tmp_path):
    path = tmp_path / "nowhere" / "sam_vit_h.pth"
    for call in (
        lambda: sam_models.read_state_dict(path),
        lambda: sam_models.build_sam("vit_h", path),
        lambda: make_extractor(path, "vit_h"),
    ):
        with pytest.raises(CheckpointError) as caught:
            call()
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="cannot read SAM checkpoint") as caught:
        sam_models.read_state_dict(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_checkpoint_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        sam_models.read_state_dict(path)


def test_mismatched_checkpoint_names_the_path_and_the_problem(tmp_path):
    other = sam_models.build_tiny_sam(seed=0, encoder_dim=48).state_dict()
    path = tmp_path / "other.pth"
    torch.save(other, path)
    model = sam_models.build_tiny_sam(seed=0)
    with pytest.raises(CheckpointError, match="wrong-shape") as caught:
        sam_models.load_state_dict_into(model, sam_models.read_state_dict(path), path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)

    state = sam_models.build_tiny_sam(seed=0).state_dict()
    state.pop("mask_decoder.iou_token.weight")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="1 missing .*1 unexpected"):
        sam_models.load_state_dict_into(model, state, path)


def test_make_extractor_goes_through_the_registry_and_checks_the_checkpoint(tmp_path):
    # A tiny model's weights cannot fill vit_b: the file is read safely, the
    # registry model is built, and the mismatch is a CheckpointError.
    path = tmp_path / "tiny.safetensors"
    save_file(sam_models.build_tiny_sam(seed=0).state_dict(), str(path))
    with pytest.raises(CheckpointError, match="does not match"):
        make_extractor(path, "vit_b", device="cpu")


def test_unknown_model_type_lists_the_valid_ones():
    with pytest.raises(UserError, match="vit_h, vit_l, vit_b"):
        sam_models.build_sam("vit_q")
    assert sam_models.SAM_MODELS == SAM_MODELS
    assert set(SAM_MODELS) <= set(sam_model_registry)
