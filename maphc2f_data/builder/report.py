"""The end-of-build report: what was made, what was skipped and how fast.

Saved as ``build_report.json`` in the output folder (it holds timings, so it
is kept out of the deterministic manifest) and printed by the CLI.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping

from maphc2f_data.builder.worker import ShardResult
from maphc2f_data.sampling import STAGES
from maphc2f_data.synthesis import DEFECT_TYPES

REPORT_NAME = "build_report.json"

#: The report's headline stages and the per-shard timers each sums.
STAGE_GROUPS = (
    ("foreground", ("load", "foreground")),
    ("synthesis", ("synthesis", "metrics")),
    ("refinement", ("refine",)),
    ("encode+write", ("encode", "write")),
)


@dataclass
class BuildReport:
    """Summary of one ``maphc2f-build`` run.

    Attributes
    ----------
    out_dir : str
        The dataset folder.
    source : str
        Source name.
    runner : str
        Runner name ("serial", "ray").
    runner_detail : str
        Where the shards were made, e.g. "embedded Ray, 2 shard workers"
        (empty when the runner does not say).
    planned : dict
        Category -> defect type -> planned samples.
    rows : dict
        Category -> defect type -> rows in the shards.
    skipped_images : list of dict
        ``{"category", "source_image", "reason", "samples"}``: unreadable inputs.
    failures : list of dict
        ``{"category", "sample_id", "defect_type", "source_image", "reason"}``.
    shards_written, shards_resumed : int
        Shards made by this run / found finished on disk.
    rows_made : int
        Rows written by this run (resumed shards excluded).
    wall_seconds : float
        Wall time of the run.
    stage_seconds : dict
        Stage -> seconds summed over shards and workers.
    warnings : list of str
    """

    out_dir: str
    source: str
    runner: str = "serial"
    runner_detail: str = ""
    planned: Dict[str, Dict[str, int]] = field(default_factory=dict)
    rows: Dict[str, Dict[str, int]] = field(default_factory=dict)
    skipped_images: List[Dict[str, Any]] = field(default_factory=list)
    failures: List[Dict[str, Any]] = field(default_factory=list)
    shards_written: int = 0
    shards_resumed: int = 0
    rows_made: int = 0
    wall_seconds: float = 0.0
    stage_seconds: Dict[str, float] = field(default_factory=lambda: {stage: 0.0 for stage in STAGES})
    warnings: List[str] = field(default_factory=list)

    # -- derived ----------------------------------------------------------
    @property
    def total_planned(self) -> int:
        return sum(sum(types.values()) for types in self.planned.values())

    @property
    def total_rows(self) -> int:
        return sum(sum(types.values()) for types in self.rows.values())

    @property
    def samples_per_second(self) -> float:
        """Rows made by this run per second of wall time."""
        return self.rows_made / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Whether every planned sample is in the dataset."""
        return self.total_rows == self.total_planned

    def grouped_stage_seconds(self) -> Dict[str, float]:
        """Seconds per headline stage (:data:`STAGE_GROUPS`): foreground
        (image loading included), synthesis (with the row metrics),
        refinement (0 until npcF/npcF++ run), encode+write."""
        return {name: sum(self.stage_seconds.get(stage, 0.0) for stage in stages) for name, stages in STAGE_GROUPS}

    # -- building ---------------------------------------------------------
    def add_shard(self, result: ShardResult) -> None:
        """Fold one shard's result into the report."""
        counts = self.rows.setdefault(result.category, {kind: 0 for kind in DEFECT_TYPES})
        for kind, n in result.rows_by_type.items():
            counts[kind] = counts.get(kind, 0) + int(n)
        for entry in result.skipped_images:
            self.skipped_images.append({"category": result.category, **entry})
        for entry in result.failures:
            self.failures.append({"category": result.category, **entry})
        if result.resumed:
            self.shards_resumed += 1
        else:
            self.shards_written += 1
            self.rows_made += result.rows
            for stage, seconds in result.seconds.items():
                self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + float(seconds)

    def finish(self) -> None:
        """Merge skipped images split over two shards and sort every list."""
        merged: Dict[tuple, Dict[str, Any]] = {}
        for entry in self.skipped_images:
            key = (entry["category"], entry["source_image"])
            if key in merged:
                merged[key]["samples"] += entry["samples"]
            else:
                merged[key] = dict(entry)
        self.skipped_images = [merged[key] for key in sorted(merged)]
        self.failures.sort(key=lambda e: (e["category"], e["source_image"], e["defect_type"], e["sample_id"]))

    # -- output -----------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data.update(total_planned=self.total_planned, total_rows=self.total_rows,
                    samples_per_second=self.samples_per_second, complete=self.complete,
                    stage_group_seconds=self.grouped_stage_seconds())
        return data

    def save(self, out_dir: os.PathLike) -> Path:
        """Write ``build_report.json`` into ``out_dir`` (atomically)."""
        path = Path(out_dir) / REPORT_NAME
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def format_text(self, max_listed: int = 20) -> str:
        """Human-readable report: counts table, skips, failures, timings."""
        lines: List[str] = []
        header = ["category", *DEFECT_TYPES, "rows", "planned"]
        table = []
        for category in sorted(set(self.planned) | set(self.rows)):
            rows = self.rows.get(category, {})
            planned = self.planned.get(category, {})
            table.append([category, *(str(rows.get(kind, 0)) for kind in DEFECT_TYPES),
                          str(sum(rows.values())), str(sum(planned.values()))])
        totals = ["total", *(str(sum(self.rows.get(c, {}).get(kind, 0) for c in self.rows))
                             for kind in DEFECT_TYPES), str(self.total_rows), str(self.total_planned)]
        lines.extend(_table(header, table + [totals]))
        lines.append("")
        lines.append(f"Skipped source images: {len(self.skipped_images)}")
        lines.extend(_listed((f"  {e['source_image']} ({e['samples']} samples): {e['reason']}"
                              for e in self.skipped_images), len(self.skipped_images), max_listed))
        lines.append(f"Failed samples: {len(self.failures)}")
        lines.extend(_listed((f"  {e['source_image']} {e['defect_type']} {e['sample_id']}: "
                              f"{e['reason']}" for e in self.failures), len(self.failures), max_listed))
        if not self.complete:
            lines.append(f"Note: {self.total_planned - self.total_rows} planned samples are missing "
                         "(skipped inputs and failures above); the dataset holds the rest.")
        lines.append(f"Shards: {self.shards_written} written, {self.shards_resumed} already finished")
        lines.append(f"Wall time: {self.wall_seconds:.1f} s, {self.rows_made} rows made, "
                     f"{self.samples_per_second:.2f} samples/s ({self.runner} runner"
                     f"{': ' + self.runner_detail if self.runner_detail else ''})")
        lines.append(f"Stage time (summed over workers): {_stage_text(self.grouped_stage_seconds())}")
        lines.append(f"  in detail: {_stage_text(self.stage_seconds)}")
        lines.append(f"Output: {self.out_dir}")
        return "\n".join(lines)


def _stage_text(seconds: Mapping[str, float]) -> str:
    total = sum(seconds.values())
    return ", ".join(f"{stage} {value:.1f} s ({100 * value / total:.0f}%)" if total else f"{stage} {value:.1f} s"
                     for stage, value in seconds.items())


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def fmt(row: List[str]) -> str:
        return "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))

    return [fmt(header), *(fmt(row) for row in rows)]


def _listed(lines: Iterable[str], total: int, limit: int) -> List[str]:
    listed = []
    for i, line in enumerate(lines):
        if i == limit:
            listed.append(f"  ... and {total - limit} more (see {REPORT_NAME})")
            break
        listed.append(line)
    return listed


def planned_counts(plan_categories: Mapping[str, Any]) -> Dict[str, Dict[str, int]]:
    """Category -> type -> planned samples from a plan's categories."""
    return {name: {kind: int(plan.counts[kind]) for kind in DEFECT_TYPES} for name, plan in plan_categories.items()}
