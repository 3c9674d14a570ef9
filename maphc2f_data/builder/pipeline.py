"""Build pipelines: a JSON file naming one or more builds into one dataset.

The paper's dataset is three builds (MVTec AD, VisA, BTAD) into one folder;
``pipelines/paper.json`` writes that down once. Format::

    {
      "description": "free text",
      "out": "maphc2f",
      "settings": {"count": "paper", "seed": 0, "size": 512, ...},   # shared by every build
      "builds": [{"source": "mvtec", "root": {"env": "MVTEC_ROOT"}}, ...]
    }

Keys of ``settings`` and of each build are :class:`~maphc2f_data.builder.plan.BuildConfig`
fields (a build's own keys win). Machine-specific values are written as
``{"env": "NAME"}`` (required environment variable) or
``{"env": "NAME", "default": value}`` (optional; ``null`` allowed), so the
file itself stays portable.

Run it with ``maphc2f pipeline pipelines/paper.json`` (``--dry-run`` prints
the combined plan; ``--out`` overrides the folder); from Python,
:func:`load_pipeline` then :func:`run_pipeline`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from maphc2f_data.builder.driver import build, make_plan
from maphc2f_data.builder.plan import BuildConfig, parse_count
from maphc2f_data.builder.report import BuildReport
from maphc2f_data.errors import UserError
from maphc2f_data.synthesis import DEFECT_TYPES

_FIELDS = {f.name for f in fields(BuildConfig)}
_MISSING = object()


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline: its description and one config per build, in order."""

    description: str
    configs: Tuple[BuildConfig, ...]

    def with_out(self, out: Optional[str]) -> "Pipeline":
        """The same pipeline writing into ``out`` (unchanged when None)."""
        if not out:
            return self
        return Pipeline(self.description, tuple(replace(config, out=out) for config in self.configs))


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


def combined_plan(pipeline: Pipeline) -> Dict[str, Any]:
    """The ``--dry-run`` JSON of every build together."""
    categories: Dict[str, Any] = {}
    for config in pipeline.configs:
        for name, entry in make_plan(config).summary()["categories"].items():
            if name in categories:
                raise UserError(f"category {name!r} is built by two sources ({categories[name]['source']}, "
                                f"{entry['source']}); category names must be unique in one dataset")
            categories[name] = entry
    total = sum(entry[kind] for entry in categories.values() for kind in DEFECT_TYPES)
    return {"total": total, "categories": dict(sorted(categories.items()))}


def run_pipeline(pipeline: Pipeline, runner, *, command: Sequence[str] = (), progress: bool = True,
                 log=None) -> List[BuildReport]:
    """Run the builds of ``pipeline`` one after the other on one ``runner``.

    One runner for every build means Ray starts once and each SAM actor loads
    its model once for all sources. The runner is left open (the caller made
    it, the caller closes it).

    Returns
    -------
    list of BuildReport
        One per build, in order.
    """
    return [build(config, runner=runner, command=command, progress=progress, log=log)
            for config in pipeline.configs]
