"""The code keeps the shape DESIGN.md gives it: small classes in the GUI, one job runner, one save
dialog, and imports by the package's full name."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CLASS_LINES = 300
MAIN_WINDOW_LINES = 260


def python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


def class_lengths(folder: str) -> dict[str, int]:
    lengths = {}
    for path in python_files(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                lengths[f"{path.relative_to(ROOT)}::{node.name}"] = node.end_lineno - node.lineno + 1
    return lengths


def files_containing(pattern: str, *folders: str) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in python_files(*folders) if re.search(pattern, path.read_text())]


def test_no_class_in_the_gui_grows_past_300_lines():
    lengths = class_lengths("visualizer")
    assert lengths["visualizer/main_window.py::MainWindow"] <= MAIN_WINDOW_LINES
    assert {name: length for name, length in lengths.items() if length > MAX_CLASS_LINES} == {}


def test_one_job_runner_and_one_save_dialog():
    assert files_containing(r"\bQThread\(", "visualizer") == ["visualizer/worker.py"]
    assert files_containing(r"getSaveFileName", "visualizer") == ["visualizer/controllers/files.py"]


def test_the_project_imports_itself_by_its_full_name():
    bare = r"^\s*(from|import) (core|visualizer|resources)\b|^\s*from \.+\w* import"
    assert files_containing(bare, "core", "visualizer", "resources", "tests", "bench") == []


def test_stylesheets_live_in_resources():
    assert files_containing(r'setStyleSheet\("""|_STYLE = """', "visualizer") == []
    assert {path.stem for path in (ROOT / "resources" / "styles").glob("*.qss")} == {"normal", "presentation"}


def test_the_code_layout_page_names_every_folder_and_root_module():
    """docs/code-layout.md (the README's "How the code is organised") stays true to the tree."""
    page = (ROOT / "docs" / "code-layout.md").read_text()
    named = []
    for top in ("core", "visualizer"):
        for path in sorted((ROOT / top).iterdir()):
            if path.is_dir() and (path / "__init__.py").is_file():
                named.append(f"{path.name}/")
            elif path.suffix == ".py" and path.name != "__init__.py":
                named.append(path.name)
    for package in sorted((ROOT / "core").glob("*/*/__init__.py")):  # folders inside core's rooms
        named.append(f"{package.parent.name}/")
    assert [name for name in named if name not in page] == []
