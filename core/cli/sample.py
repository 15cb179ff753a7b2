"""`diffusion-stepper sample mnist|if|toy2d|diffusers`: sample a model into a trajectory file."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from diffusion_stepper.core.cli import toy2d
from diffusion_stepper.core.cli.common import (
    FlagScope,
    OneLineParser,
    add_sampler_arguments,
    float_in,
    input_files,
    int_in,
    int_list,
    print_image_notes,
    record_run,
    samples,
    seed,
    steps,
)
from diffusion_stepper.core.cli.if_options import add_if_settings_arguments, if_flag_scopes, if_settings
from diffusion_stepper.core.files import check_output_file
from diffusion_stepper.core.limits import GUIDANCE, KEEP_EVERY

NAME = "sample"


def register(commands) -> None:
    from diffusion_stepper.core.deepfloyd_if.sampling import DEFAULT_NOISE_LEVEL
    from diffusion_stepper.core.deepfloyd_if.tasks import TASKS
    from diffusion_stepper.core.devices import DEVICE_CHOICES
    from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS, EPS_SAMPLERS
    from diffusion_stepper.core.limits import CHAIN_INDEX, NOISE_SIGMA
    from diffusion_stepper.core.mnist import bundled
    from diffusion_stepper.core.mnist.checkpoints import X0_CLIP_CHOICES

    parent = commands.add_parser(
        NAME,
        help="sample a model into a trajectory file (mnist, DeepFloyd IF: if, the 2D lab: toy2d, "
        "or a diffusers DDPM/DDIM folder: diffusers)",
    )
    targets = parent.add_subparsers(
        dest="dataset", metavar="{mnist,if,toy2d,diffusers}", required=True, parser_class=OneLineParser
    )

    mnist = targets.add_parser("mnist", help="an MNIST model (part B)")
    mnist.add_argument("--checkpoint", default=bundled.DEFAULT_MODEL, help="bundled name or path (default %(default)s)")
    mnist.add_argument("--classes", type=int_list, help="digits to sample, e.g. 0,1,2 or 0-9 (class models)")
    mnist.add_argument("--per-class", type=samples, help="class models: samples of each class (default 1)")
    mnist.add_argument("--num", type=samples, help="number of samples (unconditional models)")
    mnist.add_argument("--guidance", type=float_in(GUIDANCE), help="CFG scale (class models; default 5)")
    mnist.add_argument("--steps", type=steps, help="sampling steps (default: the model's own)")
    mnist.add_argument("--sigma", type=float_in(NOISE_SIGMA), help="single-step: noise level of the input")
    mnist.add_argument(
        "--noisy-test", action="store_true", help="single-step: denoise noised test digits, not pure noise"
    )
    mnist.add_argument("--data-dir", help="MNIST folder, for --noisy-test")
    mnist.add_argument("--seed", type=seed, default=0)
    mnist.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    mnist.add_argument(
        "--x0-clip",
        choices=X0_CLIP_CHOICES,
        help="DDPM: static clips x̂0 to [0, 1] in every step; none is the course's plain formula "
        "(default: the model's own; the bundled DDPM models clip: see `diffusion-stepper models`)",
    )
    add_sampler_arguments(mnist, ALL_SAMPLERS, "the model's own, as `diffusion-stepper models` lists it")
    add_output_arguments(mnist)

    deepfloyd_if = targets.add_parser(
        "if", help="DeepFloyd IF (part A): sample, denoise, edit, anagrams, hybrids, upscale"
    )
    deepfloyd_if.add_argument("--task", choices=TASKS, default="sample")
    deepfloyd_if.add_argument(
        "--i-start",
        type=int_in(CHAIN_INDEX),
        nargs="+",
        metavar="K",
        help="start at the K-th timestep (several: one run each)",
    )
    deepfloyd_if.add_argument(
        "--t",
        type=int_in(CHAIN_INDEX),
        nargs="+",
        metavar="T",
        help="forward / blur / one-step: timesteps (default 250 500 750)",
    )
    deepfloyd_if.add_argument(
        "--noise-level",
        type=int_in(CHAIN_INDEX),
        help=f"upscale: noise added to the low-res image (default {DEFAULT_NOISE_LEVEL})",
    )
    add_if_settings_arguments(deepfloyd_if)
    add_output_arguments(deepfloyd_if, several="; several runs get -i<K> suffixes")
    toy2d.add_sample_parser(targets)

    folder = targets.add_parser(
        "diffusers",
        help="any diffusers unconditional DDPM/DDIM folder (UNet2DModel + its scheduler), with our samplers",
    )
    folder.add_argument(
        "--model-dir",
        required=True,
        metavar="DIR",
        help="the folder DDPMPipeline/DDIMPipeline.save_pretrained wrote (unet/, scheduler/), a flat one "
        "(config.json beside scheduler_config.json), or a hub id already in the Hugging Face cache",
    )
    folder.add_argument("--num", type=samples, help="number of samples (default 4)")
    folder.add_argument(
        "--steps", type=steps, help="sampling steps (default: T, the folder's num_train_timesteps, for ddpm; else 50)"
    )
    folder.add_argument("--seed", type=seed, default=0, help="x_T as the pipelines draw it from this seed")
    folder.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    add_sampler_arguments(
        folder, EPS_SAMPLERS, "the scheduler's own: ddpm for a DDPMScheduler, ddim for a DDIMScheduler"
    )
    add_output_arguments(folder)


def add_output_arguments(parser: argparse.ArgumentParser, several: str = "") -> None:
    parser.add_argument(
        "--keep-every",
        type=int_in(KEEP_EVERY),
        default=1,
        metavar="K",
        help="store every K-th frame and the last, for big runs (default: every frame)",
    )
    parser.add_argument("--out", required=True, help=f"trajectory file to write (.npz){several}")


# The flags of `sample mnist` that do something only with another; which suit the model (classes,
# guidance, sampler, η) its own checks say once it is loaded
MNIST_FLAG_SCOPES = (
    FlagScope(("--data-dir",), lambda args: args.noisy_test, "--noisy-test (the test digits to noise)"),
)


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    scopes = {"toy2d": toy2d.SAMPLE_FLAG_SCOPES, "if": if_flag_scopes(), "diffusers": ()}
    return scopes.get(args.dataset, MNIST_FLAG_SCOPES)


def run(args: argparse.Namespace) -> int:
    if args.dataset == "toy2d":
        return toy2d.run_sample(args)
    if args.dataset == "diffusers":
        return run_diffusers(args)
    return run_if(args) if args.dataset == "if" else run_mnist(args)


def run_mnist(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory
    from diffusion_stepper.core.mnist.sampling import SampleRequest

    check_output_file(args.out, inputs=input_files(args.checkpoint))

    # the flags are named like the request's fields
    request = SampleRequest(**{field.name: getattr(args, field.name) for field in dataclasses.fields(SampleRequest)})
    trajectory = record_run(request, "sampling", args.keep_every)
    path = save_trajectory(trajectory, args.out)
    print(
        f"wrote {path}: {len(trajectory)} frames of {trajectory[0].x_t.shape[0]} images "
        f"({trajectory.run_meta.algorithm})"
    )
    return 0


def run_diffusers(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory
    from diffusion_stepper.core.own_model.diffusers_sampling import DiffusersSampleRequest

    check_output_file(args.out)
    # the flags are named like the request's fields
    fields = dataclasses.fields(DiffusersSampleRequest)
    request = DiffusersSampleRequest(**{field.name: getattr(args, field.name) for field in fields})
    trajectory = record_run(request, "sampling", args.keep_every)
    path = save_trajectory(trajectory, args.out)
    meta = trajectory.run_meta
    print(
        f"wrote {path}: {len(trajectory)} frames of {trajectory[0].x_t.shape[0]} images ({meta.model}, {meta.sampler})"
    )
    return 0


def run_if(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.deepfloyd_if.tasks import prepare
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory

    check_output_file(args.out, inputs=input_files(args.image, args.mask, args.embeddings))
    requests = prepare(if_settings(args)).expand()  # the model and prompts load once for all runs
    out = Path(args.out)
    for number, request in enumerate(requests, 1):
        trajectory = record_run(request, f"run {number}/{len(requests)}", args.keep_every)
        path = out if len(requests) == 1 else out.with_name(f"{out.stem}-i{request.i_start[0]}{out.suffix}")
        save_trajectory(trajectory, path)
        if number == 1:
            print_image_notes(trajectory.run_meta)
        task = trajectory.run_meta.task
        print(f"wrote {path}: {len(trajectory)} frames of {trajectory[0].x_t.shape[0]} images ({task})")
    return 0
