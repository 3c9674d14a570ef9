"""get_source: the registry, root checks, exit code 2, and import hygiene."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from maphc2f_data.cli.main import EXIT_USER_ERROR, run_command
from maphc2f_data.errors import SourceLayoutError, UserError
from maphc2f_data.sources import SOURCES, Source, get_source


def test_registry_holds_the_readers():
    assert {"mvtec", "visa", "btad", "folder"} <= set(SOURCES)
    assert all(issubclass(cls, Source) and cls.name == name for name, cls in SOURCES.items())
    assert all(SOURCES[name].needs_root for name in ("mvtec", "visa", "btad", "folder"))


def test_unknown_source_lists_valid_names():
    with pytest.raises(UserError) as info:
        get_source("mvtech", "/tmp")
    message = str(info.value)
    assert "'mvtech'" in message and "btad, " in message and "mvtec" in message and "\n" not in message


@pytest.mark.parametrize("name", ["mvtec", "visa", "btad", "folder"])
def test_root_is_required_and_must_exist(tmp_path, name):
    with pytest.raises(SourceLayoutError, match="--root"):
        get_source(name)
    with pytest.raises(SourceLayoutError, match="not found") as info:
        get_source(name, tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SourceLayoutError, match="not a directory"):
        get_source(name, tmp_path / "file.txt")


def test_bad_root_exits_2_with_one_line_and_no_traceback(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = run_command(lambda args: get_source("mvtec", missing), None)
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR == 2
    assert err.count("\n") == 1 and str(missing) in err and "Traceback" not in err


def test_sources_never_import_torch_or_ray(mvtec_root):
    code = textwrap.dedent(
        f"""
        import sys
        from maphc2f_data.sources import get_source
        source = get_source("mvtec", {str(mvtec_root)!r})
        item = source.test_images("bottle")[0]
        source.load_pair(item)
        bad = [m for m in ("torch", "ray", "datasets") if m in sys.modules]
        assert not bad, bad
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_demo_needs_no_root():
    source = get_source("demo")
    assert not source.needs_root and source.categories()
    category = source.categories()[0]
    assert source.train_images(category)[0].split == "train"
