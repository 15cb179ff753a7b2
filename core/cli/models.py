"""`diffusion-stepper models`: the bundled MNIST checkpoints."""

from __future__ import annotations

import argparse

NAME = "models"


def register(commands) -> None:
    commands.add_parser(NAME, help="list the bundled checkpoints")


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.bundled import bundled_models
    from diffusion_stepper.core.mnist.checkpoints import read_sidecar
    from diffusion_stepper.core.paths import models_dir

    models = bundled_models()
    if not models:
        print(f"no bundled models in {models_dir()}")
        return 0
    print(f"{'name':<20} {'architecture':<14} {'objective':<12} {'hidden':>6} {'epochs':>6}  file")
    for name, sidecar_path in models.items():
        sidecar = read_sidecar(sidecar_path)
        print(
            f"{name:<20} {sidecar['architecture']['name']:<14} {sidecar['objective']['name']:<12} "
            f"{sidecar['architecture']['hidden']:>6} {sidecar['epoch']:>6}  {sidecar_path.with_suffix('.safetensors')}"
        )
    return 0
