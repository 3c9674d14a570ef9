"""``maphc2f export``: the three formats, --categories, --link, safe destinations (one line, exit 2)."""

import sys
from pathlib import Path

import pytest

from maphc2f_data.cli.export import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-export") / "maphc2f"
    assert run_build(out, "--categories", "nut") == 0
    return out


def test_export_mvtec_layout(demo, tmp_path, capsys):
    out = tmp_path / "mvtec"
    assert main([str(demo), "--format", "mvtec", "--out", str(out), "--categories", "nut"]) == 0
    printed = capsys.readouterr().out
    assert "nut: train/good 8, test/good 2, corrosion 8, crack 8, deformation 8" in printed
    assert f"wrote 24 images and masks and 10 normal images to {out}" in printed
    assert len(list(out.glob("nut/test/*/*.png"))) == 26
    assert len(list(out.glob("nut/ground_truth/*/*_mask.png"))) == 24
    assert len(list(out.glob("nut/train/good/*.png"))) == 8


@pytest.mark.parametrize("fmt, labels", [("coco", "annotations/instances_train.json"), ("yolo-seg", "data.yaml")])
def test_export_coco_and_yolo(demo, tmp_path, capsys, fmt, labels):
    out = tmp_path / fmt
    assert main([str(demo), "--format", fmt, "--out", str(out)]) == 0
    assert f"wrote 24 images with {fmt} labels to {out}" in capsys.readouterr().out
    assert (out / labels).is_file() and len(list(out.glob("images/train/*.png"))) == 24


def test_unknown_format_is_refused(demo, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(demo), "--format", "voc", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "invalid choice: 'voc'" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["mvtec", "coco", "yolo-seg"])
def test_a_folder_of_other_files_exits_2_with_one_line(demo, tmp_path, capsys, fmt):
    (tmp_path / "notes.txt").write_text("mine")
    assert main([str(demo), "--format", fmt, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds files maphc2f export did not write (notes.txt)" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_destination_inside_the_dataset_exits_2(demo, capsys):
    assert main([str(demo), "--out", str(demo / "x")]) == 2
    assert "must not be inside the dataset" in capsys.readouterr().err
    assert not (demo / "x").exists()


def test_unknown_category_exits_2(demo, tmp_path, capsys):
    assert main([str(demo), "--out", str(tmp_path / "o"), "--categories", "teapot"]) == 2
    assert "category 'teapot' is not in" in capsys.readouterr().err
