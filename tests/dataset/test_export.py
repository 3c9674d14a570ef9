"""The export I/O layer: safe destinations and names, the lock, the marker, rows per split."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_dataset import LAYOUT, total_rows

from maphc2f_data.dataset.export import export_session, file_stem, png_size, unique_stems
from maphc2f_data.dataset.manifest import content_fingerprint, read_manifest
from maphc2f_data.dataset.png import encode_png
from maphc2f_data.errors import UserError


def _export(dataset, dest, **options):
    """A minimal export through the session: one file per row."""
    with export_session(dataset, dest, "test", **options) as session:
        n = 0
        for category in session.categories:
            for split, row in session.rows(category, ["image", "sample_id"]):
                session.write(f"{category}/{split}/{file_stem(row['sample_id'])}.png", row["image"]["bytes"])
                n += 1
        session.write_marker("test", complete=True)
    return n


def test_session_reads_every_row_and_marks_the_export(built_dataset, tmp_path):
    dest = tmp_path / "out"
    assert _export(built_dataset, dest) == total_rows()
    marker = json.loads((dest / "maphc2f_export.json").read_text())
    assert marker["made_by"] == "maphc2f export" and marker["dataset"] == str(built_dataset.resolve())
    assert marker["dataset_fingerprint"] == content_fingerprint(read_manifest(built_dataset))
    assert marker["complete"] is True and marker["categories"] == sorted(LAYOUT)
    assert _export(built_dataset, dest) == total_rows()  # an earlier export may be rewritten


def test_categories_are_selected_and_checked(built_dataset, tmp_path):
    assert _export(built_dataset, tmp_path / "a", categories=["bottle"]) == sum(LAYOUT["bottle"][1])
    with pytest.raises(UserError, match="category 'teapot' is not in"):
        _export(built_dataset, tmp_path / "b", categories=["teapot"])
    assert not (tmp_path / "b").exists()


def test_export_refuses_a_destination_inside_the_dataset(built_dataset):
    with pytest.raises(UserError, match="inside the dataset"):
        _export(built_dataset, built_dataset / "export")
    with pytest.raises(UserError, match="inside the dataset"):
        _export(built_dataset, built_dataset)


def test_export_refuses_to_write_into_the_dataset_through_a_category_folder(dataset_copy):
    renamed = dataset_copy.rename(dataset_copy.parent / "bottle")
    with pytest.raises(UserError, match="write into the dataset"):
        _export(renamed, renamed.parent)
    images = dataset_copy.parent / "images"
    dataset_copy.parent.joinpath("bottle").rename(images)
    with pytest.raises(UserError, match="write into the dataset"):
        with export_session(images, images.parent, "coco", top_folders=("images", "annotations")):
            pass


def test_export_does_not_follow_a_symlink_out_of_the_destination(built_dataset, tmp_path):
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "maphc2f_export.json").write_text('{"made_by": "maphc2f export"}')  # an earlier export
    (dest / "bottle").symlink_to(elsewhere)
    with pytest.raises(UserError, match="outside the export folder"):
        _export(built_dataset, dest)
    assert not any(elsewhere.iterdir())


def test_an_earlier_link_is_replaced_not_written_through(built_dataset, tmp_path):
    outside = tmp_path / "source.png"
    outside.write_bytes(b"the user's file")
    dest = tmp_path / "dest"
    with export_session(built_dataset, dest, "test", link=True) as session:
        assert session.link_or_write("a/linked.png", outside, lambda: b"x") in ("hardlink", "symlink")
        session.write("a/linked.png", b"new")
    assert outside.read_bytes() == b"the user's file" and (dest / "a" / "linked.png").read_bytes() == b"new"


def test_not_a_dataset(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        _export(tmp_path, tmp_path / "out")


def test_export_refuses_a_folder_of_other_files_and_overwrites_nothing(built_dataset, tmp_path):
    dest = tmp_path / "mine"
    (dest / "sub").mkdir(parents=True)
    (dest / "README.md").write_text("my notes")
    (dest / "sub" / "keep.txt").write_text("keep")
    with pytest.raises(UserError, match=r"holds files maphc2f export did not write \(README.md, sub/keep.txt\)"):
        _export(built_dataset, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["README.md", "sub", "sub/keep.txt"]


def test_export_waits_for_no_build_but_refuses_while_one_writes(dataset_copy, tmp_path):
    from maphc2f_data.dataset.lock import dataset_lock

    with dataset_lock(dataset_copy, "maphc2f-build"):
        with pytest.raises(UserError, match="another maphc2f command is using it"):
            _export(dataset_copy, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with dataset_lock(dataset_copy, "maphc2f export", shared=True):  # readers share the lock
        assert _export(dataset_copy, tmp_path / "b") == total_rows()


def test_png_size_reads_the_header():
    import numpy as np

    assert png_size(encode_png(np.zeros((5, 7, 3), np.uint8))) == (7, 5)
    with pytest.raises(UserError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_unique_stems_keep_stems_and_disambiguate_clashes():
    names = unique_stems(["a/001.png", "b/001.png", "a/002.png", "c/my image.jpg"])
    assert names["a/002.png"] == "002" and names["c/my image.jpg"].startswith("my_image-")
    assert names["a/001.png"].startswith("a_001-") and names["b/001.png"].startswith("b_001-")
    assert len(set(names.values())) == 4
    assert unique_stems(["b/001.png", "a/001.png"]) == unique_stems(["a/001.png", "b/001.png"])


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


def test_a_re_export_removes_what_the_earlier_export_left_and_keeps_the_rest(built_dataset, tmp_path):
    dest = tmp_path / "dest"
    _export(built_dataset, dest)
    category = sorted(LAYOUT)[0]
    # What a larger earlier export (rows since removed, a split that is gone) would have left:
    stale = [dest / category / "train" / "gone-row.png", dest / category / "old_split" / "x.png",
             dest / category / "train" / ".gone.png.tmp-123"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stale")
    outside_tops = dest / "notes.txt"  # not under a folder the format writes: never touched
    outside_tops.write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.png").write_bytes(b"keep")
    (dest / category / "linked_folder").symlink_to(elsewhere)  # a symlinked folder is not followed
    assert _export(built_dataset, dest) == total_rows()
    assert not any(path.exists() for path in stale) and not (dest / category / "old_split").exists()
    assert outside_tops.read_text() == "mine" and (elsewhere / "keep.png").read_bytes() == b"keep"
    assert (dest / category / "linked_folder").is_symlink()
    marker = json.loads((dest / "maphc2f_export.json").read_text())
    assert marker["stale_removed"] == 3
    files = [p for p in dest.rglob("*.png") if p.is_file() and not p.is_symlink() and "linked_folder" not in p.parts]
    assert len(files) == total_rows()
    # Exporting one category keeps the other categories' folders as they are.
    others = sorted(LAYOUT)[1:]
    before = {p: p.read_bytes() for o in others for p in (dest / o).rglob("*.png")}
    _export(built_dataset, dest, categories=[category])
    assert before and all(p.read_bytes() == data for p, data in before.items())
