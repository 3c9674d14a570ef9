"""Training the refiners: 1-epoch runs write checkpoints with config + args; reruns resume."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from maphc2f_data.models.checkpoint import read_checkpoint_info
from maphc2f_data.training.refinement import state_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from refine_fixtures import TRAIN, train  # noqa: E402


def test_checkpoints_record_config_args_and_epoch(checkpoints, raw_build):
    npcf, npcfpp = checkpoints
    for path, recipe, model in ((npcf, "npcf", "npcf-tiny"), (npcfpp, "npcfpp", "npcfpp-tiny")):
        info = read_checkpoint_info(path)
        training = info.metadata["training"]
        assert info.model_name == model and info.config["widths"]
        assert training["recipe"] == recipe and training["epoch"] == 1 and training["epochs"] == 1
        assert training["args"]["data"] == str(raw_build) and training["args"]["batch_size"] == 8
        assert training["args"]["seed"] == 0 and set(training["losses"]) >= {"total"}
        assert training["args"]["lambda_seam"] == 0.3
        with safe_open(str(state_path(path)), framework="pt") as handle:
            assert handle.metadata()["epoch"] == "1" and any(k.endswith("exp_avg") for k in handle.keys())
    assert read_checkpoint_info(npcfpp).metadata["training"]["npcf_sha256"]


def test_rerun_resumes_after_the_last_epoch(raw_build, checkpoints, tmp_path, capsys):
    import shutil

    npcf, _ = checkpoints
    out = tmp_path / "npcf.safetensors"
    shutil.copy(npcf, out)
    shutil.copy(state_path(npcf), state_path(out))
    base = ["npcf", "--data", str(raw_build), "--out", str(out), "--model", "npcf-tiny", *TRAIN]
    assert train(*base) == 0  # same command: already done
    assert "nothing to do" in capsys.readouterr().err
    assert train(*base, "--epochs", "2") == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err and "epochs 2-2" in captured.out
    training = read_checkpoint_info(out).metadata["training"]
    assert training["epoch"] == 2 and training["epochs"] == 2


def test_bad_inputs_exit_2_with_one_line(raw_build, checkpoints, tmp_path, capsys):
    npcf, npcfpp = checkpoints
    assert train("npcfpp", "--data", str(raw_build), "--npcf", str(npcfpp), "--out", str(tmp_path / "x"),
                 "--model", "npcfpp-tiny", *TRAIN) == 2
    err = capsys.readouterr().err.strip()
    assert "expected 'npcf'" in err and "\n" not in err
    (tmp_path / "taken.safetensors").write_bytes(b"x")
    assert train("npcf", "--data", str(raw_build), "--out", str(tmp_path / "taken.safetensors"),
                 "--model", "npcf-tiny", *TRAIN) == 2
    assert "not a resumable training run" in capsys.readouterr().err
    assert train("npcf", "--data", str(raw_build), "--out", str(tmp_path / "n.safetensors"),
                 "--model", "npcf-tiny", "--lambda-seam", "-1", *TRAIN) == 2
    err = capsys.readouterr().err.strip()
    assert "--lambda-seam must be >= 0" in err and "\n" not in err
    assert not (tmp_path / "n.safetensors").exists()


def test_help_shows_the_paper_defaults(capsys):
    from maphc2f_data.cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "npcf", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 200)" in text and "(default: 32)" in text and "(default: 512)" in text
    with pytest.raises(SystemExit):
        main(["train", "npcfpp", "--help"])
    assert "(default: 50)" in " ".join(capsys.readouterr().out.split())
