"""The npcF / npcF++ refiner: trained checkpoints applied to raw anomalies.

:class:`CheckpointRefiner` loads the safetensors checkpoints once (an npcF
checkpoint, optionally an npcF++ one) and refines

    raw (stage A) --npcF(x, raw, M)--> b1 --npcF++(x, b1, M)--> u

then pastes ``u`` back onto the *normal* image: pixels farther than
``dilate_px`` from the mask are the normal image's bytes exactly, so the
refinement can only act on the anomaly and a thin band across its border
(where the seam is). Both networks pad inputs of any size to the multiple
they need and crop their output back, so any square size works.

Torch is imported inside the constructor and the functions that need it;
importing this module costs nothing. :func:`refiner_fingerprint` hashes the
checkpoints without torch (the build planner mixes it into plan hashes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from maphc2f_data.errors import CheckpointError, UserError
from maphc2f_data.names import STAGES

__all__ = ["DEFAULT_DILATE_PX", "CheckpointRefiner", "check_checkpoints", "file_sha256", "refiner_fingerprint"]

#: Pixels around the mask the refined output may change. npcF++'s synergy
#: blocks act on a band of ``boundary_px`` (8 at full size) across the mask
#: border; 4 px outside lets them blend the seam while every pixel farther
#: out stays the normal image's.
DEFAULT_DILATE_PX = 4

PathLike = Union[str, Path]


def file_sha256(path: PathLike, what: str = "checkpoint") -> str:
    """Hex SHA-256 of a file; :class:`CheckpointError` when it is missing."""
    from maphc2f_data.dataset.shards import sha256_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    return sha256_file(path)


def refiner_fingerprint(npcf: PathLike, npcfpp: Optional[PathLike] = None,
                        dilate_px: int = DEFAULT_DILATE_PX) -> Dict[str, Any]:
    """What changes a refined sample's bytes: both checkpoints' hashes and the paste-back band.

    Examples
    --------
    >>> refiner_fingerprint("missing.safetensors")
    Traceback (most recent call last):
    ...
    maphc2f_data.errors.CheckpointError: checkpoint not found: missing.safetensors
    """
    return {
        "npcf": file_sha256(npcf, "npcF checkpoint"),
        "npcfpp": file_sha256(npcfpp, "npcF++ checkpoint") if npcfpp else None,
        "dilate_px": int(dilate_px),
    }


def check_checkpoints(npcf: Optional[PathLike], npcfpp: Optional[PathLike] = None) -> None:
    """Refuse missing checkpoints or ones of the wrong model family (one line each), without loading tensors."""
    if npcf is None:
        if npcfpp is not None:
            raise UserError("--npcfpp needs --npcf (npcF++ refines npcF's output)")
        return
    from maphc2f_data.models.checkpoint import read_checkpoint_info

    for path, family in ((npcf, "npcf"), (npcfpp, "npcfpp")):
        if path is None:
            continue
        info = read_checkpoint_info(Path(path).expanduser())
        if family not in (info.model_name, info.family):
            raise CheckpointError(f"{path} holds model {info.model_name!r}, expected a {family!r} checkpoint")


class CheckpointRefiner:
    """Refine with trained npcF (and optionally npcF++) checkpoints.

    Parameters
    ----------
    npcf : path
        npcF checkpoint (``maphc2f train npcf``).
    npcfpp : path, optional
        npcF++ checkpoint (``maphc2f train npcfpp``); without it the stage is "npcf".
    device : str, optional
        Torch device; default CUDA when available, else the CPU.
    amp : bool, optional
        bf16 autocast (and channels-last memory) on CUDA; default on for
        CUDA. The CPU always runs float32.
    dilate_px : int
        Pixels around the mask the output may differ from the normal image.
    batch_size : int, optional
        Samples per forward pass in :meth:`refine_batch`; default 16 on CUDA
        (builds send 32 or more at once), 8 on the CPU.
    compile : bool
        Run the networks through ``torch.compile`` (off by default: the first
        batch of each new shape pays the compilation, 20-45 s per network on
        a GPU, and outputs may differ from eager ones in the last bit, so the
        fingerprint records it). A partial batch is padded to ``batch_size``
        (repeating its last sample), so each image size compiles once, however
        a build groups its samples. On an H200 at 512 px, batch 32, bf16 it
        doubles npcF then npcF++ throughput (86 -> 175 images/s).

    Raises
    ------
    CheckpointError
        A checkpoint is missing, corrupt or of the wrong model family.
    """

    def __init__(self, npcf: PathLike, npcfpp: Optional[PathLike] = None, *, device: Optional[str] = None,
                 amp: Optional[bool] = None, dilate_px: int = DEFAULT_DILATE_PX, batch_size: Optional[int] = None,
                 compile: bool = False) -> None:
        import torch

        from maphc2f_data.models.checkpoint import load_checkpoint

        if dilate_px < 0:
            raise UserError(f"--dilate-px must be >= 0, got {dilate_px}")
        if batch_size is not None and batch_size < 1:
            raise UserError(f"refiner batch size must be positive, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.amp = (self.device.type == "cuda") if amp is None else bool(amp) and self.device.type == "cuda"
        self.dilate_px = int(dilate_px)
        self.batch_size = int(batch_size) if batch_size is not None else (16 if self.device.type == "cuda" else 8)
        self.paths = {"npcf": str(Path(npcf).expanduser()), "npcfpp": str(Path(npcfpp).expanduser()) if npcfpp else None}
        check_checkpoints(npcf, npcfpp)
        self.fingerprint: Dict[str, Any] = refiner_fingerprint(npcf, npcfpp, dilate_px)
        self.npcf, self.npcf_info = load_checkpoint(self.paths["npcf"], expected_name="npcf", map_location=self.device)
        self.npcfpp, self.npcfpp_info = (None, None)
        if npcfpp:
            self.npcfpp, self.npcfpp_info = load_checkpoint(self.paths["npcfpp"], expected_name="npcfpp",
                                                            map_location=self.device)
        for model in (self.npcf, self.npcfpp):
            if model is not None:
                model.requires_grad_(False)
                if self.amp:
                    model.to(memory_format=torch.channels_last)
        self.stage: str = STAGES[2] if npcfpp else STAGES[1]
        self.compiled = bool(compile)
        if self.compiled:  # compiled kernels may round differently: a resume must not mix the two
            self.fingerprint["compiled"] = True
        self._run_npcf, self._run_npcfpp = self.npcf, self.npcfpp
        if self.compiled:
            self._run_npcf = torch.compile(self.npcf, dynamic=False)
            self._run_npcfpp = torch.compile(self.npcfpp, dynamic=False) if self.npcfpp is not None else None

    def __repr__(self) -> str:
        return f"CheckpointRefiner(stage={self.stage!r}, device={str(self.device)!r}, npcf={self.paths['npcf']!r})"

    def forward(self, x, raw, mask):
        """The networks on float tensors in [0, 1]: ``(N, 3, H, W)`` x2 and ``(N, 1, H, W)`` -> ``(N, 3, H, W)``
        float32 (no paste-back)."""
        import contextlib

        import torch

        autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if self.amp
                    else contextlib.nullcontext())
        if self.amp:
            x, raw, mask = (t.contiguous(memory_format=torch.channels_last) for t in (x, raw, mask))
        with torch.inference_mode(), autocast:
            out = self._run_npcf(x, raw, mask)
            if self._run_npcfpp is not None:
                out = self._run_npcfpp(x, out.to(x.dtype), mask)
        return out.float()

    def refine_batch(self, normals: Sequence[np.ndarray], raws: Sequence[np.ndarray],
                     masks: Sequence[np.ndarray]) -> np.ndarray:
        """Refine ``N`` samples of one size.

        Parameters
        ----------
        normals, raws : sequence of ndarray of uint8, shape (H, W, 3)
        masks : sequence of ndarray of bool, shape (H, W)

        Returns
        -------
        ndarray of uint8, shape (N, H, W, 3)
            Equal to ``normals`` outside the masks dilated by ``dilate_px``.
        """
        import torch

        from maphc2f_data.models.compose import paste_back

        normals = np.ascontiguousarray(np.stack([np.asarray(a) for a in normals]))
        raws = np.ascontiguousarray(np.stack([np.asarray(a) for a in raws]))
        masks = np.ascontiguousarray(np.stack([np.asarray(a) for a in masks]).astype(bool))
        if normals.dtype != np.uint8 or raws.dtype != np.uint8 or normals.shape != raws.shape or normals.ndim != 4:
            raise ValueError(f"refine_batch needs uint8 (N, H, W, 3) normals and raws of one shape, got "
                             f"{normals.dtype} {normals.shape} and {raws.dtype} {raws.shape}")
        if masks.shape != normals.shape[:3]:
            raise ValueError(f"masks {masks.shape} do not match images {normals.shape}")
        out = np.empty_like(raws)
        for start in range(0, len(raws), self.batch_size):
            end = min(start + self.batch_size, len(raws))
            chunk = np.arange(start, end)
            if self.compiled:  # pad to a full batch: one compiled graph per image size, not one per batch length
                chunk = np.concatenate([chunk, np.full(self.batch_size - len(chunk), end - 1)])
            normal_u8 = torch.from_numpy(normals[chunk]).permute(0, 3, 1, 2).to(self.device)
            raw_u8 = torch.from_numpy(raws[chunk]).permute(0, 3, 1, 2).to(self.device)
            mask = torch.from_numpy(masks[chunk]).unsqueeze(1).to(self.device, torch.float32)
            refined = self.forward(normal_u8.float() / 255.0, raw_u8.float() / 255.0, mask)
            refined_u8 = (refined * 255.0).round_().clamp_(0, 255).to(torch.uint8)
            pasted = paste_back(refined_u8, normal_u8, mask, self.dilate_px)
            out[start:end] = pasted[: end - start].permute(0, 2, 3, 1).cpu().numpy()
        return out

    def refine(self, normal: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One sample (the :class:`~maphc2f_data.refine.Refiner` protocol); see :meth:`refine_batch`."""
        return self.refine_batch([normal], [raw], [mask])[0]
