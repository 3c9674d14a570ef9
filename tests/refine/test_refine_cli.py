"""``maphc2f refine``: a raw build refined into a new, valid dataset with the same sample ids."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from maphc2f_data.cli.main import main
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.validate import validate_dataset
from maphc2f_data.refine.checkpoints import file_sha256


def _rows(root):
    rows = []
    for path in sorted((root / "data").rglob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def test_refine_writes_a_valid_dataset_with_the_same_ids(raw_build, checkpoints, tmp_path):
    npcf, npcfpp = checkpoints
    out = tmp_path / "refined"
    argv = ["refine", "--data", str(raw_build), "--npcf", str(npcf), "--npcfpp", str(npcfpp),
            "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    assert validate_dataset(out) == []
    raw, refined = _rows(raw_build), _rows(out)
    assert [r["sample_id"] for r in raw] == [r["sample_id"] for r in refined]
    assert all(r["stage"] == "npcf++" for r in refined)
    assert all(a["mask"] == b["mask"] for a, b in zip(raw, refined))
    changed = sum(not np.array_equal(decode_png(a["image"]["bytes"]), decode_png(b["image"]["bytes"]))
                  for a, b in zip(raw, refined))
    assert changed > 0  # residual nets start at the identity; one tiny epoch moves a few pixels
    manifest = read_manifest(out)
    assert manifest["config"]["refine"]["npcf"] == file_sha256(npcf)
    assert manifest["config"]["refine"]["npcfpp"] == file_sha256(npcfpp)
    assert manifest["refined_from"]["path"] == str(raw_build)
    before = {p: p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")}
    assert main(argv) == 0  # rerun: finished shards are kept
    assert before == {p: p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")}


def test_refine_refuses_foreign_out_and_wrong_checkpoint(raw_build, checkpoints, tmp_path, capsys):
    npcf, npcfpp = checkpoints
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["refine", "--data", str(raw_build), "--npcf", str(npcf), "--out", str(other), "--no-progress"]) == 2
    assert "not an earlier `maphc2f refine` output" in capsys.readouterr().err
    assert main(["refine", "--data", str(raw_build), "--npcf", str(npcfpp), "--out", str(tmp_path / "n"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("maphc2f: error:") and "\n" not in err


def test_preview_shows_each_stage(checkpoints, tmp_path):
    import cv2

    npcf, npcfpp = checkpoints
    plain, staged = tmp_path / "plain.png", tmp_path / "staged.png"
    common = ["preview", "--source", "demo", "--category", "nut", "--size", "64"]
    assert main([*common, "--out", str(plain)]) == 0
    assert main([*common, "--out", str(staged), "--npcf", str(npcf), "--npcfpp", str(npcfpp)]) == 0
    assert cv2.imread(str(staged)).shape[0] > 2 * cv2.imread(str(plain)).shape[0]  # raw / npcf / npcf++ rows
