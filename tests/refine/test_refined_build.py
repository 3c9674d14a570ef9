"""Builds with checkpoints: every row refined, outside the mask band the normal image, hashes in plans."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy import ndimage

from maphc2f_data.builder.driver import worker_context
from maphc2f_data.builder.plan import BuildConfig, bytes_fingerprint, refine_setting
from maphc2f_data.builder.worker import open_refiner
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


def test_compile_reaches_the_refiner_and_its_fingerprint_the_plan(checkpoints, tmp_path):
    # The refiner a build's workers open is compiled, and the plan's refine setting (which feeds every
    # shard's plan hash) is exactly that refiner's stage and fingerprint, so resumes never mix the two.
    # (Compiled refinement itself: tests/refine/test_checkpoints.py.)
    npcf, npcfpp = (str(path) for path in checkpoints)
    settings = dict(source="demo", out=str(tmp_path / "out"), npcf=npcf, npcfpp=npcfpp)
    for compile in (False, True):
        config = BuildConfig(**settings, compile=compile)
        context = worker_context(config, tmp_path / "out")
        refiner = open_refiner(context.npcf, context.npcfpp, context.compile)
        assert refiner.compiled is compile
        assert refine_setting(config) == {"stage": refiner.stage, **refiner.fingerprint}
    assert bytes_fingerprint(BuildConfig(**settings, compile=True)) != bytes_fingerprint(BuildConfig(**settings))


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
