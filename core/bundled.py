"""The MNIST checkpoints shipped in resources/models, addressed by name, and the ten test digits
shipped in resources/data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED_NAMES = (
    "mnist-single-step",
    "mnist-pure-noise",  # the single-step denoiser trained on pure noise: part B's average digit
    "mnist-time-ddpm",
    "mnist-class-ddpm",
    "mnist-time-flow",
    "mnist-class-flow",
)
DEFAULT_MODEL = "mnist-class-ddpm"


def models_dir() -> Path:
    return Path(str(resources.files("resources"))) / "models"


def sample_image(name: str = "tower.png") -> Path:
    """A bundled picture for part A's image tasks (see resources/images/README.md)."""
    return Path(str(resources.files("resources"))) / "images" / name


def test_digits_path() -> Path:
    """The first MNIST test image of each digit 0-9 (see resources/data/README.md)."""
    return Path(str(resources.files("resources"))) / "data" / "mnist-test-first-of-each-digit.safetensors"


def bundled_models() -> dict[str, Path]:
    """Bundled name -> sidecar path, for the names whose files are present."""
    directory = models_dir()
    return {name: directory / f"{name}.json" for name in BUNDLED_NAMES if (directory / f"{name}.json").is_file()}
