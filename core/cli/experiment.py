"""`diffusion-stepper experiment mnist|if|toy2d NAME`: one of the app's Experiments menu entries,
written as one trajectory file per run."""

from __future__ import annotations

import argparse
from pathlib import Path

from diffusion_stepper.core.cli import toy2d
from diffusion_stepper.core.cli.common import (
    FlagScope,
    OneLineParser,
    float_in,
    guidance_list,
    int_list,
    progress,
    samples,
    seed,
    step_list,
    steps,
    when,
    write_experiment,
)
from diffusion_stepper.core.cli.if_options import add_if_settings_arguments, if_settings
from diffusion_stepper.core.experiments import Experiments
from diffusion_stepper.core.files import check_output_folder

NAME = "experiment"
SAMPLER_QUALITY = "sampler-quality"
GUIDANCE_TRADEOFF = "guidance-tradeoff"
RACES = ("samplers", "flow-samplers")
USES_CHECKPOINT = (*RACES, SAMPLER_QUALITY, GUIDANCE_TRADEOFF)
USES_GUIDANCE = (*RACES, SAMPLER_QUALITY)  # the trade-off sweeps its own --guidances
USES_STEPS = ("guidance-sweep", "ddpm-vs-flow", "epochs", GUIDANCE_TRADEOFF)  # races and quality: NFE decides
USES_DATA = ("noising", "out-of-distribution", SAMPLER_QUALITY, GUIDANCE_TRADEOFF)  # test digits, or the judge's


# Which of `experiment mnist`'s flags each experiment uses; any other given is refused (one line)
MNIST_FLAG_SCOPES = (
    FlagScope(("--checkpoint",), when("name", *USES_CHECKPOINT), ", ".join(USES_CHECKPOINT)),
    FlagScope(("--guidance",), when("name", *USES_GUIDANCE), ", ".join(USES_GUIDANCE)),
    FlagScope(("--steps",), when("name", *USES_STEPS), f"{', '.join(USES_STEPS)} (the races spend --nfe)"),
    FlagScope(("--data-dir",), when("name", *USES_DATA), ", ".join(USES_DATA)),
    FlagScope(("--run-dir", "--epochs"), when("name", "epochs"), "the epochs experiment"),
    FlagScope(("--nfe",), when("name", *RACES), f"the sampler races ({', '.join(RACES)})"),
    FlagScope(("--budgets",), when("name", SAMPLER_QUALITY), SAMPLER_QUALITY),
    FlagScope(
        ("--per-class",), when("name", SAMPLER_QUALITY, GUIDANCE_TRADEOFF), f"{SAMPLER_QUALITY}, {GUIDANCE_TRADEOFF}"
    ),
    FlagScope(("--guidances", "--sampler"), when("name", GUIDANCE_TRADEOFF), GUIDANCE_TRADEOFF),
)


def register(commands) -> None:
    from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
    from diffusion_stepper.core.deepfloyd_if.tasks import DEFAULT_IMAGE, DEFAULT_MASK
    from diffusion_stepper.core.devices import DEVICE_CHOICES
    from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS
    from diffusion_stepper.core.limits import GUIDANCE
    from diffusion_stepper.core.mnist.experiments import EXPERIMENTS, RACE_BUDGET
    from diffusion_stepper.core.mnist.guidance_tradeoff import (
        TRADEOFF_GUIDANCES,
        TRADEOFF_PER_CLASS,
        default_sampler_text,
    )
    from diffusion_stepper.core.mnist.sampler_quality import QUALITY_BUDGETS, QUALITY_PER_CLASS
    from diffusion_stepper.core.paths import sample_image

    parent = commands.add_parser(NAME, help="run a course experiment (as the app's Experiments menu does)")
    targets = parent.add_subparsers(
        dest="dataset", metavar="{mnist,if,toy2d}", required=True, parser_class=OneLineParser
    )

    mnist = targets.add_parser("mnist", help="a part B experiment on the MNIST models")
    mnist.add_argument(
        "name",
        choices=[*EXPERIMENTS, SAMPLER_QUALITY, GUIDANCE_TRADEOFF],
        help=f"which experiment; {SAMPLER_QUALITY}: judged quality of each sampler against NFE; "
        f"{GUIDANCE_TRADEOFF}: right digit, diversity and FD against γ (each writes CSV and PNG)",
    )
    mnist.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    mnist.add_argument("--seed", type=seed, default=0)
    mnist.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    mnist.add_argument("--steps", type=steps, help="sampling steps of the sampling runs (default: each model's own)")
    mnist.add_argument("--data-dir", help="MNIST folder, for the experiments on test digits")
    mnist.add_argument("--run-dir", help="epochs: the training run's folder")
    mnist.add_argument(
        "--epochs", type=int_list, help="epochs: which (default: up to four of those saved, first to last)"
    )
    mnist.add_argument(
        "--checkpoint", help="samplers, flow-samplers, sampler-quality: the model (default: the bundled class model)"
    )
    mnist.add_argument(
        "--guidance",
        type=float_in(GUIDANCE),
        help="samplers, flow-samplers, sampler-quality: the CFG scale γ (default 5; 1 is the conditional model alone)",
    )
    mnist.add_argument(
        "--nfe", type=steps, help=f"sampler races: model evaluations per sampler (default {RACE_BUDGET})"
    )
    mnist.add_argument(
        "--budgets",
        type=step_list,
        help=f"sampler-quality: NFE budgets (default {','.join(map(str, QUALITY_BUDGETS))})",
    )
    mnist.add_argument(
        "--per-class",
        type=samples,
        help=f"sampler-quality, {GUIDANCE_TRADEOFF}: digits of each class per point "
        f"(default {QUALITY_PER_CLASS} and {TRADEOFF_PER_CLASS})",
    )
    mnist.add_argument(
        "--guidances",
        type=guidance_list,
        help=f"{GUIDANCE_TRADEOFF}: the γ to sweep (default {','.join(f'{g:g}' for g in TRADEOFF_GUIDANCES)})",
    )
    mnist.add_argument(
        "--sampler",
        choices=list(ALL_SAMPLERS),
        help=f"{GUIDANCE_TRADEOFF}: the sampler (default: {default_sampler_text()})",
    )

    deepfloyd_if = targets.add_parser("if", help="a part A experiment on DeepFloyd IF")
    deepfloyd_if.add_argument("name", choices=list(PART_A_EXPERIMENTS), help="which experiment")
    deepfloyd_if.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    add_if_settings_arguments(deepfloyd_if, str(sample_image(DEFAULT_IMAGE)), str(sample_image(DEFAULT_MASK)))
    toy2d.add_experiment_parser(targets)


def run_sampler_quality(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.sampler_quality import (
        QUALITY_PER_CLASS,
        QualityRequest,
        quality_plan,
        quality_points,
        write_quality,
    )

    request = QualityRequest(
        checkpoint=args.checkpoint or QualityRequest.checkpoint,
        budgets=args.budgets or QualityRequest.budgets,
        per_class=args.per_class or QUALITY_PER_CLASS,
        guidance=args.guidance,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
    )
    plan = quality_plan(request)
    rows = []
    with progress(len(plan.points), "sampler × NFE", unit="point") as bar:
        for row in quality_points(request, plan):
            rows.append(row)
            bar.update(1)
            bar.write(
                f"{row.sampler:>8} NFE {row.nfe:>3} ({row.steps} steps): right digit {row.accuracy:.1%}, "
                f"FD {row.fd:.2f} (real digits {row.fd_real:.2f}) in {row.seconds:.1f} s"
            )
    for path in write_quality(rows, args.out_dir, plan.model, plan.flow):
        print(f"wrote {path}")
    return 0


def run_guidance_tradeoff(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.guidance_tradeoff import (
        TRADEOFF_GUIDANCES,
        TRADEOFF_PER_CLASS,
        TradeoffRequest,
        objective_of,
        tradeoff_points,
        write_tradeoff,
    )

    request = TradeoffRequest(
        checkpoint=args.checkpoint or TradeoffRequest.checkpoint,
        guidances=args.guidances or list(TRADEOFF_GUIDANCES),
        per_class=args.per_class or TRADEOFF_PER_CLASS,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
    )
    objective_of(request.checkpoint)  # a missing or unsuitable model is refused before the progress bar
    rows = []
    with progress(len(request.guidances), "γ", unit="scale") as bar:
        for row in tradeoff_points(request):
            rows.append(row)
            bar.update(1)
            bar.write(
                f"γ = {row.guidance:g}: right digit {row.accuracy:.1%}, diversity {row.diversity:.2f} "
                f"(real {row.diversity_real:.2f}), FD {row.fd:.2f} (real digits {row.fd_real:.2f}), "
                f"{row.seconds:.1f} s"
            )
    for path in write_tradeoff(rows, args.out_dir, Path(request.checkpoint).stem):
        print(f"wrote {path}")
    return 0


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    return {"mnist": MNIST_FLAG_SCOPES, "toy2d": toy2d.EXPERIMENT_FLAG_SCOPES}.get(args.dataset, ())


def mnist_requests(args: argparse.Namespace) -> tuple[Experiments, list]:
    from diffusion_stepper.core.mnist.experiments import EXPERIMENTS, ExperimentOptions

    options = ExperimentOptions(
        seed=args.seed,
        device=args.device,
        steps=args.steps,
        data_dir=args.data_dir,
        run_dir=args.run_dir,
        epochs=args.epochs,
        nfe=args.nfe or ExperimentOptions.nfe,
        guidance=args.guidance,
    )
    if args.checkpoint:
        options.ddpm_checkpoint = options.flow_checkpoint = args.checkpoint
    return EXPERIMENTS, EXPERIMENTS.requests(args.name, options)


def if_requests(args: argparse.Namespace) -> tuple[Experiments, list]:
    from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
    from diffusion_stepper.core.deepfloyd_if.tasks import prepare_all

    # the model loaded and the prompts' embeddings read once, for all the runs
    return PART_A_EXPERIMENTS, prepare_all(PART_A_EXPERIMENTS.requests(args.name, if_settings(args)))


# Each family's experiments, and the requests of the one named, made from its flags
REQUESTS = {"mnist": mnist_requests, "if": if_requests, "toy2d": toy2d.experiment_requests}


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out_dir, "--out-dir")
    if args.dataset == "mnist" and args.name == SAMPLER_QUALITY:
        return run_sampler_quality(args)
    if args.dataset == "mnist" and args.name == GUIDANCE_TRADEOFF:
        return run_guidance_tradeoff(args)
    experiments, requests = REQUESTS[args.dataset](args)
    trajectories = write_experiment(args.name, requests, args.out_dir)
    if experiments[args.name].race:
        from diffusion_stepper.core.exports.race_chart import write_convergence

        for path in write_convergence(trajectories, Path(args.out_dir) / f"{args.name}-x0-distance.png"):
            print(f"wrote {path}")
    return 0
