"""The DeepFloyd IF settings `sample if` and `experiment if` share: model, prompts, image, chain,
guidance, seed and device. The flags are named like `IFRequest`'s fields, so the settings are
the request made from them."""

from __future__ import annotations

import argparse
import dataclasses

from diffusion_stepper.core.cli.common import (
    FlagScope,
    add_sampler_arguments,
    float_in,
    int_in,
    samples,
    seed,
    steps,
    when,
)


def add_if_settings_arguments(
    parser: argparse.ArgumentParser, image_default: str | None = None, mask_default: str | None = None
) -> None:
    from diffusion_stepper.core.deepfloyd_if.models import STAGE_I_SIZES
    from diffusion_stepper.core.deepfloyd_if.sampling import X0_CLIP_CHOICES as IF_X0_CLIP_CHOICES
    from diffusion_stepper.core.devices import DEVICE_CHOICES
    from diffusion_stepper.core.diffusion.rules.catalogue import IF_SAMPLERS
    from diffusion_stepper.core.limits import BLUR_KERNEL, BLUR_SIGMA, CHAIN_INDEX, GUIDANCE
    from diffusion_stepper.core.run_meta import VIEW_NAMES

    parser.add_argument(
        "--prompt",
        action="append",
        default=[],
        help="the prompt (repeat, or use --prompt2.., for anagram views and hybrids)",
    )
    for number in (2, 3, 4):
        parser.add_argument(
            f"--prompt{number}",
            help=argparse.SUPPRESS if number > 2 else "the second prompt (anagram, hybrid: the high frequencies)",
        )
    default_note = " (default: the bundled tower)" if image_default else ""
    parser.add_argument(
        "--image",
        default=image_default,
        help=f"the starting image (any picture; for upscale also a stage I trajectory .npz){default_note}",
    )
    parser.add_argument(
        "--mask",
        default=mask_default,
        help=f"inpainting: binary mask, white where new content goes{default_note and ' (default: its mask)'}",
    )
    parser.add_argument(
        "--views", nargs="+", choices=VIEW_NAMES, help="anagram: one view per prompt (default: identity flip)"
    )
    chain = parser.add_mutually_exclusive_group()
    chain.add_argument("--steps", type=steps, help="the scheduler's own set_timesteps(N) list")
    chain.add_argument(
        "--stride",
        type=int_in(CHAIN_INDEX),
        help="the course's 990, 990-K, ..., 0 (default: stride 30), then one more UNet call at t = 0 to the clean "
        "image, as diffusers does (34 calls for stride 30)",
    )
    parser.add_argument("--guidance", type=float_in(GUIDANCE), help="CFG scale γ (default 7; stage II 4)")
    parser.add_argument(
        "--no-cfg",
        action="store_true",
        help="use the conditional estimate alone (the default for one-step and iterative)",
    )
    parser.add_argument("--num", type=samples, default=1, help="images per run")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument(
        "--x0-clip",
        choices=IF_X0_CLIP_CHOICES,
        default="dynamic",
        help="dynamic: IF's dynamic thresholding (default); none: the course's plain formula",
    )
    add_sampler_arguments(parser, IF_SAMPLERS, "ddpm: IF's own posterior step with its learned variance")
    parser.add_argument(
        "--blur-kernel", type=int_in(BLUR_KERNEL), help="Gaussian kernel size (blur default 5, hybrid 33)"
    )
    parser.add_argument("--blur-sigma", type=float_in(BLUR_SIGMA), help="blur, hybrid: the Gaussian's σ (default 2)")
    parser.add_argument("--model-dir", help="a local IF stage folder (diffusers layout) instead of the hub")
    parser.add_argument(
        "--size", choices=sorted(STAGE_I_SIZES), help="model size from the hub (default XL for stage I, L for stage II)"
    )
    parser.add_argument(
        "--embeddings", help="precomputed prompt embeddings (the course's dict prompt -> [1, 77, 4096])"
    )
    parser.add_argument("--t5", action="store_true", help="encode prompts with IF's T5 encoder (about 9.5 GB)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--allow-cpu", action="store_true", help="run IF on the CPU (very slow for the real model)")
    parser.add_argument("--offload", action="store_true", help="model CPU offload, for GPUs with little memory")


def if_settings(args: argparse.Namespace):
    """The IFRequest the flags describe; fields without a flag in this command keep their defaults."""
    from diffusion_stepper.core.deepfloyd_if.tasks import IFRequest

    prompts = list(args.prompt) + [prompt for prompt in (args.prompt2, args.prompt3, args.prompt4) if prompt]
    # the loaded parts and a branch point (compare=False) are not flags; flags left out keep the request's defaults
    names = {field.name for field in dataclasses.fields(IFRequest) if field.compare} - {"prompt"}
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return IFRequest(prompt=prompts, **given)


def if_flag_scopes() -> tuple[FlagScope, ...]:
    """Which of `sample if`'s flags do something for which task."""
    from diffusion_stepper.core.deepfloyd_if.tasks import (
        AT_CHOSEN_T,
        FROM_I_START,
        NEEDS_IMAGE,
        TASKS,
        WITHOUT_UNET,
    )

    chained = tuple(task for task in TASKS if task not in AT_CHOSEN_T)
    return (
        FlagScope(("--t",), when("task", *AT_CHOSEN_T), f"the tasks at chosen timesteps ({', '.join(AT_CHOSEN_T)})"),
        FlagScope(
            ("--steps", "--stride", "--sampler", "--eta"),
            when("task", *chained),
            f"the tasks that walk a chain of steps ({', '.join(chained)}), not {', '.join(AT_CHOSEN_T)}",
        ),
        FlagScope(
            ("--i-start",), when("task", *FROM_I_START), f"the tasks that start part-way ({', '.join(FROM_I_START)})"
        ),
        FlagScope(
            ("--image",), when("task", *NEEDS_IMAGE), f"the tasks that start from an image ({', '.join(NEEDS_IMAGE)})"
        ),
        FlagScope(("--mask",), when("task", "inpaint"), "--task inpaint"),
        FlagScope(("--views",), when("task", "anagram"), "--task anagram"),
        FlagScope(("--prompt2",), when("task", "anagram", "hybrid"), "the tasks with two prompts (anagram, hybrid)"),
        FlagScope(("--prompt3", "--prompt4"), when("task", "anagram"), "--task anagram (one prompt per view)"),
        FlagScope(("--blur-kernel", "--blur-sigma"), when("task", "blur", "hybrid"), "--task blur and --task hybrid"),
        FlagScope(("--noise-level",), when("task", "upscale"), "--task upscale"),
        FlagScope(
            ("--prompt", "--guidance", "--no-cfg"),
            lambda args: args.task not in WITHOUT_UNET,
            f"the tasks that run the model, not {', '.join(WITHOUT_UNET)}",
        ),
    )
