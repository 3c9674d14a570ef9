"""The dataset card: YAML datasets reads, per-source licences, deterministic text."""

import copy
from pathlib import Path

import pytest
import yaml
from tiny_dataset import LAYOUT

from maphc2f_data.dataset.card import card_yaml, hf_license_id, render_card, write_card
from maphc2f_data.dataset.manifest import read_manifest


def _header(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_yaml_has_all_as_default_plus_one_config_per_category(built_dataset):
    header = _header((built_dataset / "README.md").read_text())
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"all", *LAYOUT}
    assert header["configs"][0]["config_name"] == "all" and configs["all"]["default"] is True
    assert [c for c in header["configs"] if c.get("default")] == [configs["all"]]
    assert configs["all"]["data_files"] == [{"split": "train", "path": "data/*/train-*.parquet"}]
    assert configs["01"]["data_files"] == [{"split": "train", "path": "data/01/train-*.parquet"}]
    assert header["license"] == ["cc-by-4.0", "cc-by-nc-sa-4.0", "cc-by-sa-4.0"]
    assert {"anomaly-detection", "synthetic", "industrial"} <= set(header["tags"])
    assert header["pretty_name"] == "MaPhC2F" and header["size_categories"] == ["n<1K"]


def test_data_file_globs_match_exactly_the_listed_shards(built_dataset):
    manifest = read_manifest(built_dataset)
    header = _header((built_dataset / "README.md").read_text())
    for config in header["configs"]:
        matched = sorted(p.relative_to(built_dataset).as_posix()
                         for files in config["data_files"] for p in built_dataset.glob(files["path"]))
        expected = sorted(s["path"] for name, entry in manifest["categories"].items()
                          if config["config_name"] in ("all", name) for s in entry["shards"])
        assert matched == expected  # never anything under .cache/


def test_body_states_licences_per_source_counts_and_citation(built_dataset):
    text = (built_dataset / "README.md").read_text()
    assert "| `bottle` | MVTec AD | CC BY-NC-SA 4.0 | 9 |" in text
    assert "| `candle` | VisA | CC BY 4.0 | 6 |" in text
    assert "| `01` | BTAD | CC BY-SA 4.0 | 3 |" in text
    assert "| `bottle` | mvtec | 3 | 3 | 3 | 9 |" in text
    assert "Only training-split normal (defect-free)" in text
    assert 'load_dataset("maphc2f", "bottle", split="train")' in text
    assert 'load_dataset("/path/to/maphc2f"' in text and "HF_HUB_OFFLINE=1" in text
    assert "Qian, Long and Zhu, Bingke" in text and "MathPhys-Guided Coarse-to-Fine" in text
    assert "$" not in text.replace("$$", "")  # every template field was filled


def test_rendering_is_deterministic(built_dataset, tmp_path):
    manifest = read_manifest(built_dataset)
    shuffled = copy.deepcopy(manifest)
    shuffled["categories"] = dict(reversed(list(manifest["categories"].items())))
    (tmp_path / "maphc2f").mkdir()
    write_card(tmp_path / "maphc2f", shuffled)
    assert (tmp_path / "maphc2f" / "README.md").read_bytes() == (built_dataset / "README.md").read_bytes()


def test_validation_split_appears_where_shards_exist(built_dataset):
    manifest = read_manifest(built_dataset)
    manifest["categories"]["candle"]["shards"].append(
        {"path": "data/candle/validation-00000-of-00001.parquet", "split": "validation", "category": "candle",
         "rows": 1, "sha256": "0" * 64, "node": None})
    configs = {c["config_name"]: c for c in card_yaml(manifest)["configs"]}
    assert [f["split"] for f in configs["candle"]["data_files"]] == ["train", "validation"]
    assert [f["split"] for f in configs["bottle"]["data_files"]] == ["train"]
    assert configs["all"]["data_files"][1] == {"split": "validation", "path": "data/*/validation-*.parquet"}


@pytest.mark.parametrize("text, license_id", [
    ("CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0"), ("CC BY 4.0", "cc-by-4.0"), ("CC BY-SA 4.0", "cc-by-sa-4.0"),
    ("CC0-1.0 (scikit-image photos) / public domain (coins)", "cc0-1.0"),
    ("unknown (inherits the folder's own licence)", "unknown"), ("", "unknown"), ("proprietary", "other"),
])
def test_hf_license_ids(text, license_id):
    assert hf_license_id(text) == license_id


def test_a_category_named_all_is_refused(built_dataset):
    manifest = read_manifest(built_dataset)
    manifest["categories"]["all"] = manifest["categories"].pop("bottle")
    with pytest.raises(ValueError, match="'all'"):
        render_card(manifest)


REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_template_is_the_one_in_dataset_cards():
    from maphc2f_data.dataset.card import TEMPLATE_PATH

    assert TEMPLATE_PATH.read_bytes() == (REPO_ROOT / "dataset_cards" / "maphc2f.md").read_bytes()


@pytest.mark.slow
def test_a_wheel_carries_the_card_template(tmp_path):
    """Installed from a wheel (no checkout), the card must still render."""
    import shutil
    import subprocess
    import sys
    import zipfile

    # Build from a copy: setuptools writes build/ and egg-info next to the sources.
    source = tmp_path / "src"
    for name in ("maphc2f_data", "dataset_cards"):
        shutil.copytree(REPO_ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("maphc2f_data-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("maphc2f_data/dataset/templates/maphc2f.md")
    assert packaged == (REPO_ROOT / "dataset_cards" / "maphc2f.md").read_bytes()
