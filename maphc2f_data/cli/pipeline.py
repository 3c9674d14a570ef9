"""``maphc2f pipeline FILE``: run the builds of a pipeline file into one dataset.

Thin: load the file (:func:`maphc2f_data.builder.pipeline.load_pipeline`),
make one runner, call :func:`~maphc2f_data.builder.pipeline.run_pipeline`,
print each build's report. ``--dry-run`` prints the combined plan.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

HELP = "Run the builds of a pipeline file (e.g. pipelines/paper.json) into one dataset folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from maphc2f_data.cli.build import add_runner_arguments

    parser.add_argument("pipeline", help="pipeline JSON file (see pipelines/README.md)")
    parser.add_argument("--out", default=None, help="output folder instead of the pipeline's 'out'")
    parser.add_argument("--dry-run", action="store_true", help="print the combined plan as JSON and stop")
    add_runner_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bars")


def run(args: argparse.Namespace) -> int:
    from maphc2f_data.builder.pipeline import combined_plan, load_pipeline, run_pipeline
    from maphc2f_data.cli.build import recorded_argv, runner_from_args

    pipeline = load_pipeline(args.pipeline).with_out(args.out)
    if args.dry_run:
        print(json.dumps(combined_plan(pipeline), indent=2))
        return 0
    runner = runner_from_args(args)
    command = ["maphc2f", "pipeline", *recorded_argv(args)]
    try:
        reports = run_pipeline(pipeline, runner, command=command, progress=not args.no_progress)
    finally:
        runner.close()
    for report in reports:
        print(report.format_text())
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m maphc2f_data.cli.pipeline``; returns the exit code."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("pipeline", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
