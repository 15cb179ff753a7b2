"""The README's quick start is what CI runs, and the project installs as one package with its resources."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
TOP_FOLDERS = ("core", "visualizer", "resources")  # the design card's layout, installed under diffusion_stepper
API_FOLDER = "api"  # the package's own __init__: the Python API, `import diffusion_stepper as ds`


def quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    install_and_launch, install_and_test = commands
    assert install_and_launch.endswith("diffusion-stepper")
    assert "[test]" in install_and_test and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_every_package_folder_is_listed_under_one_import_package():
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {
        "diffusion_stepper": API_FOLDER,
        **{f"diffusion_stepper.{folder}": folder for folder in TOP_FOLDERS},
    }
    on_disk = {"diffusion_stepper"} | {
        "diffusion_stepper." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in TOP_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert list((ROOT / API_FOLDER).rglob("*.py")) == [ROOT / API_FOLDER / "__init__.py"]  # the API's home is core
    assert set(setuptools["packages"]) == on_disk  # a forgotten subpackage would be missing from the wheel
    data = setuptools["package-data"]
    assert "*.safetensors" in data["diffusion_stepper.resources.models"]
    assert "mnist/*.gz" in data["diffusion_stepper.resources.data"]
    assert "*.png" in data["diffusion_stepper.resources.images"]
    assert "*.qss" in data["diffusion_stepper.resources.styles"]
    assert {"*.html", "*.css", "*.js"} <= set(data["diffusion_stepper.resources.page"])
    assert pyproject()["project"]["scripts"]["diffusion-stepper"] == "diffusion_stepper.visualizer.launcher:main"


@pytest.mark.slow  # builds the wheel with pip
def test_the_wheel_holds_diffusion_stepper_alone_at_its_top_level(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in (*TOP_FOLDERS, API_FOLDER):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "screenshots"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "wheel"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
        assert top_level == {"diffusion_stepper"}
        for expected in (
            "diffusion_stepper/__init__.py",  # from api/: the Python API
            "diffusion_stepper/core/api.py",
            "diffusion_stepper/core/deepfloyd_if/experiments.py",
            "diffusion_stepper/visualizer/main_window.py",
            "diffusion_stepper/resources/models/mnist-class-ddpm.safetensors",
            "diffusion_stepper/resources/data/mnist/train-images-idx3-ubyte.gz",
            "diffusion_stepper/resources/styles/presentation.qss",
            "diffusion_stepper/resources/page/page.js",
        ):
            assert expected in names


@pytest.mark.slow  # a process of its own
def test_folder_names_are_not_importable_on_their_own(tmp_path):
    """Installed, the app answers to diffusion_stepper only: a `core` of another project (or a
    notebook's folder) neither shadows ours nor is shadowed by it."""
    program = (
        "import importlib.util, diffusion_stepper.core, diffusion_stepper.resources\n"
        "print([importlib.util.find_spec(name) is None for name in ('core', 'visualizer', 'resources', 'api')])"
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True, True, True, True]"
