"""End-to-end builds on the demo and folder sources: output, determinism,
resume after kill -9, per-category regeneration, skipped inputs, validation."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from build_helpers import DEMO_ARGS, file_states, run_build  # noqa: E402
from fake_trees import make_folder_tree, make_mvtec_tree  # noqa: E402

from maphc2f_data.builder.driver import HUB_IGNORE_PATTERNS, push_to_hub  # noqa: E402
from maphc2f_data.dataset.manifest import read_manifest  # noqa: E402
from maphc2f_data.dataset.validate import validate_dataset  # noqa: E402
from maphc2f_data.errors import UserError  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def _shard_rows(folder: Path, category: str = "*"):
    rows = []
    for path in sorted((folder / "data").glob(f"{category}/*.parquet")):
        rows += pq.read_table(path, columns=["sample_id", "category", "defect_type"]).to_pylist()
    return rows


def test_demo_build_writes_the_planned_shards_manifest_card_and_report(demo_dataset):
    states = file_states(demo_dataset)
    assert sorted(states) == [f"data/{c}/train-0000{i}-of-00003.parquet" for c in ("brick", "nut") for i in range(3)]
    manifest = read_manifest(demo_dataset)
    assert manifest["total_rows"] == 48 and manifest["plan"]["total"] == 48
    assert manifest["categories"]["nut"]["rows"] == {"crack": 8, "corrosion": 8, "deformation": 8}
    assert manifest["config"]["size"] == 64 and manifest["config"]["count"] == 1
    assert manifest["command"][:3] == ["maphc2f-build", "--source", "demo"]
    listed = {s["path"]: s["sha256"] for e in manifest["categories"].values() for s in e["shards"]}
    assert listed == {path: state[0] for path, state in states.items()}
    assert (demo_dataset / "README.md").is_file()
    report = json.loads((demo_dataset / "build_report.json").read_text())
    assert report["complete"] and report["rows_made"] == 48 and report["samples_per_second"] > 0
    assert set(report["stage_seconds"]) >= {"load", "foreground", "synthesis", "encode", "write"}
    assert not list(demo_dataset.rglob("*.tmp-*"))


def test_validate_finds_no_problem(demo_dataset):
    assert validate_dataset(demo_dataset) == []


def test_load_dataset_round_trip(demo_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    ds = datasets.load_dataset(str(demo_dataset), "all", split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 48
    assert len({row for row in ds["sample_id"]}) == 48
    row = ds[0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (64, 64) and row["image"].mode == "RGB"
    mask = np.asarray(row["mask"])
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255} and mask.any()
    assert set(np.unique(np.asarray(row["foreground"]))) <= {0, 255}
    assert ds.features["defect_type"].names == ["crack", "corrosion", "deformation"]
    assert row["stage"] == "raw" and row["quality"] is None and row["source_dataset"] == "demo"
    params = json.loads(row["params"])
    assert row["params"] == json.dumps(params, sort_keys=True, separators=(",", ":"))
    assert 0 < row["anomaly_area"] < 1 and 0 <= row["on_foreground"] <= 1 and row["contrast"] > 0
    nut = datasets.load_dataset(str(demo_dataset), "nut", split="train", cache_dir=str(tmp_path / "hf"))
    assert len(nut) == 24 and set(nut["category"]) == {"nut"}


def test_same_seed_same_bytes_other_seed_other_bytes(demo_dataset, tmp_path):
    # Categories are planned independently, so a nut-only build must reproduce
    # the nut shards of the shared two-category build byte for byte.
    assert run_build(tmp_path / "same", "--categories", "nut") == 0
    reference = {p: s[0] for p, s in file_states(demo_dataset).items() if p.startswith("data/nut/")}
    assert {p: s[0] for p, s in file_states(tmp_path / "same").items()} == reference
    assert run_build(tmp_path / "other", "--categories", "nut", "--seed", "1") == 0
    other = {p: s[0] for p, s in file_states(tmp_path / "other").items()}
    assert set(other) == set(reference) and all(other[p] != reference[p] for p in reference)


def test_more_demo_training_renders_keep_every_sample_of_the_default_build(demo_dataset, tmp_path):
    out = tmp_path / "more"
    assert run_build(out, "--categories", "nut", "--demo-train-count", "10") == 0
    assert read_manifest(out)["config"]["demo_train_count"] == 10
    assert "demo_train_count" not in read_manifest(demo_dataset)["config"]

    def rows(folder):
        tables = [pq.read_table(path) for path in sorted((folder / "data" / "nut").glob("*.parquet"))]
        return {row["sample_id"]: (row["source_image"], row["image"]["bytes"], row["mask"]["bytes"])
                for table in tables for row in table.to_pylist()}

    default, more = rows(demo_dataset), rows(out)
    assert len(default) == 24 and len(more) == 30
    assert {key: more[key] for key in default} == default  # same ids, same PNG bytes
    assert {more[key][0] for key in set(more) - set(default)} == {"nut/train/good/008.png", "nut/train/good/009.png"}


def test_rerun_rewrites_nothing(demo_dataset, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(demo_dataset, out)
    before = file_states(out)
    assert run_build(out) == 0
    assert file_states(out) == before
    assert "Shards: 0 written, 6 already finished" in capsys.readouterr().out


def test_a_shard_changed_on_disk_is_regenerated(demo_dataset, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(demo_dataset, out)
    before = file_states(out)
    target = out / "data" / "nut" / "train-00001-of-00003.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the image pages; the footer still reads
    target.write_bytes(bytes(data))
    assert run_build(out) == 0
    captured = capsys.readouterr()
    assert "data/nut/train-00001-of-00003.parquet: bytes differ from the manifest" in captured.err
    assert "Shards: 1 written, 5 already finished" in captured.out
    after = file_states(out)
    assert {p: s[0] for p, s in after.items()} == {p: s[0] for p, s in before.items()}
    assert validate_dataset(out) == []


def test_kill_9_then_resume_finishes_exactly_the_plan(demo_dataset, tmp_path):
    out = tmp_path / "killed"
    args = [*DEMO_ARGS, "--serial", "--categories", "nut", "--rows-per-shard", "3", "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "maphc2f_data.cli.build", *args], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not list((out / "data").glob("nut/*.parquet")):
            assert process.poll() is None, "the build ended before writing a shard"
            assert time.monotonic() < deadline, "no shard after 120 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    finished = file_states(out)
    assert 1 <= len(finished) < 8, "the kill came too late to test a resume"
    assert not (out / "manifest.json").exists()
    assert run_build(out, "--categories", "nut", "--rows-per-shard", "3") == 0
    after = file_states(out)
    assert len(after) == 8
    assert {p: after[p] for p in finished} == finished  # same bytes, mtime and inode: never rewritten
    rows = _shard_rows(out)
    ids = [r["sample_id"] for r in rows]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert set(ids) == {r["sample_id"] for r in _shard_rows(demo_dataset, "nut")}
    assert not list(out.rglob("*.tmp-*"))
    assert validate_dataset(out) == []


def test_regenerating_one_category_leaves_the_others_untouched(demo_dataset, tmp_path):
    out = tmp_path / "regen"
    shutil.copytree(demo_dataset, out)
    before = file_states(out)
    old_manifest = read_manifest(out)
    # A new count changes nut's shard count (3 -> 5): its old files must go.
    assert run_build(out, "--categories", "nut", "--count", "2") == 0
    after = file_states(out)
    brick = {p: s for p, s in before.items() if p.startswith("data/brick/")}
    assert {p: after[p] for p in brick} == brick
    assert sorted(p for p in after if p.startswith("data/nut/")) == [
        f"data/nut/train-0000{i}-of-00005.parquet" for i in range(5)]
    manifest = read_manifest(out)
    assert manifest["categories"]["brick"] == old_manifest["categories"]["brick"]
    assert manifest["categories"]["nut"]["rows"] == {"crack": 16, "corrosion": 16, "deformation": 16}
    assert manifest["plan"]["categories"]["brick"] == old_manifest["plan"]["categories"]["brick"]
    assert manifest["total_rows"] == 24 + 48 == manifest["plan"]["total"]
    assert validate_dataset(out) == []


def test_mixing_settings_or_clashing_categories_is_refused_without_loss(demo_dataset, tmp_path, capsys):
    out = tmp_path / "mixed"
    shutil.copytree(demo_dataset, out)
    before = file_states(out)
    assert run_build(out, "--categories", "nut", "--size", "96") == 2
    assert "other settings" in capsys.readouterr().err
    tree = make_folder_tree(tmp_path / "tree", ["nut"], n_images=1)
    from maphc2f_data.cli.build import main

    assert main(["--source", "folder", "--root", str(tree), "--out", str(out), "--size", "64", "--no-progress",
                 "--serial"]) == 2
    assert "clashes with category 'nut' of source 'demo'" in capsys.readouterr().err
    assert file_states(out) == before


def test_corrupt_inputs_are_skipped_and_named(tmp_path, capsys):
    from maphc2f_data.cli.build import main

    tree = make_folder_tree(tmp_path / "tree", ["parts", "broken"], n_images=2, size=48)
    (tree / "parts" / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    shutil.rmtree(tree / "broken")
    (tree / "broken").mkdir()
    (tree / "broken" / "only.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["--source", "folder", "--root", str(tree), "--out", str(out), "--size", "64",
                 "--no-progress", "--serial"]) == 0
    text = capsys.readouterr().out
    assert "Skipped source images: 2" in text
    assert "parts/torn.png (3 samples)" in text and "broken/only.jpg (3 samples)" in text
    assert str(tree) not in text.split("Output:")[0]  # reasons name paths relative to the root
    manifest = read_manifest(out)
    # parts: 2 images + nested/deep.jpg readable -> 9 rows; broken: nothing, so no config.
    assert manifest["total_rows"] == 9 and list(manifest["categories"]) == ["parts"]
    assert manifest["plan"]["categories"]["broken"]["crack"] == 1
    report = json.loads((out / "build_report.json").read_text())
    assert [e["source_image"] for e in report["skipped_images"]] == ["broken/only.jpg", "parts/torn.png"]
    assert validate_dataset(out) == []
    # Resuming recognises the empty shard as done and reports the same skips.
    assert main(["--source", "folder", "--root", str(tree), "--out", str(out), "--size", "64",
                 "--no-progress", "--serial"]) == 0
    text = capsys.readouterr().out
    assert "Shards: 0 written, 2 already finished" in text and "Skipped source images: 2" in text


def _corrupt_mvtec_tree(root: Path, good: int = 0) -> Path:
    """An MVTec-layout tree (bottle) whose first ``good`` training images are readable."""
    tree = make_mvtec_tree(root, ["bottle"], n_train=3, size=48)
    for path in sorted((tree / "bottle" / "train" / "good").glob("*.png"))[good:]:
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return tree


def _mvtec_build(tree: Path, out: Path, *extra: str) -> int:
    from maphc2f_data.cli.build import main

    return main(["--source", "mvtec", "--root", str(tree), "--out", str(out), "--count", "1", "--size", "64",
                 "--no-progress", "--serial", *extra])


def test_a_build_that_made_no_rows_fails_and_validate_agrees(tmp_path, capsys):
    """Every input unreadable used to end in '0 rows made', exit 0, and validate 'ok: 0 rows'."""
    tree, out = _corrupt_mvtec_tree(tmp_path / "mvtec"), tmp_path / "out"
    assert _mvtec_build(tree, out) == 2
    err = capsys.readouterr().err
    error = [line for line in err.splitlines() if line.startswith("maphc2f: error:")]
    assert len(error) == 1 and "made no rows of its 9 planned samples" in error[0]
    assert "3 unreadable source images skipped (bottle/train/good/000.png" in error[0]
    report = json.loads((out / "build_report.json").read_text())  # written before the error
    assert len(report["skipped_images"]) == 3
    assert read_manifest(out)["total_rows"] == 0
    assert any("holds no rows" in problem for problem in validate_dataset(out))
    from maphc2f_data.cli.validate import main as validate

    assert validate([str(out)]) == 1


def test_skipped_inputs_warn_and_strict_fails_after_the_report(tmp_path, capsys):
    tree = _corrupt_mvtec_tree(tmp_path / "mvtec", good=2)
    out = tmp_path / "out"
    assert _mvtec_build(tree, out) == 0
    err = capsys.readouterr().err
    assert "warning: 1 unreadable source image skipped (bottle/train/good/002.png); see" in err
    assert read_manifest(out)["total_rows"] == 6
    strict = tmp_path / "strict"
    assert _mvtec_build(tree, strict, "--strict") == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("maphc2f: error:")] == [
        f"maphc2f: error: --strict: 1 unreadable source image skipped (bottle/train/good/002.png); "
        f"see {strict.resolve() / 'build_report.json'}"]
    assert read_manifest(strict)["total_rows"] == 6 and validate_dataset(strict) == []  # nothing lost
    assert json.loads((strict / "build_report.json").read_text())["skipped_images"]


def test_hub_upload_ignores_cache_temporaries_and_report(demo_dataset):
    from huggingface_hub.utils import filter_repo_objects

    files = [p.relative_to(demo_dataset).as_posix() for p in demo_dataset.rglob("*") if p.is_file()]
    files += [".cache/foreground/classical/ab/x.png", "data/nut/train-00000-of-00003.parquet.tmp-123"]
    kept = set(filter_repo_objects(files, ignore_patterns=list(HUB_IGNORE_PATTERNS)))
    assert any(f.startswith(".cache/") for f in files)
    assert not any(f.startswith(".cache/") or ".tmp-" in f for f in kept)
    assert "build_report.json" not in kept
    assert {"README.md", "manifest.json"} <= kept
    assert sum(f.endswith(".parquet") for f in kept) == 6


def test_push_to_hub_failures_are_one_line_user_errors(demo_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not a built dataset"):
        push_to_hub(tmp_path, "someone/maphc2f")
    with pytest.raises(UserError, match="could not push") as info:
        push_to_hub(demo_dataset, "someone/maphc2f")
    assert "\n" not in str(info.value)


def test_samples_the_synthesiser_cannot_place_are_reported_not_fatal(tmp_path, monkeypatch, capsys):
    import maphc2f_data.sampling.sample as sample_path
    import maphc2f_data.synthesis as synthesis

    real = synthesis.synthesize

    def no_deformations(kind, image, foreground, seed, **overrides):
        # Stands in for a generator that finds no room (the builder is under test, not it).
        if kind == "deformation":
            raise synthesis.SynthesisError("could not place a deformation anomaly after 8 attempt(s): no room")
        return real(kind, image, foreground, seed, **overrides)

    monkeypatch.setattr(sample_path, "synthesize", no_deformations)
    out = tmp_path / "out"
    assert run_build(out, "--categories", "nut") == 0
    text = capsys.readouterr().out
    assert "Failed samples: 8" in text and "8 planned samples are missing" in text
    manifest = read_manifest(out)
    assert manifest["categories"]["nut"]["rows"] == {"crack": 8, "corrosion": 8, "deformation": 0}
    report = json.loads((out / "build_report.json").read_text())
    assert len(report["failures"]) == 8 and not report["complete"]
    assert {f["reason"] for f in report["failures"]} == {
        "could not place a deformation anomaly after 8 attempt(s): no room"}
    assert validate_dataset(out) == []
