"""`maphc2f train bisqad`, `eval`, `predict`, `score` end to end on a tiny demo build (64 px, tiny DRAEM)."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from maphc2f_data.cli.main import main
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.validate import validate_dataset

TRAIN = ["--category", "nut", "--batch-size", "8", "--size", "64", "--model", "draem-tiny", "--val-max", "8",
         "--device", "cpu", "--no-progress"]


def _qualities(folder):
    values = []
    for path in sorted((folder / "data" / "nut").glob("*.parquet")):
        values += pq.read_table(path, columns=["quality"]).column("quality").to_pylist()
    return values


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("bisqad") / "maphc2f"
    assert main(["build", "--source", "demo", "--size", "64", "--count", "2", "--categories", "nut",
                 "--serial", "--no-progress", "--out", str(out)]) == 0
    assert main(["splits", str(out), "--val-fraction", "0.2", "--seed", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def trained(demo, tmp_path_factory):
    data = tmp_path_factory.mktemp("bisqad-data") / "maphc2f"
    shutil.copytree(demo, data)
    run = tmp_path_factory.mktemp("bisqad-run") / "run"
    assert main(["train", "bisqad", "--data", str(data), "--out", str(run), "--epochs", "1", "--head-prior", "0.01",
                 *TRAIN]) == 0
    return data, run


def test_train_writes_checkpoints_log_metrics_and_quality(trained):
    data, run = trained
    for name in ("model.safetensors", "sqe.safetensors", "state.safetensors", "train_log.jsonl"):
        assert (run / name).is_file(), name
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [0] and log[0]["outer_loss"] is not None
    assert 0.0 <= log[0]["val_image_auroc"] <= 1.0 and log[0]["w_std"] >= 0.0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"nut"} and set(metrics["nut"]) == {"image_auroc", "pixel_auroc", "aupro"}
    assert all(0.0 <= v <= 1.0 for v in metrics["nut"].values())
    qualities = _qualities(data)
    assert len(qualities) == 48 and all(q is not None and 0.0 <= q <= 1.0 for q in qualities)
    assert validate_dataset(data) == []
    assert read_manifest(data)["quality"]["nut"]["scored"] == 48


def test_head_prior_is_kept_in_the_checkpoint_config(trained, tmp_path, capsys):
    from maphc2f_data.models.checkpoint import read_checkpoint_info

    _, run = trained
    assert read_checkpoint_info(run / "model.safetensors").config["head_prior"] == 0.01
    assert main(["train", "bisqad", "--data", str(trained[0]), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--head-prior", "1.5", *TRAIN]) == 2
    assert "--head-prior must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    for bad, message in (("0.8,x", "comma-separated fractions"), ("0.5,1.5", "in (0, 1)")):
        assert main(["train", "bisqad", "--data", str(trained[0]), "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--lr-drops", bad, *TRAIN]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
        assert not (tmp_path / "run").exists()


def test_rerun_resumes_after_the_last_epoch(trained, capsys):
    data, run = trained
    assert main(["train", "bisqad", "--data", str(data), "--out", str(run), "--epochs", "2", "--no-eval",
                 "--no-quality", "--head-prior", "0.01", *TRAIN]) == 0
    assert "resuming" in capsys.readouterr().out
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [0, 1]
    # DRAEM's drops at int(0.8 * 2) = int(0.9 * 2) = 1: the resumed epoch runs at 1e-4 * 0.2 ** 2
    assert log[0]["lr"] == 1e-4 and log[1]["lr"] == pytest.approx(4e-6)
    # other options in the same run folder: one line, exit 2
    assert main(["train", "bisqad", "--data", str(data), "--out", str(run), "--epochs", "2", "--lambda-sqe", "0",
                 "--head-prior", "0.01", *TRAIN]) == 2
    assert "other options" in capsys.readouterr().err


def test_train_needs_a_validation_split(tmp_path, capsys):
    out = tmp_path / "maphc2f"
    assert main(["build", "--source", "demo", "--size", "64", "--count", "1", "--categories", "nut",
                 "--serial", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "bisqad", "--data", str(out), "--out", str(tmp_path / "run"), "--epochs", "1", *TRAIN]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "maphc2f splits" in err


def test_eval_writes_metrics_json_csv_and_heatmaps(trained, tmp_path):
    _, run = trained
    out = tmp_path / "eval" / "metrics.json"
    sheet = tmp_path / "eval" / "sheet.png"
    assert main(["eval", "--source", "demo", "--category", "nut", "--checkpoint", str(run / "model.safetensors"),
                 "--out", str(out), "--heatmaps", str(sheet)]) == 0
    metrics = json.loads(out.read_text())
    assert list(metrics) == ["nut"] and sorted(metrics["nut"]) == ["aupro", "image_auroc", "pixel_auroc"]
    assert (tmp_path / "eval" / "metrics.csv").read_text().startswith("category,image_auroc,pixel_auroc,aupro")
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 3 * 128


def test_predict_writes_maps_and_scores(trained, tmp_path):
    _, run = trained
    picture = tmp_path / "in.png"
    cv2.imwrite(str(picture), np.full((80, 100, 3), 120, np.uint8))
    assert main(["predict", "--checkpoint", str(run / "model.safetensors"), str(picture),
                 "--out", str(tmp_path / "pred")]) == 0
    heat = cv2.imread(str(tmp_path / "pred" / "in_anomaly.png"), cv2.IMREAD_UNCHANGED)
    assert heat.shape == (64, 64) and heat.dtype == np.uint8
    with (tmp_path / "pred" / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["path"] == str(picture) and 0.0 <= float(rows[0]["image_score"]) <= 1.0


def test_predict_bad_image_and_bad_checkpoint_are_one_line(trained, tmp_path, capsys):
    _, run = trained
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["predict", "--checkpoint", str(run / "model.safetensors"), str(bad), "--out", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["predict", "--checkpoint", str(run / "train_log.jsonl"), str(bad), "--out", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["eval", "--source", "demo", "--category", "nut", "--checkpoint", str(run / "sqe.safetensors"),
                 "--out", str(tmp_path / "m.json")]) == 2
    assert "expected 'draem'" in capsys.readouterr().err


def test_score_fills_quality_of_a_fresh_copy(demo, trained, tmp_path):
    _, run = trained
    data = tmp_path / "maphc2f"
    shutil.copytree(demo, data)
    assert all(q is None for q in _qualities(data))
    assert main(["score", "--data", str(data), "--sqe", str(run / "sqe.safetensors")]) == 0
    qualities = _qualities(data)
    assert all(q is not None and 0.0 <= q <= 1.0 for q in qualities)
    assert validate_dataset(data) == []
    assert main(["score", "--data", str(data), "--sqe", str(run / "model.safetensors")]) == 2
