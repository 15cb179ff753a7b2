"""The 2D lab's commands, as sub-commands of train, sample and experiment:

    diffusion-stepper train toy2d --dataset NAME --objective {ddpm,flow} [--classes] --out DIR
    diffusion-stepper sample toy2d --checkpoint DIR [--num N --sampler S --steps K] --out RUN.npz
    diffusion-stepper sample toy2d --exact 8-gaussians --objective ddpm --out RUN.npz
    diffusion-stepper experiment toy2d NAME [--checkpoint DIR | --dataset NAME] --out-dir DIR

A run's final points are its x_t[-1] reshaped to (N, 2); the file also holds a sample of the
training data as `data`. `export RUN.npz --gif/--mp4` draws the particle view.
"""

from __future__ import annotations

import argparse

from diffusion_stepper.core.cli.common import (
    FlagScope,
    float_in,
    fraction,
    input_files,
    int_in,
    positive_int,
    progress,
    record_run,
    seed,
    steps,
)
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.experiments import Experiments
from diffusion_stepper.core.files import check_output_file, check_output_folder
from diffusion_stepper.core.limits import GUIDANCE, POINTS, TOY_CLASSES


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """train toy2d's flags (each kind of `train` has its own)."""
    from diffusion_stepper.core.limits import BATCH_SIZE, HIDDEN, LEARNING_RATE, TOY_ITERATIONS
    from diffusion_stepper.core.toy2d.datasets import DATASETS
    from diffusion_stepper.core.toy2d.training import Toy2DConfig

    default = Toy2DConfig()
    train.add_argument("--dataset", help=f"{', '.join(DATASETS)}, or a drawn distribution's .json")
    train.add_argument("--objective", choices=["ddpm", "flow"], help=f"default {default.objective}")
    train.add_argument("--classes", action="store_true", help="condition on the dataset's classes (for CFG)")
    train.add_argument(
        "--p-uncond", type=fraction, help=f"with --classes: class dropout (default {default.p_uncond:g})"
    )
    train.add_argument(
        "--iterations", type=int_in(TOY_ITERATIONS), help=f"training iterations (default {default.iterations:,})"
    )
    train.add_argument("--hidden", type=int_in(HIDDEN), help=f"the MLP's width (default {default.hidden})")
    train.add_argument("--batch-size", type=int_in(BATCH_SIZE), help=f"default {default.batch_size}")
    train.add_argument("--lr", type=float_in(LEARNING_RATE), help=f"Adam's rate (default {default.lr:g})")
    train.add_argument("--seed", type=seed, help=f"default {default.seed}")
    train.add_argument("--out", required=True, help="folder for the model")


def run_train(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.toy2d.checkpoints import train_and_save_toy2d
    from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DLoss

    if not args.dataset:  # train's FLAG_SCOPES have refused the flags a 2D model does not take
        raise UserFacingError("train toy2d needs --dataset (moons, checkerboard, ... or a drawn .json)")
    config = Toy2DConfig(
        dataset=args.dataset, objective=args.objective or "flow", classes=args.classes, seed=args.seed or 0
    )
    for name in ("iterations", "batch_size", "lr", "hidden", "p_uncond"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.validate()
    check_output_folder(args.out)
    saved = None
    with progress(config.iterations, f"{config.dataset} · {config.objective}", unit="it") as bar:
        for event in train_and_save_toy2d(config, args.out):
            if isinstance(event, Toy2DLoss):
                bar.n = event.iteration
                bar.set_postfix_str(f"loss {event.loss:.4f}")
            else:
                saved = event
    print(
        f"wrote {saved.sidecar}: {config.iterations:,} iterations in {saved.seconds:.1f} s, loss {saved.final_loss:.4f}"
    )
    return 0


def add_sample_parser(targets) -> None:
    from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS
    from diffusion_stepper.core.limits import ETA, KEEP_EVERY
    from diffusion_stepper.core.toy2d.runs import DEFAULT_PARTICLES

    toy = targets.add_parser("toy2d", help="a 2D lab model: particles in the plane")
    source = toy.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a folder written by `train toy2d` (or its toy2d.json)")
    source.add_argument("--exact", metavar="DATASET", help="the exact field of a Gaussian mixture (8-gaussians, drawn)")
    toy.add_argument("--objective", choices=["ddpm", "flow"], help="with --exact: which field (default ddpm)")
    toy.add_argument("--num", type=int_in(POINTS), default=DEFAULT_PARTICLES, help="particles (default %(default)s)")
    toy.add_argument("--sampler", choices=list(ALL_SAMPLERS), help="default: ddpm for DDPM, euler for flow")
    toy.add_argument("--steps", type=steps, help="default: 100 (DDPM) or 50 (flow)")
    toy.add_argument("--eta", type=float_in(ETA), help="DDIM's η")
    toy.add_argument(
        "--class", dest="label", type=int_in((0, TOY_CLASSES - 1)), help="guide every particle to this class (CFG)"
    )
    toy.add_argument("--guidance", type=float_in(GUIDANCE), help="CFG's γ with --class (default 1)")
    toy.add_argument("--seed", type=seed, default=0)
    toy.add_argument("--keep-every", type=int_in(KEEP_EVERY), default=1, metavar="K", help="store every K-th frame")
    toy.add_argument("--out", required=True, help="trajectory file to write (.npz)")


# `sample toy2d`'s flags that do something only with another (η with DDIM: the sampler's own check)
SAMPLE_FLAG_SCOPES = (
    FlagScope(("--objective",), lambda args: bool(args.exact), "--exact (a checkpoint has its own objective)"),
    FlagScope(("--guidance",), lambda args: args.label is not None, "--class (CFG towards that class)"),
)
EXPERIMENT_FLAG_SCOPES = (
    FlagScope(
        ("--dataset",),
        lambda args: not args.checkpoint,
        "the exact field (a checkpoint samples its own data)",
        dests={"--dataset": "mixture"},
    ),
)


def run_sample(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory
    from diffusion_stepper.core.toy2d.experiments import SourceSpec, Toy2DRequest
    from diffusion_stepper.core.toy2d.runs import Toy2DSettings

    check_output_file(args.out, inputs=input_files(args.checkpoint, args.exact))
    spec = SourceSpec(args.checkpoint, args.exact or "", args.objective or "ddpm")
    settings = Toy2DSettings(
        count=args.num,
        seed=args.seed,
        steps=args.steps,
        sampler=args.sampler,
        eta=args.eta,
        label=args.label,
        guidance=1.0 if args.guidance is None else args.guidance,
    )
    trajectory = record_run(Toy2DRequest(spec, settings), "sampling", args.keep_every)
    path = save_trajectory(trajectory, args.out)
    count = trajectory[0].x_t.shape[0]
    print(f"wrote {path}: {len(trajectory)} frames of {count:,} particles ({trajectory.run_meta.model})")
    return 0


def add_experiment_parser(targets) -> None:
    from diffusion_stepper.core.toy2d.experiments import DEFAULT_DATASET, TOY2D_EXPERIMENTS
    from diffusion_stepper.core.toy2d.runs import DEFAULT_PARTICLES

    toy = targets.add_parser("toy2d", help="a 2D lab experiment (particles in the plane)")
    toy.add_argument(
        "name",
        choices=list(TOY2D_EXPERIMENTS),
        help="; ".join(f"{key}: {experiment.summary}" for key, experiment in TOY2D_EXPERIMENTS.items()),
    )
    toy.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    toy.add_argument("--checkpoint", help="a model from `train toy2d` (default: the exact field of --dataset)")
    toy.add_argument(
        "--dataset",
        dest="mixture",  # `dataset` names the sub-command (mnist, if, toy2d)
        help=f"a Gaussian mixture for the exact field: {DEFAULT_DATASET} (the default) or a drawn .json",
    )
    toy.add_argument("--num", type=positive_int, default=DEFAULT_PARTICLES, help="particles per run")
    toy.add_argument("--seed", type=seed, default=0)


def experiment_requests(args: argparse.Namespace) -> tuple[Experiments, list]:
    """The 2D lab's experiments, and the requests of the one `args` names."""
    from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS, Toy2DExperimentOptions

    options = Toy2DExperimentOptions(checkpoint=args.checkpoint, count=args.num, seed=args.seed)
    options.dataset = args.mixture or options.dataset
    return TOY2D_EXPERIMENTS, TOY2D_EXPERIMENTS.requests(args.name, options)
