"""Test-set metrics (numpy/scipy only; never imports torch)."""

from maphc2f_data.evaluation.metrics import aupro, evaluate, image_auroc, pixel_auroc, pro_curve, trapezoid

__all__ = ["aupro", "evaluate", "image_auroc", "pixel_auroc", "pro_curve", "trapezoid"]
