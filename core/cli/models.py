"""`diffusion-stepper models`: the bundled MNIST checkpoints."""

from __future__ import annotations

import argparse

NAME = "models"


def register(commands) -> None:
    commands.add_parser(NAME, help="list the bundled checkpoints")


def sampling_defaults(sidecar: dict) -> str:
    """How `sample` runs the model unless told otherwise: "DDPM, 50 strided steps, x̂0 clipped to [0, 1]"."""
    from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS
    from diffusion_stepper.core.diffusion.schedules import DEFAULT_FLOW_STEPS
    from diffusion_stepper.core.mnist.checkpoints import sampler_of

    objective = sidecar["objective"]["name"]
    if objective == "single-step":
        return "one jump"
    sampling = sidecar.get("sampling", {})
    sampler = (FLOW_SAMPLERS if objective == "flow" else EPS_SAMPLERS)[sampler_of(sidecar)].title
    if objective == "flow":
        steps = f"{sampling.get('steps') or DEFAULT_FLOW_STEPS} steps"
    else:
        steps = f"{sampling['steps']} strided steps" if sampling.get("steps") else "the full chain"
    if objective == "ddpm":
        clipped = sampling.get("x0_clip", "none") == "static"
        return f"{sampler}, {steps}, x̂0 {'clipped to [0, 1]' if clipped else 'not clipped'}"
    return f"{sampler}, {steps}"


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.bundled import bundled_models
    from diffusion_stepper.core.mnist.checkpoints import read_sidecar
    from diffusion_stepper.core.paths import models_dir

    models = bundled_models()
    if not models:
        print(f"no bundled models in {models_dir()}")
        return 0
    print(f"{'name':<20} {'architecture':<14} {'objective':<12} {'hidden':>6} {'epochs':>6}  {'samples with':<62} file")
    for name, sidecar_path in models.items():
        sidecar = read_sidecar(sidecar_path)
        print(
            f"{name:<20} {sidecar['architecture']['name']:<14} {sidecar['objective']['name']:<12} "
            f"{sidecar['architecture']['hidden']:>6} {sidecar['epoch']:>6}  {sampling_defaults(sidecar):<62} "
            f"{sidecar_path.with_suffix('.safetensors')}"
        )
    return 0
