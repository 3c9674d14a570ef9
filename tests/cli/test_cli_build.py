"""``maphc2f-build`` / ``maphc2f build``: options, --dry-run output and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from fake_trees import make_btad_tree, make_mvtec_tree  # noqa: E402

from maphc2f_data.cli.build import main  # noqa: E402

OPTIONS = ["--source", "--root", "--out", "--categories", "--count", "--seed", "--size", "--dry-run",
           "--sam-checkpoint", "--sam-model", "--png-compression", "--workers", "--ray-address", "--serial",
           "--device", "--foreground-actors",
           "--push-to-hub"]


def test_help_explains_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: maphc2f-build")
    for option in OPTIONS:
        assert option in text
    for default in ["(default: maphc2f)", "(default: auto)", "(default: 0)", "(default: 512)",
                    "(default: vit_h)"]:
        assert default in text
    assert "embedded local Ray" in text  # --workers explains how the runner is chosen
    assert "--rows-per-shard" not in text  # testing aid, hidden


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["--source", "demo", "--count", "2", "--categories", "coins,nut", "--dry-run",
                 "--out", str(out)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan == {"total": 96, "categories": {
        "coins": {"source": "demo", "source_images": 8, "crack": 16, "corrosion": 16, "deformation": 16},
        "nut": {"source": "demo", "source_images": 8, "crack": 16, "corrosion": 16, "deformation": 16},
    }}
    assert not out.exists()


def test_dry_run_paper_counts_on_a_fake_btad_tree(tmp_path, capsys):
    root = make_btad_tree(tmp_path / "btad", n_train=2, n_test_ok=1, n_test_ko=1, size=8)
    assert main(["--source", "btad", "--root", str(root), "--dry-run"]) == 0  # count auto = paper
    captured = capsys.readouterr()
    plan = json.loads(captured.out)
    assert plan["total"] == 1200 + 1197 + 2998
    assert plan["categories"]["03"] == {"source": "btad", "source_images": 2, "crack": 1000,
                                        "corrosion": 1000, "deformation": 998}
    assert "the tree has 2 training images, the paper's table implies 400" in captured.err


def test_paper_count_refuses_unknown_category_of_the_table(tmp_path, capsys):
    root = make_mvtec_tree(tmp_path / "mvtec", ["bottle"], n_train=1, n_test_good=1, defects=(), size=8)
    assert main(["--source", "mvtec", "--root", str(root), "--categories", "cable", "--dry-run"]) == 2
    assert "unknown category cable" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--source", "demo", "--count", "paper"], "--count paper needs a source of the paper"),
    (["--source", "demo", "--count", "zero"], "--count must be"),
    (["--source", "demo", "--size", "16"], "--size must be between 32 and 2048"),
    (["--source", "demo", "--size", "100000"], "--size must be between 32 and 2048"),
    (["--source", "demo", "--size", "100000", "--dry-run"], "--size must be between 32 and 2048"),
    (["--source", "demo", "--categories", "teapot"], "unknown category teapot"),
    (["--source", "mvtec"], "mvtec"),
    (["--source", "mvtec", "--root", "/nonexistent/mvtec"], "/nonexistent/mvtec"),
    (["--source", "demo", "--sam-checkpoint", "/nonexistent/sam.pth"], "/nonexistent/sam.pth"),
    (["--source", "demo", "--workers", "0"], "--workers"),
    (["--source", "demo", "--demo-train-count", "0"], "--demo-train-count must be an integer in [1, 100]"),
    (["--source", "mvtec", "--demo-train-count", "3"], "--demo-train-count is for the demo source only"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("maphc2f: error:") and message in err
    assert not (out / "data").exists()


def test_out_must_be_a_folder_that_is_new_empty_or_a_dataset(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    assert main(["--source", "demo", "--out", str(a_file), "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    assert main(["--source", "demo", "--out", str(other), "--no-progress"]) == 2
    assert "not a maphc2f dataset" in capsys.readouterr().err
    assert a_file.read_text() == "keep me" and sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]


def test_a_folder_with_a_data_subfolder_is_not_taken_for_a_dataset(tmp_path, capsys):
    """A user's folder with ``data/`` but no maphc2f manifest used to be written into."""
    mine = tmp_path / "project"
    files = {"README.md": "my readme", "notes.txt": "notes", "data/important.csv": "a,b", "sub/keep.txt": "keep"}
    for rel, text in files.items():
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_text(text)
    assert main(["--source", "demo", "--categories", "nut", "--count", "1", "--size", "32", "--serial",
                 "--out", str(mine), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds files maphc2f-build did not write (README.md, notes.txt" in err
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*") if p.is_file()) == sorted(files)
    assert all((mine / rel).read_text() == text for rel, text in files.items())
    # Another tool's manifest.json does not make it a dataset either.
    (mine / "manifest.json").write_text('{"name": "other", "format_version": 1}')
    assert main(["--source", "demo", "--out", str(mine), "--no-progress"]) == 2
    assert "not a maphc2f dataset" in capsys.readouterr().err


def test_an_empty_folder_is_fine(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["--source", "demo", "--categories", "nut", "--count", "1", "--size", "32", "--serial",
                 "--out", str(out), "--no-progress"]) == 0
    assert (out / "manifest.json").is_file()


@pytest.mark.skipif(
    any(importlib.util.find_spec(f"maphc2f_data.cli.{name}") is None
        for name in ("preview", "validate", "splits", "export")),
    reason="the maphc2f dispatcher needs every subcommand module")
def test_maphc2f_build_subcommand_is_the_same_command(capsys):
    from maphc2f_data.cli.main import main as maphc2f

    assert maphc2f(["build", "--source", "demo", "--categories", "nut", "--count", "1", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 24


@pytest.mark.parametrize("out, reason", [
    ("/proc/maphc2f-test", "No such file or directory"),   # a virtual file system
    ("/sys/maphc2f-test", "not permitted"),                  # read-only (sysfs)
])
def test_unwritable_out_is_one_line_and_exit_2(out, reason, capsys):
    assert main(["--source", "demo", "--size", "64", "--count", "1", "--categories", "nut", "--serial",
                 "--no-progress", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write --out {out}: " in err and reason in err


def test_unwritable_export_destination_is_one_line_and_exit_2(built_dataset, capsys):
    from maphc2f_data.cli.main import main as maphc2f

    assert maphc2f(["export", str(built_dataset), "--format", "mvtec", "--out", "/sys/maphc2f-export"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write --out /sys/maphc2f-export" in err
