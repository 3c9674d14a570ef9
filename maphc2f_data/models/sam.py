"""Segment Anything (SAM) models: safe checkpoint loading and box-prompted masks.

Everything that touches torch or ``segment_anything`` for foreground
extraction lives here; :mod:`maphc2f_data.foreground.sam` (the layer above)
imports this module only when a SAM extractor is actually built, and this
module never imports the foreground package back.

* :func:`build_sam` builds a ``vit_b`` / ``vit_l`` / ``vit_h`` model with
  segment-anything's own registry and loads weights **without unpickling
  arbitrary objects**: ``.safetensors`` through safetensors, anything else
  through ``torch.load(..., weights_only=True)``. The file is read (and
  refused if bad) before the large model is constructed.
* :func:`build_tiny_sam` makes a small randomly initialised SAM from the same
  library classes (64 px input), so tests run the real code path on CPU in
  milliseconds.
* :class:`SamBoxPrompter` encodes an image once (``SamPredictor.set_image``)
  and returns SAM's three candidate masks for a centred box prompt; choosing
  among them is :func:`maphc2f_data.foreground.sam.select_object_mask`.
"""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.names import SAM_MODELS, check_sam_model

__all__ = [
    "SAM_MODELS",
    "SamBoxPrompter",
    "build_sam",
    "build_tiny_sam",
    "centred_box",
    "load_state_dict_into",
    "read_state_dict",
    "resolve_device",
]

PathLike = Union[str, Path]

#: Fraction of each image side the box prompt covers (centred): generous
#: enough to enclose objects that are not perfectly centred, small enough
#: that SAM reads it as "the object in here", not "the whole picture".
BOX_FRACTION = 0.9


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _unpickling_detail(exc: BaseException) -> str:
    """The informative line of torch's multi-line weights_only error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines[1:]:
        if not line.startswith(("Please file an issue", "Check the documentation")):
            return line.rstrip(".")
    return lines[0] if lines else type(exc).__name__


def read_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Read a checkpoint's tensors without running pickled code.

    Parameters
    ----------
    path : str or Path
        ``*.safetensors`` (read with safetensors) or a torch checkpoint
        (``torch.load(..., weights_only=True)``: plain tensors and containers
        only; a file that needs arbitrary classes or functions is refused).

    Returns
    -------
    dict of str -> torch.Tensor
        On the CPU.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, holds pickled objects, or is not a
        flat mapping of names to tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(exc)
        if "GLOBAL" in detail:
            raise CheckpointError(
                f"refusing SAM checkpoint {path}: it holds pickled Python objects, not only tensors "
                f"({detail[:160]}); only weights-only .pth and .safetensors files are loaded"
            ) from exc
        raise CheckpointError(f"cannot read SAM checkpoint {path}: not a torch weights file ({detail[:160]})") from exc
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a bad file
        raise CheckpointError(f"cannot read SAM checkpoint {path}: {_one_line(exc)[:200]}") from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise CheckpointError(
            f"SAM checkpoint {path} is not a state dict (a flat mapping of names to tensors); "
            f"got {type(state).__name__}"
        )
    return dict(state)


def load_state_dict_into(sam: torch.nn.Module, state: Mapping[str, torch.Tensor], path: PathLike) -> torch.nn.Module:
    """Copy ``state`` into ``sam`` after checking names and shapes match exactly.

    Parameters
    ----------
    sam : torch.nn.Module
        The model (any SAM variant).
    state : mapping of str -> torch.Tensor
        From :func:`read_state_dict`.
    path : str or Path
        Where ``state`` came from (named in errors).

    Returns
    -------
    torch.nn.Module
        ``sam``, in eval mode.

    Raises
    ------
    CheckpointError
        Missing or unexpected keys, or a tensor of the wrong shape.
    """
    own = sam.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(key for key in set(own) & set(state) if tuple(own[key].shape) != tuple(state[key].shape))
    if missing or unexpected or wrong_shape:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", wrong_shape)):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {keys[0]!r})")
        raise CheckpointError(
            f"SAM checkpoint {path} does not match the model: {', '.join(problems)}; "
            f"check --sam-model ({'|'.join(SAM_MODELS)})"
        )
    sam.load_state_dict(state, strict=True)
    return sam.eval()


def build_sam(model_type: str, checkpoint: Optional[PathLike] = None) -> Sam:
    """A SAM model of ``model_type`` from segment-anything's registry.

    Parameters
    ----------
    model_type : {"vit_b", "vit_l", "vit_h"}
    checkpoint : str or Path, optional
        Weights (the official ``sam_vit_h_4b8939.pth`` etc., or a
        ``.safetensors`` conversion). The file is validated before the model
        is constructed. None gives random weights (slow to build for vit_h,
        and useless for segmentation).

    Returns
    -------
    segment_anything.modeling.Sam
        On the CPU, in eval mode.

    Raises
    ------
    UserError
        Unknown ``model_type``.
    CheckpointError
        See :func:`read_state_dict` and :func:`load_state_dict_into`.
    """
    check_sam_model(model_type)
    state = read_state_dict(checkpoint) if checkpoint is not None else None
    # The registry's own loader would torch.load without weights_only; build
    # empty and load the already-validated tensors ourselves.
    sam = sam_model_registry[model_type](checkpoint=None)
    if state is not None:
        load_state_dict_into(sam, state, checkpoint)
    return sam.eval()


def build_tiny_sam(
    *,
    seed: int = 0,
    img_size: int = 64,
    patch_size: int = 8,
    encoder_dim: int = 32,
    encoder_depth: int = 2,
    encoder_heads: int = 2,
    prompt_dim: int = 32,
) -> Sam:
    """A small randomly initialised SAM built from segment-anything's classes.

    Same wiring as ``segment_anything.build_sam._build_sam`` (windowed ViT
    encoder with relative positions and one global-attention block, prompt
    encoder, two-way-transformer mask decoder with three multimask outputs),
    scaled down so the full predictor path runs on a CPU in milliseconds.
    For tests and smoke runs; its masks mean nothing.

    Parameters
    ----------
    seed : int
        Seeds the weight initialisation (global torch RNG state is restored).
    img_size, patch_size, encoder_dim, encoder_depth, encoder_heads, prompt_dim : int
        Architecture sizes; ``img_size`` must be a multiple of ``patch_size``
        and ``prompt_dim`` a multiple of 8.

    Returns
    -------
    segment_anything.modeling.Sam
        On the CPU, in eval mode.
    """
    if img_size % patch_size or prompt_dim % 8:
        raise ValueError(
            f"need img_size % patch_size == 0 and prompt_dim % 8 == 0, got {img_size}, {patch_size}, {prompt_dim}"
        )
    grid = img_size // patch_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=encoder_depth,
                embed_dim=encoder_dim,
                img_size=img_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=encoder_heads,
                patch_size=patch_size,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=(encoder_depth - 1,),
                window_size=max(1, grid // 2),
                out_chans=prompt_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=prompt_dim,
                image_embedding_size=(grid, grid),
                input_image_size=(img_size, img_size),
                mask_in_chans=4,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=1, embedding_dim=prompt_dim, mlp_dim=2 * prompt_dim, num_heads=2),
                transformer_dim=prompt_dim,
                iou_head_depth=2,
                iou_head_hidden_dim=prompt_dim,
            ),
        )
    return sam.eval()


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``device``, or CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise UserError(f"invalid torch device {device!r}: {_one_line(exc)}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but CUDA is not available")
    return resolved


def centred_box(height: int, width: int, fraction: float = BOX_FRACTION) -> np.ndarray:
    """XYXY box (float, pixel units) covering the central ``fraction`` of each side."""
    margin_x = 0.5 * (1 - fraction) * width
    margin_y = 0.5 * (1 - fraction) * height
    return np.array([margin_x, margin_y, width - margin_x, height - margin_y], dtype=np.float64)


class SamBoxPrompter:
    """Candidate object masks from SAM with a centred box prompt.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        Any SAM (a registry model with weights, or :func:`build_tiny_sam`).
        Moved to ``device``.
    device : str or torch.device, optional
        Default: CUDA when available, else the CPU.
    box_fraction : float
        See :data:`BOX_FRACTION`.
    """

    def __init__(self, sam: Sam, device: Optional[Union[str, torch.device]] = None, box_fraction: float = BOX_FRACTION):
        if not isinstance(sam, Sam):
            raise TypeError(f"sam must be a segment_anything Sam model, got {type(sam).__name__}")
        self.device = resolve_device(device)
        self.sam = sam.to(self.device).eval()
        self.predictor = SamPredictor(self.sam)
        self.box_fraction = float(box_fraction)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """SAM's three multimask candidates for the centred box.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3)
            RGB image.

        Returns
        -------
        masks : ndarray of bool, shape (3, H, W)
        scores : ndarray of float32, shape (3,)
            SAM's predicted IoU of each mask.
        """
        height, width = image.shape[:2]
        self.predictor.set_image(np.ascontiguousarray(image), image_format="RGB")
        try:
            masks, scores, _ = self.predictor.predict(
                box=centred_box(height, width, self.box_fraction), multimask_output=True
            )
        finally:
            self.predictor.reset_image()  # drop the embedding: one image at a time
        return np.asarray(masks, dtype=bool), np.asarray(scores, dtype=np.float32)
