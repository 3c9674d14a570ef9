"""The architecture the folder layout promises, checked on the source and in a clean interpreter.

Layers, bottom to top (a module may import its own package and any lower
layer, never a higher one; every import counts, also those inside functions):

====  =====================================  ==========================================
rank  packages                               job
====  =====================================  ==========================================
0     errors                                 the exceptions every layer raises
1     names                                  shared name lists (SAM variants, stages)
2     synthesis, sources                     numpy anomaly generators; image readers
3     dataset                                Parquet shards, manifest, card, load (I/O)
4     models                                 torch modules (SAM, refinement, detectors)
5     foreground, refine                     wrap models: object masks, refiners
6     sampling                               the one sample path
7     training, evaluation                   recipes and metrics
8     builder, preview, exporters            planning, runners, sheets, export formats
9     cli                                    thin commands
====  =====================================  ==========================================
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "maphc2f_data"

LAYERS: Dict[str, int] = {
    "errors": 0,
    "names": 1,
    "synthesis": 2, "sources": 2,
    "dataset": 3,
    "models": 4,
    "foreground": 5, "refine": 5,
    "sampling": 6,
    "training": 7, "evaluation": 7,
    "builder": 8, "preview": 8, "exporters": 8,
    "cli": 9,
}

#: Where each third-party framework may be imported at module level.
MODULE_LEVEL_ALLOWED = {
    "torch": ("models", "training"),
    "ray": ("builder/ray_runner.py",),
    "datasets": ("dataset",),
}


def _modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(path: Path) -> Iterator[Tuple[str, bool]]:
    """(imported module, at module level?) for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, id(node) in top_level
            # ``from maphc2f_data import names`` imports a submodule.
            for alias in node.names:
                yield f"{node.module}.{alias.name}", id(node) in top_level


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _internal_graph() -> Dict[str, Set[str]]:
    modules = dict(_modules())
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported, _ in _imports(path):
            if imported in modules and imported != name:
                graph[name].add(imported)
    return graph


def test_every_package_has_a_layer():
    packages = {_layer(name) for name, _ in _modules()} - {""}
    assert packages <= set(LAYERS), f"give these packages a layer: {sorted(packages - set(LAYERS))}"


def test_layers_only_point_down():
    violations = []
    for name, imported_set in _internal_graph().items():
        own = _layer(name)
        if not own:  # the package root only re-exports lazily
            continue
        for imported in imported_set:
            other = _layer(imported)
            if other and other != own and LAYERS[other] >= LAYERS[own]:
                violations.append(f"{name} ({own}, {LAYERS[own]}) imports {imported} ({other}, {LAYERS[other]})")
    assert not violations, "\n".join(sorted(violations))


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_package_inits(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    # A package's __init__ re-exporting its submodules, which import siblings
    # through the package, is the normal shape of a Python package, not a cycle
    # between modules with jobs.
    packages = {name for name, path in _modules() if path.name == "__init__.py"}
    return {name: {m for m in targets if m not in packages} for name, targets in graph.items()
            if name not in packages}


def test_no_import_cycles():
    assert _cycles(_without_package_inits(_internal_graph())) == []


def test_cycle_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("framework", sorted(MODULE_LEVEL_ALLOWED))
def test_frameworks_are_imported_only_where_the_layout_says(framework):
    allowed = MODULE_LEVEL_ALLOWED[framework]
    offenders = []
    importers = []
    for name, path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        for imported, top in _imports(path):
            if imported.split(".")[0] != framework:
                continue
            importers.append(rel)
            if top and not any(rel == place or rel.startswith(place + "/") for place in allowed):
                offenders.append(rel)
    assert not offenders, f"{framework} imported at module level outside {allowed}: {sorted(set(offenders))}"
    assert importers, f"nothing imports {framework}: the layout rule is stale"


def test_ray_is_imported_by_the_runner_and_nothing_else():
    importers = sorted({
        path.relative_to(PACKAGE).as_posix()
        for _, path in _modules()
        for imported, _ in _imports(path)
        if imported.split(".")[0] == "ray"
    })
    assert importers == ["builder/ray_runner.py"]


LIGHT = [
    "maphc2f_data.synthesis",
    "maphc2f_data.sources",
    "maphc2f_data.foreground",
    "maphc2f_data.refine",
    "maphc2f_data.sampling",
    "maphc2f_data.training",
    "maphc2f_data.evaluation",
    "maphc2f_data.names",
]


@pytest.mark.parametrize("module", LIGHT)
def test_importing_a_light_package_pulls_in_no_framework(module):
    """torch, ray and datasets load only when a model, a Ray build or the I/O layer is used."""
    code = (
        "import sys, importlib; importlib.import_module(%r); "
        "bad = sorted(m for m in ('torch', 'ray', 'datasets') if m in sys.modules); "
        "print(','.join(bad))" % module
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_registry_holds_the_three_paper_types():
    from maphc2f_data.synthesis import ANOMALY_TYPES

    assert {"crack", "corrosion", "deformation"} <= set(ANOMALY_TYPES)
