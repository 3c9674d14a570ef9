"""``maphc2f export``: MVTec layout on disk, only the mvtec format, safe destinations."""

import pytest

from maphc2f_data.cli.export import main
from tiny_dataset import total_rows


def test_export_mvtec_layout(built_dataset, tmp_path, capsys):
    out = tmp_path / "mvtec"
    assert main([str(built_dataset), "--format", "mvtec", "--out", str(out)]) == 0
    assert f"wrote {total_rows()} images and masks to {out}" in capsys.readouterr().out
    assert len(list(out.glob("*/test/*/*.png"))) == total_rows()
    assert len(list(out.glob("*/ground_truth/*/*_mask.png"))) == total_rows()


def test_only_mvtec_format_is_offered(built_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(built_dataset), "--format", "coco", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "invalid choice: 'coco'" in capsys.readouterr().err


def test_destination_inside_the_dataset_exits_2(built_dataset, capsys):
    assert main([str(built_dataset), "--out", str(built_dataset / "x")]) == 2
    assert "must not be inside the dataset" in capsys.readouterr().err
    assert not (built_dataset / "x").exists()
