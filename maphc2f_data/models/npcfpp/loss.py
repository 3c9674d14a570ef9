"""npcF++ training loss: region loss (eq. 11) plus the high-frequency penalty (eq. 12), Algorithm 7,
plus npcF's boundary-band seam term (ours, ``lambda_seam``).

Every term is a mean over the whole batch tensor (L1 or squared error), so
the mask-restricted terms share one normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
from torch import nn

from maphc2f_data.models.components.pde import laplacian
from maphc2f_data.models.npcf.loss import boundary_band, seam_excess

__all__ = ["NpcfppLoss", "NpcfppLossConfig"]


@dataclass(frozen=True)
class NpcfppLossConfig:
    """Weights of eqs. 11-12 and Algorithm 7; chosen so the anomaly survives.

    beta = 1.0: the L1 pull toward the coarse anomaly ``b1`` inside the mask
        weighs as much as the L1 pull toward the original outside it.
    delta = 0.1: eq. 11's ``delta ||u - x_orig||^2`` runs over the whole image,
        so inside the mask it pulls toward the *normal* image. Its gradient,
        ``2 beta delta |u - x| <= 0.2 beta``, stays below the constant L1 force
        ``beta`` toward ``b1``, so ``u = b1`` remains the optimum inside the mask
        (the anomaly is not blended away) while the term still damps outliers.
    alpha_wave = 0.1: the Laplacian L1 penalty (eq. 12) smooths texture inside
        the mask; its per-pixel gradient is at most ``8 alpha_wave = 0.8 < beta``,
        so it removes isolated high-frequency artefacts without flattening a
        crack. The paper's total ``region + waveHF`` is ``alpha_wave = 1``.
    lambda_seam = 0.3, seam_band = 2: not in the paper; the boundary-band
        term of npcF (:func:`~maphc2f_data.models.npcf.loss.seam_excess`).
        Eq. 11's L1 pull toward the original on the outer half of the band
        restores the hard paste edge npcF softened; this term keeps it soft.
        0 gives the paper's loss.
    """

    beta: float = 1.0
    delta: float = 0.1
    alpha_wave: float = 0.1
    lambda_seam: float = 0.3
    seam_band: int = 2


class NpcfppLoss(nn.Module):
    """``forward(u, x, b1, mask)`` returns the named terms of eqs. 11-12 and ``"total"``."""

    def __init__(self, config: NpcfppLossConfig = NpcfppLossConfig()):
        super().__init__()
        self.config = config

    def forward(self, u: torch.Tensor, x: torch.Tensor, b1: torch.Tensor, mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        c = self.config
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        m = mask.to(u.dtype)
        terms: Dict[str, torch.Tensor] = {}
        terms["region_normal"] = ((u - x) * (1 - m)).abs().mean()
        terms["region_anom"] = ((u - b1) * m).abs().mean()
        terms["region_l2"] = (u - x).pow(2).mean()
        terms["region"] = terms["region_normal"] + c.beta * (terms["region_anom"] + c.delta * terms["region_l2"])
        terms["wave_hf"] = (laplacian(u) * m).abs().mean()  # eq. 12, convHF = 3x3 Laplacian
        if c.lambda_seam > 0:
            terms["seam"] = seam_excess(u, x, boundary_band(m, c.seam_band))
        else:
            terms["seam"] = u.new_zeros(())
        terms["total"] = terms["region"] + c.alpha_wave * terms["wave_hf"] + c.lambda_seam * terms["seam"]
        return terms
