"""One home per name list: every layer agrees with the registries and ``names``.

A new anomaly type registered in :mod:`maphc2f_data.synthesis` must show up in
the dataset's ClassLabel, the paper's count tables, the card, the preview and
the build plan, or this module fails.
"""

from __future__ import annotations

import argparse

import numpy as np

from maphc2f_data.builder.paper_counts import PAPER_COUNTS
from maphc2f_data.names import SAM_MODELS, STAGES
from maphc2f_data.synthesis import ANOMALY_TYPES, DEFECT_TYPES


def test_defect_types_are_the_registry():
    assert DEFECT_TYPES == tuple(ANOMALY_TYPES)
    assert DEFECT_TYPES[:3] == ("crack", "corrosion", "deformation")  # stored indices never move


def test_class_label_names_are_the_registry():
    from maphc2f_data.dataset.schema import features

    assert tuple(features()["defect_type"].names) == DEFECT_TYPES


def test_paper_tables_cover_every_type():
    for source, table in PAPER_COUNTS.items():
        for category, counts in table.items():
            assert tuple(counts) == DEFECT_TYPES, (source, category)


def test_card_lists_every_type(built_dataset):
    card = (built_dataset / "README.md").read_text()
    header = next(line for line in card.splitlines() if line.startswith("| category | source"))
    assert [cell.strip() for cell in header.strip("|").split("|")][2:-1] == list(DEFECT_TYPES)
    assert ", ".join(f"{name} ({i})" for i, name in enumerate(DEFECT_TYPES)) in card


def test_preview_has_one_column_per_type():
    from maphc2f_data.preview import SheetLayout, preview_source
    from maphc2f_data.sources import get_source

    sheet = preview_source(get_source("demo"), ["nut"], size=64)
    assert sheet.shape == SheetLayout.for_tile(64).shape(1, 1 + len(DEFECT_TYPES))


def test_plans_count_every_type():
    from maphc2f_data.builder.plan import BuildConfig, make_plan

    summary = make_plan(BuildConfig(source="demo", categories=("nut",), count=1)).summary()
    assert set(DEFECT_TYPES) <= set(summary["categories"]["nut"])


def test_cli_choices_come_from_the_registries():
    from maphc2f_data.cli.build import add_arguments
    from maphc2f_data.sources import SOURCES

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    choices = {action.dest: action.choices for action in parser._actions if action.choices}
    assert choices["source"] == sorted(SOURCES)
    assert tuple(choices["sam_model"]) == SAM_MODELS


def test_sam_variants_exist_in_segment_anything():
    from segment_anything import sam_model_registry

    assert set(SAM_MODELS) <= set(sam_model_registry)


def test_stages_start_raw_and_the_identity_refiner_writes_raw():
    from maphc2f_data.refine import IdentityRefiner

    assert STAGES[0] == "raw" and IdentityRefiner().stage == "raw"
    raw = np.zeros((4, 4, 3), np.uint8)
    assert IdentityRefiner().refine(raw, raw, np.zeros((4, 4), bool)) is raw
