"""core/ and the package's Python API (`import diffusion_stepper`) must import and run without Qt:
checked in a fresh interpreter."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import importlib, pkgutil, sys
QT = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "qtpy")
import diffusion_stepper as ds  # the Python API, as a notebook imports it
assert "torch" not in sys.modules  # light: the command imports the package before it can catch Ctrl+C
assert callable(ds.sample) and callable(ds.Recorder) and "sample" in dir(ds)
print("QT_AFTER_PACKAGE", sorted(name for name in sys.modules if name.split(".")[0] in QT))
import diffusion_stepper.core as core
for module in pkgutil.walk_packages(core.__path__, "diffusion_stepper.core."):
    importlib.import_module(module.name)
from diffusion_stepper.core import cli
cli.main(["models"])
qt = sorted(name for name in sys.modules if name.split(".")[0] in QT)
print("QT_MODULES", qt)
"""


@pytest.mark.slow  # imports all of core in a process of its own
def test_core_never_imports_qt():
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "QT_AFTER_PACKAGE []" in result.stdout
    assert "QT_MODULES []" in result.stdout


def test_core_sources_have_no_qt_imports():
    offenders = [
        str(path)
        for path in (ROOT / "core").rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(
            (
                "import PySide6",
                "from PySide6",
                "import pyqtgraph",
                "from pyqtgraph",
                "from diffusion_stepper.visualizer",
                "import diffusion_stepper.visualizer",
            )
        )
    ]
    assert offenders == []
