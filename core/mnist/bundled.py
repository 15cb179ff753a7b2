"""The MNIST checkpoints shipped in resources/models, addressed by name."""

from __future__ import annotations

from pathlib import Path

from diffusion_stepper.core.paths import models_dir

BUNDLED_NAMES = (
    "mnist-single-step",
    "mnist-pure-noise",  # the single-step denoiser trained on pure noise: part B's average digit
    "mnist-time-ddpm",
    "mnist-class-ddpm",
    "mnist-time-flow",
    "mnist-class-flow",
)
DEFAULT_MODEL = "mnist-class-ddpm"


def bundled_models() -> dict[str, Path]:
    """Bundled name -> sidecar path, for the names whose files are present."""
    directory = models_dir()
    return {name: directory / f"{name}.json" for name in BUNDLED_NAMES if (directory / f"{name}.json").is_file()}
