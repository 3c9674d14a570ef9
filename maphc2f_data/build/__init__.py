"""The dataset builder behind ``maphc2f-build``.

Modules, one job each:

* :mod:`.paper_counts` - the paper's Tables 7-9, verbatim;
* :mod:`.plan` - configuration, per-sample ids and seeds, shard tasks;
* :mod:`.sample` - one row: resize, synthesise, measure, encode;
* :mod:`.metrics` - anomaly area, share on the foreground, CIEDE2000 contrast;
* :mod:`.worker` - one shard task -> one Parquet shard (picklable entry point);
* :mod:`.runner` - who runs the shard tasks (``make_runner``: Ray by default,
  ``ray_runner`` being the only module that imports ray; ``SerialRunner``);
* :mod:`.builder` - the driver: plan, run, manifest, card, push;
* :mod:`.report` - the end-of-build report.
"""

from maphc2f_data.build.builder import HUB_IGNORE_PATTERNS, build, make_plan, push_to_hub
from maphc2f_data.build.plan import BuildConfig, BuildPlan, ShardTask, derive_sample
from maphc2f_data.build.report import BuildReport
from maphc2f_data.build.runner import Runner, SerialRunner, make_runner
from maphc2f_data.build.worker import ShardResult, WorkerContext, build_shard

__all__ = [
    "HUB_IGNORE_PATTERNS",
    "BuildConfig",
    "BuildPlan",
    "BuildReport",
    "Runner",
    "SerialRunner",
    "ShardResult",
    "ShardTask",
    "WorkerContext",
    "build",
    "build_shard",
    "derive_sample",
    "make_plan",
    "make_runner",
    "push_to_hub",
]
