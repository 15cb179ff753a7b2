"""Fixtures shared by the core and visualizer tests: real MNIST and tiny checkpoints built in code."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# One torch thread for the tests and every process they start (set before torch is imported, and
# inherited by children). The tests' models are tiny: their operations are too small to share
# between threads, and on a busy machine a thread that spins waiting for its descheduled partner
# made the suite many times slower (a 2D training test: 63 s with two threads, 7 s with one, on
# two busy cores). Set OMP_NUM_THREADS to choose otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_stepper.core.mnist.checkpoints import save_checkpoint  # noqa: E402
from diffusion_stepper.core.mnist.recipes import TrainConfig, recipe  # noqa: E402
from diffusion_stepper.core.paths import bundled_mnist_folder  # noqa: E402

TINY_HIDDEN = 4

# --- the quick run and the whole suite -----------------------------------------------------------
#
# `python -m pytest` runs the quick run: every test but those marked slow (training on real MNIST,
# the judge over the test set, and anything in a process of its own: the benches, the soak, the
# browser, training in the app, the screen walks). `python -m pytest --all` runs every test, as CI
# does (.ci/run); `-m EXPRESSION` chooses by marker as usual. The README gives both commands.


def pytest_addoption(parser):
    parser.addoption(
        "--all", action="store_true", help="run the slow tests too: the whole suite, as CI does (default: quick run)"
    )


def pytest_configure(config):
    if not config.getoption("all") and not config.option.markexpr:
        config.option.markexpr = "not slow"


def pytest_report_header(config):
    if config.option.markexpr == "not slow" and not config.getoption("all"):
        return "quick run: the tests marked slow are left out; `python -m pytest --all` runs every test, as CI does"
    return None


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
