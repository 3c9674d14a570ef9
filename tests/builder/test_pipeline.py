"""Pipeline files: the shipped ones load, and paper.json plans the paper's 115,987 images."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from fake_trees import make_btad_tree, make_mvtec_tree, make_visa_tree  # noqa: E402

from maphc2f_data.builder.paper_counts import PAPER_COUNTS  # noqa: E402
from maphc2f_data.builder.pipeline import load_pipeline  # noqa: E402
from maphc2f_data.cli.pipeline import main  # noqa: E402
from maphc2f_data.errors import UserError  # noqa: E402

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def test_demo_pipeline_loads():
    pipeline = load_pipeline(PIPELINES / "demo.json")
    (config,) = pipeline.configs
    assert (config.source, config.count, config.size, config.seed, config.out) == ("demo", 1, 512, 0, "maphc2f")
    assert pipeline.with_out("elsewhere").configs[0].out == "elsewhere"


def test_paper_pipeline_needs_the_roots(monkeypatch):
    for name in ("MVTEC_ROOT", "VISA_ROOT", "BTAD_ROOT", "SAM_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="MVTEC_ROOT"):
        load_pipeline(PIPELINES / "paper.json")


def test_paper_pipeline_dry_run_is_the_papers_composition(tmp_path, monkeypatch, capsys):
    small = dict(n_train=1, size=8)
    monkeypatch.setenv("MVTEC_ROOT", str(make_mvtec_tree(tmp_path / "m", list(PAPER_COUNTS["mvtec"]),
                                                         n_test_good=1, defects=(), **small)))
    monkeypatch.setenv("VISA_ROOT", str(make_visa_tree(tmp_path / "v", list(PAPER_COUNTS["visa"]),
                                                       n_test_normal=1, n_anomaly=1, **small)))
    monkeypatch.setenv("BTAD_ROOT", str(make_btad_tree(tmp_path / "b", n_test_ok=1, n_test_ko=1, **small)))
    monkeypatch.delenv("SAM_CHECKPOINT", raising=False)
    configs = load_pipeline(PIPELINES / "paper.json").configs
    assert [c.source for c in configs] == ["mvtec", "visa", "btad"]
    assert all(c.count == "paper" and c.sam_checkpoint is None and c.out == "maphc2f" for c in configs)
    assert main([str(PIPELINES / "paper.json"), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total"] == 115_987 and len(plan["categories"]) == 30
    assert plan["categories"]["03"]["deformation"] == 998


def test_malformed_pipelines_are_user_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"builds": [{"source": "demo", "colour": "red"}]}))
    with pytest.raises(UserError, match="unknown keys colour"):
        load_pipeline(bad)
    bad.write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_pipeline(bad)
    with pytest.raises(UserError, match="not found"):
        load_pipeline(tmp_path / "missing.json")


def test_pipeline_runs_its_builds_into_one_folder_on_one_runner(tmp_path, capsys, monkeypatch):
    from maphc2f_data.builder import runner as runner_module

    made, closed = [], []
    real_make_runner = runner_module.make_runner

    def counting_make_runner(*args, **kwargs):  # the real runner, counted
        runner = real_make_runner(*args, **kwargs)
        real_close = runner.close
        runner.close = lambda: (closed.append(runner), real_close())
        made.append(runner)
        return runner

    monkeypatch.setattr(runner_module, "make_runner", counting_make_runner)
    pipeline = tmp_path / "tiny.json"
    pipeline.write_text(json.dumps({
        "out": str(tmp_path / "unused"),
        "settings": {"count": 1, "size": 64},
        "builds": [{"source": "demo", "categories": ["nut"]}, {"source": "demo", "categories": ["coins"]}],
    }))
    out = tmp_path / "ds"
    assert main([str(pipeline), "--out", str(out), "--no-progress", "--serial"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["categories"]) == ["coins", "nut"] and manifest["total_rows"] == 48
    # Both builds ran on one runner (one Ray, SAM loaded once), closed once at the end.
    assert len(made) == 1 and closed == made
    assert not (tmp_path / "unused").exists()
    # The manifest records the pipeline command, not a build command made up for it.
    assert manifest["command"][:2] == ["maphc2f", "pipeline"]


def test_pipeline_runner_never_goes_through_the_build_cli(monkeypatch, tmp_path):
    """Layers point down: the pipeline calls the library's build(), never cli.build."""
    import maphc2f_data.cli.build as cli_build

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline re-entered the build CLI")

    monkeypatch.setattr(cli_build, "main", refuse)
    monkeypatch.setattr(cli_build, "run", refuse)
    pipeline = tmp_path / "one.json"
    pipeline.write_text(json.dumps({"settings": {"count": 1, "size": 64},
                                    "builds": [{"source": "demo", "categories": ["nut"]}]}))
    assert main([str(pipeline), "--out", str(tmp_path / "ds"), "--no-progress", "--serial"]) == 0
    assert (tmp_path / "ds" / "manifest.json").is_file()
