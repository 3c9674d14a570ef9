"""BTAD reader (``BTech_Dataset_transformed``), 3 industrial products.

Layout, exactly as the dataset ships::

    <root>/<01|02|03>/train/ok/*
    <root>/<01|02|03>/test/ok/*               (normal)
    <root>/<01|02|03>/test/ko/*               (defective)
    <root>/<01|02|03>/ground_truth/ko/<stem>.*

A mask has its image's stem and no ``_mask`` suffix, and the extensions
differ by product (01: bmp images, png masks; 02: png/png; 03: bmp/bmp), so
masks are paired by stem whatever their extension. Train counts of the
release: 400 / 399 / 1000.
"""

from __future__ import annotations

from typing import Tuple

from maphc2f_data.sources.base import register_source
from maphc2f_data.sources.mvtec import MVTecLikeSource

BTAD_CATEGORIES: Tuple[str, ...] = ("01", "02", "03")


@register_source
class BTADSource(MVTecLikeSource):
    """BTAD, beanTech Anomaly Detection (Mishra et al., ISIE 2021)."""

    name = "btad"
    license = "CC BY-SA 4.0"
    pretty_name = "BTAD (beanTech Anomaly Detection, Mishra et al., 2021)"
    texture_categories = frozenset()
    known_categories = BTAD_CATEGORIES
    needs_root = True
    expected_layout = (
        "<root>/<01|02|03>/train/ok/*, <root>/<01|02|03>/test/{ok,ko}/*, "
        "<root>/<01|02|03>/ground_truth/ko/<image stem>.*"
    )
    good_folder = "ok"
    mask_suffixes = ("",)
