"""Fixtures shared by the core and visualizer tests: real MNIST and tiny checkpoints built in code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from diffusion_stepper.core.mnist.checkpoints import save_checkpoint
from diffusion_stepper.core.mnist.recipes import TrainConfig, recipe
from diffusion_stepper.core.paths import bundled_mnist_folder

TINY_HIDDEN = 4


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Real MNIST: the copy bundled with the app."""
    return bundled_mnist_folder()


def tiny_config(model: str, objective: str | None = None, **overrides) -> TrainConfig:
    config = recipe(model, objective)
    config.hidden = TINY_HIDDEN
    config.T = 20
    config.num_ts = 8
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def write_tiny_checkpoint(
    directory: Path,
    model: str,
    objective: str | None = None,
    seed: int = 0,
    training_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """An untrained tiny checkpoint with a real sidecar, as `train` would write it (with the
    `training_state` given, one that can be resumed from)."""
    config = tiny_config(model, objective, seed=seed)
    network = config.build_model()
    sidecar = {
        "architecture": config.architecture_spec(),
        "objective": config.build_objective().to_dict(),
        "hyperparameters": dataclasses.asdict(config),
        "iteration": 0,
        "data": {"dataset": "mnist", "split": "train", "images": 0, "limit": None, "value_range": [0.0, 1.0]},
    }
    if training_state is not None:
        sidecar["optimizer_param_groups"] = []
    return save_checkpoint(directory, 1, network, sidecar, training_state=training_state)


@pytest.fixture
def tiny_checkpoints(tmp_path: Path) -> dict[str, Path]:
    """Sidecar paths of one tiny checkpoint per part B model, keyed like the bundled names."""
    kinds = {
        "single-step": ("single-step", None),
        "time-ddpm": ("time", "ddpm"),
        "class-ddpm": ("class", "ddpm"),
        "time-flow": ("time", "flow"),
        "class-flow": ("class", "flow"),
    }
    return {name: write_tiny_checkpoint(tmp_path / name, *kind) for name, kind in kinds.items()}


@dataclasses.dataclass
class TinyIF:
    """Tiny IF-architecture stages saved with save_pretrained, and course-format embeddings."""

    stage1_dir: Path
    stage2_dir: Path
    embeddings_file: Path
    prompts: list

    @property
    def stage1_flags(self) -> list[str]:
        """`sample if` / `experiment if` flags that run stage I on the CPU with these embeddings."""
        return [
            "--model-dir",
            str(self.stage1_dir),
            "--embeddings",
            str(self.embeddings_file),
            "--allow-cpu",
            "--device",
            "cpu",
        ]


@pytest.fixture(scope="session")
def tiny_if(tmp_path_factory) -> TinyIF:
    import torch

    from diffusion_stepper.core.deepfloyd_if.tiny import build_tiny_stage, tiny_embeddings

    folder = tmp_path_factory.mktemp("tiny-if")
    prompts = [
        "a high quality photo",
        "an oil painting of an old man",
        "an oil painting of people around a campfire",
        "a lithograph of waterfalls",
        "a lithograph of a skull",
    ]
    torch.save(tiny_embeddings(prompts), folder / "prompt_embeds_dict.pth")
    return TinyIF(
        build_tiny_stage(1, folder / "stage1"),
        build_tiny_stage(2, folder / "stage2"),
        folder / "prompt_embeds_dict.pth",
        prompts,
    )
