"""``maphc2f splits``: prints rows per split, validates its options."""

import pytest

from maphc2f_data.cli.splits import main
from maphc2f_data.dataset.manifest import read_manifest
from maphc2f_data.dataset.validate import validate_dataset
from tiny_dataset import total_rows


def test_splits_prints_the_table_and_updates_the_dataset(dataset_copy, capsys):
    assert main([str(dataset_copy), "--val-fraction", "0.5", "--seed", "7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["category", "train", "validation"]
    assert [line.split()[0] for line in lines[1:]] == ["01", "bottle", "candle", "total"]
    train, validation = map(int, lines[-1].split()[1:])
    assert train + validation == total_rows() and validation > 0
    assert read_manifest(dataset_copy)["splits"] == {"val_fraction": 0.5, "seed": 7}
    assert validate_dataset(dataset_copy) == []


@pytest.mark.parametrize("fraction", ["1.0", "-0.2", "abc"])
def test_bad_fraction_is_a_usage_error(dataset_copy, fraction, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(dataset_copy), "--val-fraction", fraction])
    assert info.value.code == 2
    assert "--val-fraction" in capsys.readouterr().err


def test_not_a_dataset_exits_2(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_splits_refuses_a_dataset_another_command_is_writing(dataset_copy, capsys):
    """Splits during a build of the same folder used to rewrite the shards under it."""
    from maphc2f_data.dataset.lock import dataset_lock

    before = read_manifest(dataset_copy)
    with dataset_lock(dataset_copy, "maphc2f-build"):
        assert main([str(dataset_copy), "--val-fraction", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "maphc2f splits: cannot write" in err and "build.lock" in err
    assert read_manifest(dataset_copy) == before and validate_dataset(dataset_copy) == []


def test_splits_refuses_a_folder_whose_manifest_is_not_ours(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "manifest.json").write_text('{"name": "something-else", "files": []}')
    assert main([str(tmp_path)]) == 2
    assert "is not a maphc2f manifest" in capsys.readouterr().err
