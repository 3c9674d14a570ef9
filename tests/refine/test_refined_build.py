"""Builds with checkpoints: every row refined, outside the mask band the normal image, hashes in plans."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy import ndimage

from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.png import decode_png
from maphc2f_data.dataset.shards import read_shard_metadata
from maphc2f_data.dataset.validate import validate_dataset
from maphc2f_data.refine.checkpoints import DEFAULT_DILATE_PX, file_sha256
from maphc2f_data.sampling import NormalImages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from build_helpers import run_build  # noqa: E402


def test_refined_build_rows_and_manifest(checkpoints, tmp_path, capsys):
    npcf, npcfpp = checkpoints
    out = tmp_path / "refined"
    assert run_build(out, "--categories", "nut", "--npcf", str(npcf), "--npcfpp", str(npcfpp)) == 0
    assert validate_dataset(out) == []
    normals = NormalImages(out)
    rows = [row for path in sorted((out / "data").rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert len(rows) == 24 and {row["stage"] for row in rows} == {"npcf++"}
    square = np.ones((2 * DEFAULT_DILATE_PX + 1,) * 2, bool)
    for row in rows:
        image, mask = decode_png(row["image"]["bytes"]), decode_png(row["mask"]["bytes"]) > 0
        normal = normals.image(row["category"], row["source_image"], image.shape[0])
        far = ~ndimage.binary_dilation(mask, square)
        assert np.array_equal(image[far], normal[far])
    refine = read_manifest(out)["config"]["refine"]
    assert refine == {"stage": "npcf++", "npcf": file_sha256(npcf), "npcfpp": file_sha256(npcfpp),
                      "dilate_px": DEFAULT_DILATE_PX}

    # Other weights (npcF only): the plan hash changes, so resuming rebuilds every shard.
    shards = sorted((out / "data").rglob("*.parquet"))
    hashes = {p: read_shard_metadata(p)["plan_hash"] for p in shards}
    assert run_build(out, "--categories", "nut", "--npcf", str(npcf)) == 0
    assert all(read_shard_metadata(p)["plan_hash"] != hashes[p] for p in shards)
    assert {r["stage"] for p in shards for r in pq.read_table(p, columns=["stage"]).to_pylist()} == {"npcf"}


def test_compiled_refinement_is_fingerprinted_and_close_to_eager(checkpoints, tmp_path):
    npcf, npcfpp = checkpoints
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    common = ("--categories", "nut", "--count", "1", "--npcf", str(npcf), "--npcfpp", str(npcfpp))
    assert run_build(eager, *common) == 0
    assert run_build(compiled, *common, "--compile") == 0
    assert validate_dataset(compiled) == []
    assert read_manifest(compiled)["config"]["refine"] == {**read_manifest(eager)["config"]["refine"], "compiled": True}

    def rows(folder):
        paths = sorted((folder / "data").rglob("*.parquet"))
        return paths, {row["sample_id"]: row for path in paths for row in pq.read_table(path).to_pylist()}

    eager_paths, eager_rows = rows(eager)
    compiled_paths, compiled_rows = rows(compiled)
    assert set(compiled_rows) == set(eager_rows)
    # Compiled kernels may round differently: never the same plan hash as an eager build.
    assert all(read_shard_metadata(a)["plan_hash"] != read_shard_metadata(b)["plan_hash"]
               for a, b in zip(eager_paths, compiled_paths))
    for sample_id, row in compiled_rows.items():
        other = eager_rows[sample_id]
        assert row["mask"]["bytes"] == other["mask"]["bytes"] and row["stage"] == "npcf++"
        difference = np.abs(decode_png(row["image"]["bytes"]).astype(int) - decode_png(other["image"]["bytes"]))
        assert difference.max() <= 2


def test_build_with_a_wrong_checkpoint_exits_2(checkpoints, tmp_path, capsys):
    npcf, npcfpp = checkpoints
    assert run_build(tmp_path / "a", "--npcf", str(npcfpp)) == 2
    err = capsys.readouterr().err.strip()
    assert "expected a 'npcf' checkpoint" in err and "\n" not in err
    assert run_build(tmp_path / "b", "--npcfpp", str(npcfpp)) == 2
    assert "--npcfpp needs --npcf" in capsys.readouterr().err
    assert run_build(tmp_path / "d", "--compile") == 2
    assert "--compile needs --npcf" in capsys.readouterr().err
    assert not (tmp_path / "d" / "data").exists()
    assert run_build(tmp_path / "c", "--npcf", str(tmp_path / "missing.safetensors")) == 2
    assert "not found" in capsys.readouterr().err
