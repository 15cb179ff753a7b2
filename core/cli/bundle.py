"""`diffusion-stepper bundle CHECKPOINT --name NAME`: copy a checkpoint into the bundled models
(float16, no training state), with the sampling defaults it should open with."""

from __future__ import annotations

import argparse

from diffusion_stepper.core.cli.common import steps

NAME = "bundle"


def register(commands) -> None:
    from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS
    from diffusion_stepper.core.mnist.bundled import BUNDLED_NAMES
    from diffusion_stepper.core.mnist.checkpoints import X0_CLIP_CHOICES

    bundle = commands.add_parser(NAME, help="copy a checkpoint into the bundled models (fp16, no training state)")
    bundle.add_argument("checkpoint")
    bundle.add_argument("--name", required=True, choices=BUNDLED_NAMES)
    bundle.add_argument("--dest", help="folder to write to (default: the installed resources/models)")
    bundle.add_argument(
        "--steps", type=steps, help="the model's default sampling steps (strided; default: its full chain)"
    )
    bundle.add_argument(
        "--x0-clip", choices=X0_CLIP_CHOICES, help="the DDPM model's default x̂0 clipping (default: none)"
    )
    bundle.add_argument(
        "--sampler", choices=ALL_SAMPLERS, help="the model's default step rule (default: its objective's own)"
    )


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.files import check_output_folder
    from diffusion_stepper.core.mnist.checkpoints import write_bundled_copy
    from diffusion_stepper.core.paths import models_dir

    dest = check_output_folder(args.dest, "--dest") if args.dest is not None else models_dir()
    path = write_bundled_copy(
        args.checkpoint,
        args.name,
        dest,
        sampling_steps=args.steps,
        x0_clip=args.x0_clip,
        sampler=args.sampler,
    )
    print(f"wrote {path} and {path.with_suffix('.safetensors').name}")
    return 0
