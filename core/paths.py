"""Every place on disk the app reads from or writes to by default, in one module.

- the bundled resources (models, the ten test digits, sample images, stylesheets), shipped as
  package data in `diffusion_stepper.resources`;
- the work folder, where the app puts what it makes unless told otherwise (training runs,
  crops, masks, sketches, stage II inputs);
- MNIST: the copy bundled with the app, and the cache folder `download mnist` fills.

Paths under the work folder are built at call time, so a test can point `WORK_FOLDER` elsewhere;
the MNIST cache folder follows HOME at call time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

WORK_FOLDER = Path.home() / "diffusion-stepper-runs"


def resources_dir() -> Path:
    return Path(str(resources.files("diffusion_stepper.resources")))


def models_dir() -> Path:
    """The bundled MNIST checkpoints (see resources/models/README.md)."""
    return resources_dir() / "models"


def sample_image(name: str = "tower.png") -> Path:
    """A bundled picture for part A's image tasks (see resources/images/README.md)."""
    return resources_dir() / "images" / name


def bundled_mnist_folder() -> Path:
    """The four MNIST IDX files shipped with the app (see resources/data/README.md)."""
    return resources_dir() / "data" / "mnist"


def mnist_cache_folder() -> Path:
    """Where `download mnist` keeps its copy unless told otherwise."""
    return Path.home() / ".cache" / "diffusion-stepper" / "mnist"


def style_sheet_path(name: str) -> Path:
    """A Qt stylesheet of the app, e.g. "presentation" (resources/styles/presentation.qss)."""
    return resources_dir() / "styles" / f"{name}.qss"


def work_folder(*parts: str) -> Path:
    """A folder (or file) under the work folder, e.g. work_folder("masks")."""
    return WORK_FOLDER.joinpath(*parts)
