"""The build report: folding shard results, merging skips, text and JSON."""

import json

from maphc2f_data.builder.report import BuildReport
from maphc2f_data.builder.worker import ShardResult


def _result(index, crack, skipped=(), failures=(), resumed=False, seconds=None):
    return ShardResult(category="nut", index=index, total=2, path=f"data/nut/train-0000{index}-of-00002.parquet",
                       planned=crack + 2, rows_by_type={"crack": crack, "corrosion": 1, "deformation": 1},
                       sha256="0" * 64, skipped_images=tuple(skipped), failures=tuple(failures),
                       seconds=seconds or {}, resumed=resumed)


def test_report_folds_shards_and_merges_a_skipped_image_split_over_two(tmp_path):
    report = BuildReport(out_dir=str(tmp_path), source="folder",
                         planned={"nut": {"crack": 6, "corrosion": 3, "deformation": 3}})
    skip = {"source_image": "nut/bad.png", "reason": "cannot decode", "samples": 1}
    failure = {"sample_id": "ab" * 12, "defect_type": "crack", "source_image": "nut/a.png", "reason": "no room"}
    report.add_shard(_result(0, 2, skipped=[skip], failures=[failure],
                             seconds={"synthesis": 1.5, "metrics": 0.5, "load": 0.5, "encode": 0.25, "write": 0.25}))
    report.add_shard(_result(1, 2, skipped=[skip], resumed=True))
    report.wall_seconds = 2.0
    report.finish()
    assert report.rows == {"nut": {"crack": 4, "corrosion": 2, "deformation": 2}}
    assert report.skipped_images == [{"category": "nut", "source_image": "nut/bad.png",
                                      "reason": "cannot decode", "samples": 2}]
    assert report.failures[0]["category"] == "nut"
    assert (report.shards_written, report.shards_resumed, report.rows_made) == (1, 1, 4)
    assert report.samples_per_second == 2.0
    assert report.stage_seconds["synthesis"] == 1.5
    assert report.grouped_stage_seconds() == {"foreground": 0.5, "synthesis": 2.0, "refinement": 0.0,
                                              "encode+write": 0.5}
    assert not report.complete and report.total_planned == 12 and report.total_rows == 8
    text = report.format_text()
    assert "nut/bad.png (2 samples): cannot decode" in text
    assert "Failed samples: 1" in text and "4 planned samples are missing" in text
    assert "2.00 samples/s" in text
    assert "foreground 0.5 s (17%), synthesis 2.0 s (67%), refinement 0.0 s (0%), encode+write 0.5 s (17%)" in text
    saved = json.loads(report.save(tmp_path).read_text())
    assert saved["total_rows"] == 8 and saved["complete"] is False
    assert saved["stage_group_seconds"]["synthesis"] == 2.0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_long_lists_are_cut_in_text():
    report = BuildReport(out_dir="x", source="demo")
    for i in range(30):
        report.failures.append({"category": "nut", "sample_id": f"{i:02d}", "defect_type": "crack",
                                "source_image": "a.png", "reason": "r"})
    text = report.format_text(max_listed=5)
    assert "... and 25 more (see build_report.json)" in text
