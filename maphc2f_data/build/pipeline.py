"""Build pipelines: a JSON file naming one or more builds into one dataset.

The paper's dataset is three builds (MVTec AD, VisA, BTAD) into one folder;
``pipelines/paper.json`` writes that down once. Format::

    {
      "description": "free text",
      "out": "maphc2f",
      "settings": {"count": "paper", "seed": 0, "size": 512, ...},   # shared by every build
      "builds": [{"source": "mvtec", "root": {"env": "MVTEC_ROOT"}}, ...]
    }

Keys of ``settings`` and of each build are :class:`~maphc2f_data.build.plan.BuildConfig`
fields (a build's own keys win). Machine-specific values are written as
``{"env": "NAME"}`` (required environment variable) or
``{"env": "NAME", "default": value}`` (optional; ``null`` allowed), so the
file itself stays portable.

Run it with ``python -m maphc2f_data.build.pipeline pipelines/paper.json``
(``--dry-run`` prints the combined plan; ``--out`` overrides the folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from maphc2f_data.build.plan import BuildConfig, parse_count
from maphc2f_data.errors import UserError

_FIELDS = {f.name for f in fields(BuildConfig)}
_MISSING = object()


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline: its description and one config per build, in order."""

    description: str
    configs: Tuple[BuildConfig, ...]


def _resolve(value: Any, where: str) -> Any:
    if isinstance(value, Mapping) and set(value) <= {"env", "default"} and "env" in value:
        name = value["env"]
        default = value.get("default", _MISSING)
        if name in os.environ and os.environ[name] != "":
            return os.environ[name]
        if default is _MISSING:
            raise UserError(f"{where} needs the environment variable {name} (set it to the path)")
        return default
    return value


def load_pipeline(path: os.PathLike) -> Pipeline:
    """Read a pipeline file into build configs.

    Raises
    ------
    UserError
        Missing or malformed file, unknown keys, unset required variables.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"pipeline file not found: {path}") from None
    except ValueError as exc:
        raise UserError(f"pipeline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("builds"), list) or not data["builds"]:
        raise UserError(f"pipeline {path} must be an object with a non-empty 'builds' list")
    unknown = set(data) - {"description", "out", "settings", "builds"}
    if unknown:
        raise UserError(f"pipeline {path}: unknown keys {', '.join(sorted(unknown))}")
    settings = data.get("settings") or {}
    configs = []
    for index, build in enumerate(data["builds"]):
        merged: Dict[str, Any] = {"out": data.get("out", "maphc2f"), **settings, **build}
        bad = set(merged) - _FIELDS
        if bad:
            raise UserError(f"pipeline {path} build {index}: unknown keys {', '.join(sorted(bad))}; "
                            f"valid: {', '.join(sorted(_FIELDS))}")
        if "source" not in merged:
            raise UserError(f"pipeline {path} build {index} has no 'source'")
        values = {key: _resolve(value, f"pipeline {path} build {index} {key!r}") for key, value in merged.items()}
        if values.get("categories") is not None:
            values["categories"] = tuple(values["categories"])
        if "count" in values:
            values["count"] = parse_count(values["count"])
        configs.append(BuildConfig(**values))
    return Pipeline(description=str(data.get("description", "")), configs=tuple(configs))


def build_argv(config: BuildConfig) -> List[str]:
    """The ``maphc2f-build`` arguments equivalent to ``config``."""
    argv = ["--source", config.source]
    if config.root is not None:
        argv += ["--root", str(config.root)]
    argv += ["--out", str(config.out), "--count", str(config.count), "--seed", str(config.seed),
             "--size", str(config.size)]
    if config.categories:
        argv += ["--categories", ",".join(config.categories)]
    if config.png_compression is not None:
        argv += ["--png-compression", str(config.png_compression)]
    if config.sam_checkpoint:
        argv += ["--sam-checkpoint", str(config.sam_checkpoint), "--sam-model", config.sam_model]
    if config.device is not None:
        argv += ["--device", str(config.device)]
    if config.rows_per_shard is not None:
        argv += ["--rows-per-shard", str(config.rows_per_shard)]
    return argv


def combined_plan(pipeline: Pipeline) -> Dict[str, Any]:
    """The ``--dry-run`` JSON of every build together."""
    from maphc2f_data.build.builder import make_plan

    categories: Dict[str, Any] = {}
    for config in pipeline.configs:
        for name, entry in make_plan(config).summary()["categories"].items():
            if name in categories:
                raise UserError(f"category {name!r} is built by two sources ({categories[name]['source']}, "
                                f"{entry['source']}); category names must be unique in one dataset")
            categories[name] = entry
    total = sum(entry["crack"] + entry["corrosion"] + entry["deformation"] for entry in categories.values())
    return {"total": total, "categories": dict(sorted(categories.items()))}


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m maphc2f_data.build.pipeline FILE [--dry-run] [--out DIR] [build options]``.

    Options the pipeline runner does not know (``--workers 4``,
    ``--no-progress``, ...) are passed to every build. The builds share one
    runner (one Ray, one set of pools).
    """
    from maphc2f_data.cli.main import run_command

    parser = argparse.ArgumentParser(prog="python -m maphc2f_data.build.pipeline",
                                     description="Run the builds of a pipeline file one after the other.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("pipeline", help="pipeline JSON file (see pipelines/README.md)")
    parser.add_argument("--out", default=None, help="output folder instead of the pipeline's 'out'")
    parser.add_argument("--dry-run", action="store_true", help="print the combined plan and stop")
    # Any other option (e.g. --workers 4) is passed on to every build.
    args, extra = parser.parse_known_args(argv)

    def run(args: argparse.Namespace) -> int:
        from maphc2f_data.cli.build import add_runner_arguments, runner_from_args
        from maphc2f_data.cli.build import main as build_main

        pipeline = load_pipeline(args.pipeline)
        configs = [replace(c, out=args.out) if args.out else c for c in pipeline.configs]
        if args.dry_run:
            print(json.dumps(combined_plan(Pipeline(pipeline.description, tuple(configs))), indent=2))
            return 0
        passed_on = [a for a in extra if a != "--"]
        # One runner for every build: Ray starts once and SAM loads once.
        runner_parser = argparse.ArgumentParser(add_help=False)
        add_runner_arguments(runner_parser)
        runner = runner_from_args(runner_parser.parse_known_args(passed_on)[0])
        try:
            for config in configs:
                code = build_main([*build_argv(config), *passed_on], runner=runner)
                if code != 0:
                    return code
        finally:
            runner.close()
        return 0

    return run_command(run, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
