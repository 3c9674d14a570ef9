"""The published composition of the MaPhC2F Dataset (paper Tables 7-9).

The numbers are copied verbatim from the tables: per source, category and
defect type, how many synthetic images the paper released. Table 9 calls the
deformation type "TPS" (thin-plate-spline deformation).

The "Total" rows of Tables 7 and 8 are twice the per-type count although three
types are made per category; it is the sum over the three types that adds up
to the paper's 115,987 images over 30 categories (see :func:`paper_total`).

MVTec AD and VisA get three samples per training image and type (bottle: 209
training images -> 627 per type); BTAD gets one (BTAD 03: 1,000 training
images, 998 deformations: two images got no TPS sample in the paper).
"""

from __future__ import annotations

from typing import Dict, Mapping

from maphc2f_data.synthesis import DEFECT_TYPES


def _same(count: int) -> Dict[str, int]:
    """Every defect type with the same count (Tables 7 and 8 list one per category)."""
    return {kind: count for kind in DEFECT_TYPES}


#: Table 7, MVTec AD (15 categories); the three types share one count.
MVTEC_COUNTS: Dict[str, Dict[str, int]] = {
    "bottle": _same(627),
    "cable": _same(672),
    "capsule": _same(657),
    "carpet": _same(840),
    "grid": _same(792),
    "hazelnut": _same(1173),
    "leather": _same(735),
    "metal_nut": _same(660),
    "pill": _same(801),
    "screw": _same(960),
    "tile": _same(690),
    "toothbrush": _same(180),
    "transistor": _same(639),
    "wood": _same(741),
    "zipper": _same(720),
}

#: Table 8, VisA (12 categories); the three types share one count.
VISA_COUNTS: Dict[str, Dict[str, int]] = {
    "candle": _same(2700),
    "capsules": _same(1626),
    "cashew": _same(1350),
    "chewinggum": _same(1359),
    "fryum": _same(1350),
    "macaroni1": _same(2700),
    "macaroni2": _same(2700),
    "pcb1": _same(2712),
    "pcb2": _same(2703),
    "pcb3": _same(2715),
    "pcb4": _same(2712),
    "pipe_fryum": _same(1350),
}

#: Table 9, BTAD (3 categories); "TPS" is the deformation type.
BTAD_COUNTS: Dict[str, Dict[str, int]] = {
    "01": {"crack": 400, "corrosion": 400, "deformation": 400},
    "02": {"crack": 399, "corrosion": 399, "deformation": 399},
    "03": {"crack": 1000, "corrosion": 1000, "deformation": 998},
}

#: Source name -> category -> defect type -> number of images in the paper.
PAPER_COUNTS: Mapping[str, Mapping[str, Mapping[str, int]]] = {
    "mvtec": MVTEC_COUNTS,
    "visa": VISA_COUNTS,
    "btad": BTAD_COUNTS,
}

#: Samples per training image and defect type in the paper's build.
PAPER_SAMPLES_PER_IMAGE: Mapping[str, int] = {"mvtec": 3, "visa": 3, "btad": 1}

#: The paper's total (abstract, Sec. 4 and 7).
PAPER_TOTAL = 115_987


def paper_total() -> int:
    """Sum of every count in :data:`PAPER_COUNTS` (equals :data:`PAPER_TOTAL`)."""
    return sum(n for cats in PAPER_COUNTS.values() for types in cats.values() for n in types.values())


def paper_train_images(source: str, category: str) -> int:
    """Training images the paper's counts imply for ``category``.

    The largest per-type count divided by the samples per image (BTAD 03's
    998 deformations are two short of its 1,000 images).
    """
    counts = PAPER_COUNTS[source][category]
    return max(counts.values()) // PAPER_SAMPLES_PER_IMAGE[source]
