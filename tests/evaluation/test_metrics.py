import subprocess
import sys

import numpy as np
import pytest

from maphc2f_data.evaluation import aupro, evaluate, image_auroc, pixel_auroc, pro_curve, trapezoid


def brute_force_auroc(labels, scores):
    """All (anomalous, normal) pairs; a tie counts one half."""
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores).ravel()
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_auroc_matches_pairwise_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    labels[:2] = (0, 1)
    scores = rng.integers(0, 12, size=200) / 11.0  # many ties
    assert image_auroc(labels, scores) == pytest.approx(brute_force_auroc(labels, scores), abs=1e-12)


def test_pixel_auroc_matches_pairwise_reference_with_ties():
    rng = np.random.default_rng(3)
    masks = rng.random((3, 16, 16)) < 0.2
    maps = np.round(rng.random((3, 16, 16)) + 0.3 * masks, 1)
    assert pixel_auroc(masks, maps) == pytest.approx(brute_force_auroc(masks, maps), abs=1e-12)
    assert pixel_auroc(masks[:, None], maps[:, None]) == pixel_auroc(masks, maps)


def test_auroc_edge_values_and_errors():
    assert image_auroc([0, 1], [0.0, 1.0]) == 1.0
    assert image_auroc([0, 1], [1.0, 0.0]) == 0.0
    assert image_auroc([0, 1], [0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        image_auroc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="differ in size"):
        image_auroc([0, 1, 1], [0.2, 0.3])


def test_aupro_is_one_for_a_perfect_map():
    masks = np.zeros((3, 12, 12), dtype=np.uint8)
    masks[0, 2:5, 2:5] = 1
    masks[0, 8:10, 7:11] = 1
    masks[1, 0:3, 9:12] = 1  # image 2 is normal
    maps = masks * 0.9 + 0.05
    assert aupro(masks, maps) == pytest.approx(1.0)


def test_aupro_of_random_maps_on_the_reference_toy_set():
    # The MVTec AD reference's own check (generic_util.generate_toy_dataset):
    # uniform random maps, one square ground-truth region in the corner of
    # every image -> PRO(fpr) ~ fpr, so the normalised area to 0.3 is ~0.15.
    # Smaller than the reference's 200 x 300 x 500 to keep the test quick.
    rng = np.random.default_rng(1338)
    maps = rng.random((60, 80, 100))
    masks = np.zeros(maps.shape, dtype=bool)
    masks[:, 0:10, 0:10] = True
    assert aupro(masks, maps) == pytest.approx(0.15, abs=0.01)


def _two_small_images():
    # Image 1 holds one diagonal region (one region under 8-connectivity,
    # two under 4-connectivity); image 2 holds a one-pixel region.
    masks = np.array(
        [
            [[1, 0, 0], [0, 1, 0]],
            [[0, 0, 0], [0, 0, 1]],
        ]
    )
    maps = np.array(
        [
            [[0.9, 0.5, 0.3], [0.1, 0.45, 0.4]],
            [[0.6, 0.05, 0.15], [0.25, 0.35, 0.8]],
        ]
    )
    return masks, maps


def test_aupro_matches_a_hand_computed_value():
    # 2 regions, 9 pixels outside them. Descending thresholds:
    # 0.9 -> region A half covered: PRO 1/4, FPR 0
    # 0.8 -> region B covered:      PRO 3/4, FPR 0
    # 0.6, 0.5 (normal pixels):     PRO 3/4, FPR 1/9, 2/9
    # 0.45 -> region A complete:    PRO 1,   FPR 2/9
    # 0.4 (normal):                 PRO 1,   FPR 3/9 > 0.3
    # Area to 0.3: 3/4 * 2/9 + 1 * (0.3 - 2/9) = 0.3 - 1/18; / 0.3 = 22/27.
    masks, maps = _two_small_images()
    fprs, pros = pro_curve(masks, maps)
    assert fprs[:7] == pytest.approx([0, 0, 0, 1 / 9, 2 / 9, 2 / 9, 3 / 9])
    assert pros[:7] == pytest.approx([0, 0.25, 0.75, 0.75, 0.75, 1.0, 1.0])
    assert fprs[-1] == pros[-1] == 1.0
    assert aupro(masks, maps) == pytest.approx(22 / 27, abs=1e-12)


def test_aupro_merges_tied_scores():
    masks, maps = _two_small_images()
    maps = maps.copy()
    maps[0, 0, 1] = 0.45  # a normal pixel ties with region A's second pixel
    # Tie at 0.45 enters together: (FPR 1/9, PRO 3/4) jumps to (2/9, 1).
    fprs, pros = pro_curve(masks, maps)
    assert fprs[:6] == pytest.approx([0, 0, 0, 1 / 9, 2 / 9, 3 / 9])
    assert pros[:6] == pytest.approx([0, 0.25, 0.75, 0.75, 1.0, 1.0])


def test_trapezoid_interpolates_at_the_limit():
    assert trapezoid([0, 1], [0, 1], x_max=0.5) == pytest.approx(0.125)
    assert trapezoid([0, 0.5, 1], [0, 1, 1], x_max=0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="outside"):
        trapezoid([0, 0.5], [0, 1], x_max=0.7)


def test_aupro_needs_regions():
    with pytest.raises(ValueError, match="region"):
        aupro(np.zeros((2, 4, 4)), np.random.default_rng(0).random((2, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        aupro(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


def test_evaluate_returns_the_three_metrics_as_floats():
    masks, maps = _two_small_images()
    result = evaluate(masks, maps, labels=[1, 0], image_scores=[0.9, 0.1])
    assert set(result) == {"image_auroc", "pixel_auroc", "aupro"}
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in result.values())
    assert result["image_auroc"] == 1.0
    assert result["aupro"] == pytest.approx(22 / 27)


def test_evaluation_never_imports_torch():
    code = (
        "import sys, maphc2f_data.evaluation; "
        "print(','.join(m for m in ('torch', 'ray', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
