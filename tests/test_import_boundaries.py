"""The architecture rules the folder layout promises, checked in a clean interpreter."""

import subprocess
import sys

import pytest

TORCH_FREE = [
    "maphc2f_data.synthesis",
    "maphc2f_data.sources",
    "maphc2f_data.foreground.classical",
]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_never_imports_torch_or_ray(module):
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


def test_ray_is_imported_by_one_module_only():
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "maphc2f_data"
    importers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(
            line.strip().startswith(("import ray", "from ray"))
            for line in path.read_text().splitlines()
        )
    )
    assert importers in ([], ["build/ray_runner.py"])
