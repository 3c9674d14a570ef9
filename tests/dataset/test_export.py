"""export_mvtec: the MVTec AD folder layout, safe names, never inside the dataset."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_dataset import LAYOUT, total_rows

from maphc2f_data.dataset.export import export_mvtec, file_stem
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import iter_rows
from maphc2f_data.errors import UserError


def test_export_writes_test_and_ground_truth_per_defect(built_dataset, tmp_path):
    summary = export_mvtec(built_dataset, tmp_path / "mvtec")
    dest = tmp_path / "mvtec"
    assert summary["images"] == total_rows()
    assert summary["categories"]["bottle"] == {"corrosion": 3, "crack": 3, "deformation": 3}
    assert sorted(p.name for p in dest.iterdir()) == sorted([*LAYOUT, "maphc2f_export.json"])
    for entry in read_manifest(built_dataset)["categories"].values():
        for shard in entry["shards"]:
            for row in iter_rows(built_dataset / shard["path"]):
                defect = ["crack", "corrosion", "deformation"][row["defect_type"]]
                image = dest / row["category"] / "test" / defect / f"{row['sample_id']}.png"
                mask = dest / row["category"] / "ground_truth" / defect / f"{row['sample_id']}_mask.png"
                assert image.read_bytes() == row["image"]["bytes"]
                assert set(np.unique(decode_png(mask.read_bytes()))) <= {0, 255}
    assert len(list(dest.rglob("*.png"))) == 2 * total_rows()


def test_export_refuses_a_destination_inside_the_dataset(built_dataset):
    with pytest.raises(UserError, match="inside the dataset"):
        export_mvtec(built_dataset, built_dataset / "export")
    with pytest.raises(UserError, match="inside the dataset"):
        export_mvtec(built_dataset, built_dataset)


def test_export_refuses_to_write_into_the_dataset_through_a_category_folder(dataset_copy):
    # Exporting to the parent of a dataset folder named like a category would write into it.
    renamed = dataset_copy.rename(dataset_copy.parent / "bottle")
    with pytest.raises(UserError, match="write into the dataset"):
        export_mvtec(renamed, renamed.parent)


def test_export_does_not_follow_a_symlink_out_of_the_destination(built_dataset, tmp_path):
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "maphc2f_export.json").write_text('{"made_by": "maphc2f export"}')  # an earlier export
    (dest / "bottle").symlink_to(elsewhere)
    with pytest.raises(UserError, match="outside the export folder"):
        export_mvtec(built_dataset, dest)
    assert not any(elsewhere.iterdir())


def test_not_a_dataset(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        export_mvtec(tmp_path, tmp_path / "out")


def test_export_refuses_a_folder_of_other_files_and_overwrites_nothing(built_dataset, tmp_path):
    dest = tmp_path / "mine"
    (dest / "sub").mkdir(parents=True)
    (dest / "README.md").write_text("my notes")
    (dest / "sub" / "keep.txt").write_text("keep")
    with pytest.raises(UserError, match=r"holds files maphc2f export did not write \(README.md, sub/keep.txt\)"):
        export_mvtec(built_dataset, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["README.md", "sub", "sub/keep.txt"]
    assert (dest / "README.md").read_text() == "my notes"


def test_export_writes_its_marker_and_may_rewrite_an_earlier_export(built_dataset, tmp_path):
    import json

    dest = tmp_path / "mvtec"
    dest.mkdir()  # an empty folder is fine
    first = export_mvtec(built_dataset, dest)
    marker = json.loads((dest / "maphc2f_export.json").read_text())
    assert marker["made_by"] == "maphc2f export" and marker["dataset"] == str(built_dataset.resolve())
    assert export_mvtec(built_dataset, dest) == first


def test_export_waits_for_no_build_but_refuses_while_one_writes(built_dataset, dataset_copy, tmp_path):
    from maphc2f_data.dataset.lock import dataset_lock

    with dataset_lock(dataset_copy, "maphc2f-build"):
        with pytest.raises(UserError, match="another maphc2f command is using it"):
            export_mvtec(dataset_copy, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with dataset_lock(dataset_copy, "maphc2f export", shared=True):  # readers share the lock
        assert export_mvtec(dataset_copy, tmp_path / "b")["images"] == total_rows()


def test_file_stem_keeps_safe_ids():
    assert file_stem("bottle-crack-000001") == "bottle-crack-000001"
    assert file_stem("../../etc/passwd").startswith("_.._etc_passwd-")
    assert "/" not in file_stem("a/b") and not file_stem(".hidden").startswith(".")
    assert len(file_stem("x" * 300)) == 120 + 9


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_file_stems_are_safe_and_distinct(a, b):
    for stem in (file_stem(a), file_stem(b)):
        assert stem and not stem.startswith(".") and all(c.isascii() and (c.isalnum() or c in "._-") for c in stem)
    if a != b:
        assert file_stem(a) != file_stem(b)
