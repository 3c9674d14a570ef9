"""The dataset builder behind ``maphc2f-build``.

Modules, one job each:

* :mod:`.paper_counts` - the paper's Tables 7-9, verbatim;
* :mod:`.plan` - configuration, per-sample ids and seeds, the plan and its
  shard tasks (``make_plan``, ``BuildPlan.tasks``);
* :mod:`.rows` - one planned sample -> one row (the sample path of
  :mod:`maphc2f_data.sampling`, then PNG encoding);
* :mod:`.worker` - one shard task -> one Parquet shard (picklable entry point);
* :mod:`.runner` - who runs the shard tasks (``make_runner``: Ray by default,
  ``ray_runner`` being the only module that imports ray; ``SerialRunner``);
* :mod:`.driver` - ``build``: plan, run, manifest, card, push;
* :mod:`.pipeline` - several builds of one pipeline file on one runner;
* :mod:`.report` - the end-of-build report.
"""

from maphc2f_data.builder.driver import HUB_IGNORE_PATTERNS, build, push_to_hub
from maphc2f_data.builder.plan import BuildConfig, BuildPlan, ShardTask, derive_sample, make_plan
from maphc2f_data.builder.report import BuildReport
from maphc2f_data.builder.runner import Runner, SerialRunner, make_runner
from maphc2f_data.builder.worker import ShardResult, WorkerContext, build_shard

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
