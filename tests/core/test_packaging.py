"""The README's quick start is what CI runs, and the package ships its resources."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)]


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    install_and_launch, install_and_test = commands
    assert install_and_launch.endswith("diffusion-stepper")
    assert "[test]" in install_and_test and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_pyproject_ships_the_resources_and_the_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "diffusion-stepper"
    assert project["project"]["requires-python"] == ">=3.10"
    assert project["project"]["scripts"]["diffusion-stepper"] == "visualizer.launcher:main"
    packages = project["tool"]["setuptools"]["packages"]
    assert {"core", "visualizer", "resources", "resources.models", "resources.data", "resources.images"} <= set(packages)
    for package in ("resources.models", "resources.data"):
        assert "*.safetensors" in project["tool"]["setuptools"]["package-data"][package]
    assert "*.png" in project["tool"]["setuptools"]["package-data"]["resources.images"]
