"""The paper's Tables 7-9 as the builder stores them."""

from maphc2f_data.builder.paper_counts import (
    DEFECT_TYPES,
    PAPER_COUNTS,
    PAPER_SAMPLES_PER_IMAGE,
    PAPER_TOTAL,
    paper_total,
    paper_train_images,
)


def test_tables_sum_to_the_papers_total():
    assert PAPER_TOTAL == 115_987
    assert paper_total() == 115_987


def test_thirty_categories_fifteen_twelve_three():
    assert {source: len(cats) for source, cats in PAPER_COUNTS.items()} == {"mvtec": 15, "visa": 12, "btad": 3}
    for cats in PAPER_COUNTS.values():
        for counts in cats.values():
            assert tuple(counts) == DEFECT_TYPES


def test_spot_values_of_each_table():
    assert PAPER_COUNTS["mvtec"]["hazelnut"]["crack"] == 1173
    assert PAPER_COUNTS["mvtec"]["toothbrush"]["deformation"] == 180
    assert PAPER_COUNTS["visa"]["capsules"]["corrosion"] == 1626
    assert PAPER_COUNTS["visa"]["pcb3"]["crack"] == 2715
    assert PAPER_COUNTS["btad"]["03"] == {"crack": 1000, "corrosion": 1000, "deformation": 998}
    assert PAPER_COUNTS["btad"]["02"] == {"crack": 399, "corrosion": 399, "deformation": 399}


def test_per_source_sums():
    sums = {source: sum(sum(c.values()) for c in cats.values()) for source, cats in PAPER_COUNTS.items()}
    assert sums == {"mvtec": 3 * 10_887, "visa": 3 * 25_977, "btad": 1_200 + 1_197 + 2_998}


def test_implied_training_images_match_the_public_splits():
    assert PAPER_SAMPLES_PER_IMAGE == {"mvtec": 3, "visa": 3, "btad": 1}
    assert paper_train_images("mvtec", "bottle") == 209
    assert sum(paper_train_images("mvtec", c) for c in PAPER_COUNTS["mvtec"]) == 3_629
    assert sum(paper_train_images("visa", c) for c in PAPER_COUNTS["visa"]) == 8_659
    assert [paper_train_images("btad", c) for c in ("01", "02", "03")] == [400, 399, 1000]
