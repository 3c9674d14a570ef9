"""``maphc2f preview``: writes a readable sheet; bad input is one line and exit 2."""

from __future__ import annotations

import cv2
import pytest

from maphc2f_data.cli.main import main
from maphc2f_data.preview import SheetLayout


def test_preview_demo_writes_a_png(tmp_path, capsys):
    out = tmp_path / "nested" / "dir" / "s.png"
    code = main(["preview", "--source", "demo", "--out", str(out), "--category", "nut", "--size", "96"])
    assert code == 0
    sheet = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert sheet is not None
    assert sheet.shape == SheetLayout.for_tile(96).shape(1, 4)
    stdout = capsys.readouterr().out
    assert str(out) in stdout and f"{sheet.shape[1]}x{sheet.shape[0]}" in stdout
    assert not list(out.parent.glob(".*tmp*"))  # the temporary file was renamed away


def test_preview_built_dataset(built_dataset, tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["preview", str(built_dataset), "--out", str(out), "--category", "candle", "01", "--size", "32"]) == 0
    assert cv2.imread(str(out)).shape == SheetLayout.for_tile(32).shape(2, 4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "demo", "--category", "screw"], "unknown category 'screw'"),
        ([], "exactly one of DIR"),
        (["somewhere", "--source", "demo"], "exactly one of DIR"),
        (["--source", "demo", "--root", "/tmp"], "--root does not apply"),
        (["--source", "nosuch"], "unknown source 'nosuch'"),
        (["--source", "demo", "--sam-model", "vit_q"], "vit_q"),
        (["--source", "demo", "--size", "8"], "--size"),
        (["/definitely/not/a/dataset"], "not a built MaPhC2F dataset"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "s.png"
    code = main(["preview", *argv, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maphc2f: error:")
    assert message in lines[0]
    assert not out.exists()


def test_out_must_be_png(tmp_path, capsys):
    assert main(["preview", "--source", "demo", "--out", str(tmp_path / "s.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
