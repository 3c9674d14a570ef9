"""npcF training loss (paper eq. 21 with eqs. 10, 16-20; Algorithm 6).

``L = rec_normal + lambda_anom rec_anom + lambda_pde pde + lambda_tv tv
+ lambda_color color + lambda_perc perc`` plus one term of ours,
``lambda_seam seam`` (see :class:`NpcfLossConfig`). Every term is a mean over the
whole batch tensor, as Algorithm 6's ``MSE(recon * mask, img * mask)``; all
mask-restricted terms share that normalisation, so their per-pixel balance
inside the mask is exactly what the lambdas say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from maphc2f_data.models.components.pde import allen_cahn_residual, laplacian

__all__ = ["NpcfLoss", "NpcfLossConfig", "boundary_band", "perceptual_distance", "seam_excess", "total_variation"]

FeatureFn = Callable[[torch.Tensor], Union[Sequence[torch.Tensor], tuple]]


@dataclass(frozen=True)
class NpcfLossConfig:
    """Weights of eq. 21; chosen so the anomaly survives refinement.

    Inside the mask three data terms compete: ``lambda_anom (u - x)^2`` pulls
    toward the *normal* image (it would erase the anomaly), ``lambda_color
    (u - stageA)^2`` pulls toward the synthetic anomaly, and ``lambda_perc``
    pulls the features toward the normal image. Their per-pixel optimum is
    ``u = (lambda_anom x + lambda_color stageA) / (lambda_anom + lambda_color)``
    before the regularisers, so:

    lambda_anom = 0.05: 1/20 of the colour prior, so the optimum keeps about
        95 % of the stage-A anomaly and borrows ~5 % of the normal image,
        which is what softens the seam without erasing the defect.
    lambda_color = 1.0: the anchor to the stage-A anomaly (eq. 19, Algorithm 6
        uses the stage-A image as the colour reference ``z``); same weight as
        the normal-region reconstruction so neither region dominates.
    lambda_pde = 0.1, pde_eps = 0.1: the Allen-Cahn residual pushes values
        toward the phases 0 and 1 wherever the Laplacian is small; at 0.1 the
        shift of a mid-grey pixel is under 0.01 (derivative balance against
        the colour prior), enough to keep patches from washing out to grey
        (Sec. 7.4's "trivial solutions") without posterising the anomaly.
        ``eps = 0.1`` gives a diffusion length of about one pixel.
    lambda_tv = 0.005: TV acts on the whole image; an L1 force this small
        smooths speckle at the seam but shifts textured pixels by < 0.01.
    lambda_perc = 0.01: eq. 20 compares features of the masked output with
        the masked *normal* image, which works against the anomaly; it is
        kept as a weak structural prior. ``perceptual_target="stage_a"``
        compares with the masked stage-A image instead (not the paper's).
    perceptual_levels = 3: EfficientNet-Lite0 levels at strides 2, 4, 8
        (texture and edges, cheap); deeper levels see mostly semantics.
    lambda_seam = 0.3, seam_band = 2: not in the paper. With the weights
        above, eq. 21's per-pixel optimum is the stage-A image inside the
        mask and the normal image outside: the raw paste, seam included, so
        nothing asks the border to blend (measured: npcF trained on eq. 21
        alone leaves the seam energy where it was). This term is the mean of
        ``max(|Lap u| - |Lap x|, 0)`` over the band of pixels within
        ``seam_band`` px of the mask border: high frequencies beyond the
        normal image's own, i.e. the paste edge. ``scripts/seam_weight.py``
        (16 rows of the seam-figure build, 100 AdamW steps of ``npcf-tiny``
        at lr 3e-3): 0.05 lowers the term by 1 %, 0.3 by 29 % while the
        in-mask change drops 6 %, 1.0 by 60 % at -10 %; 0.3 blends the border and keeps
        the anomaly. 0 gives the paper's loss.
    """

    lambda_anom: float = 0.05
    lambda_pde: float = 0.1
    lambda_tv: float = 0.005
    lambda_color: float = 1.0
    lambda_perc: float = 0.01
    pde_eps: float = 0.1
    perceptual_target: str = "normal"
    perceptual_levels: int = 3
    lambda_seam: float = 0.3
    seam_band: int = 2

    def __post_init__(self) -> None:
        if self.perceptual_target not in ("normal", "stage_a"):
            raise ValueError(f"perceptual_target must be 'normal' or 'stage_a', got {self.perceptual_target!r}")
        if self.seam_band < 1:
            raise ValueError(f"seam_band must be >= 1 px, got {self.seam_band}")


def boundary_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within ``width`` px of the border of ``mask`` (``(B, 1, H, W)`` in {0, 1}), both sides."""
    size = 2 * int(width) + 1
    dilated = F.max_pool2d(mask, size, stride=1, padding=int(width))
    eroded = 1 - F.max_pool2d(1 - mask, size, stride=1, padding=int(width))
    return dilated - eroded


def seam_excess(u: torch.Tensor, x: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Mean of ``max(|Lap u| - |Lap x|, 0)`` on ``band`` (the whole tensor's mean, as the other terms)."""
    excess = (laplacian(u).abs() - laplacian(x).abs()).clamp_min(0)
    return (excess * band).mean()


def total_variation(u: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV (eq. 18) as the mean absolute finite difference along height plus along width."""
    dh = (u[..., 1:, :] - u[..., :-1, :]).abs().mean()
    dw = (u[..., :, 1:] - u[..., :, :-1]).abs().mean()
    return dh + dw


def _features(backbone: nn.Module, x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    try:
        out = backbone(x, max_level=levels)
    except TypeError:
        out = backbone(x)
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (list, tuple)):
        out = out[0]  # EfficientNetFeatures returns (features, pooled)
    if isinstance(out, torch.Tensor):
        out = [out]
    return list(out)[:levels]


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-6)


def perceptual_distance(backbone: nn.Module, a: torch.Tensor, b: torch.Tensor, levels: int) -> torch.Tensor:
    """Eq. 20 summed over feature levels; ``b`` is the target (no gradient).

    Feature vectors are unit-normalised along channels first (as LPIPS does),
    so each level contributes a spatial mean of squared distances in
    ``[0, 4]`` whatever the backbone's activation scale; raw EfficientNet
    features would make this term hundreds of times larger than the pixel
    terms and let it overrule the lambdas.
    """
    with torch.no_grad():
        target = _features(backbone, b, levels)
    ours = _features(backbone, a, levels)
    return sum((_unit(fa) - _unit(fb)).pow(2).sum(dim=1).mean() for fa, fb in zip(ours, target))


class NpcfLoss(nn.Module):
    """Eq. 21; ``forward(u, x, stage_a, mask)`` returns a dict of the named terms and ``"total"``.

    ``backbone`` is a frozen feature extractor taking ``[0, 1]`` images
    (default: :func:`maphc2f_data.models.backbones.efficientnet_lite0`,
    loaded on construction); ``None`` disables the perceptual term. It is not
    registered as a submodule, so it never enters a model checkpoint.
    """

    def __init__(self, config: NpcfLossConfig = NpcfLossConfig(), backbone: Union[nn.Module, str, None] = "default"):
        super().__init__()
        self.config = config
        if isinstance(backbone, str) and backbone == "default":
            from maphc2f_data.models.backbones import efficientnet_lite0

            backbone = efficientnet_lite0(pretrained=True) if config.lambda_perc > 0 else None
        self._backbone = [backbone]  # a list hides it from state_dict / .parameters()

    @property
    def backbone(self) -> Optional[nn.Module]:
        return self._backbone[0]

    def forward(
        self, u: torch.Tensor, x: torch.Tensor, stage_a: Optional[torch.Tensor], mask: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        c = self.config
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        m = mask.to(u.dtype)
        terms: Dict[str, torch.Tensor] = {}
        terms["rec_normal"] = F.mse_loss(u * (1 - m), x * (1 - m))  # eq. 16
        terms["rec_anom"] = F.mse_loss(u * m, x * m)  # eq. 17
        terms["pde"] = (allen_cahn_residual(u, c.pde_eps) * m).pow(2).mean()  # eq. 10
        terms["tv"] = total_variation(u)  # eq. 18
        if stage_a is not None:
            terms["color"] = F.mse_loss(u * m, stage_a * m)  # eq. 19, z = stage A inside the mask
        else:  # Algorithm 6: no stage A -> a constant reference colour (the masked mean of x)
            ref = (x * m).sum(dim=(2, 3), keepdim=True) / m.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
            terms["color"] = F.mse_loss(u * m, ref * m)
        if self.backbone is not None and c.lambda_perc > 0:
            target = x if c.perceptual_target == "normal" or stage_a is None else stage_a
            terms["perc"] = perceptual_distance(self.backbone, u * m, target * m, c.perceptual_levels)  # eq. 20
        else:
            terms["perc"] = u.new_zeros(())
        if c.lambda_seam > 0:
            terms["seam"] = seam_excess(u, x, boundary_band(m, c.seam_band))
        else:
            terms["seam"] = u.new_zeros(())
        terms["total"] = (
            terms["rec_normal"]
            + c.lambda_anom * terms["rec_anom"]
            + c.lambda_pde * terms["pde"]
            + c.lambda_tv * terms["tv"]
            + c.lambda_color * terms["color"]
            + c.lambda_perc * terms["perc"]
            + c.lambda_seam * terms["seam"]
        )
        return terms
