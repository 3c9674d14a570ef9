"""``maphc2f validate``: ok line and exit 0, one line per problem and exit 1, exit 2 for no dataset."""

from maphc2f_data.cli import main as cli_main
from maphc2f_data.cli.validate import main
from tiny_dataset import total_rows


def test_valid_dataset_prints_ok(built_dataset, capsys):
    assert cli_main.main(["validate", str(built_dataset)]) == 0
    assert capsys.readouterr().out == f"ok: {total_rows()} rows in 4 shards\n"


def test_problems_are_listed_one_per_line_with_exit_1(dataset_copy, capsys):
    (dataset_copy / "data" / "01" / "train-00000-of-00001.parquet").unlink()
    (dataset_copy / "data" / "candle" / "junk.bin").write_bytes(b"x")
    assert main([str(dataset_copy)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "data/candle/junk.bin: file in data/ not listed in the manifest",
        "data/01/train-00000-of-00001.parquet: listed in the manifest but missing",
    ]
    assert "2 problems" in captured.err


def test_a_folder_that_is_not_a_dataset_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("maphc2f: error: not a built MaPhC2F dataset") and err.count("\n") == 1


def test_validate_is_refused_while_a_build_writes_the_folder(dataset_copy, capsys):
    from maphc2f_data.dataset.lock import dataset_lock

    with dataset_lock(dataset_copy, "maphc2f-build"):
        assert main([str(dataset_copy)]) == 2
    err = capsys.readouterr().err
    assert "another maphc2f command is using it" in err and err.count("\n") == 1
    with dataset_lock(dataset_copy, "maphc2f export", shared=True):  # readers share the lock
        assert main([str(dataset_copy)]) == 0
