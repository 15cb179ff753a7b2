"""`diffusion-stepper train mnist|mnist-judge|toy2d`: train a part B model (one checkpoint and a
sample grid per epoch), the digit judge, or a 2D lab model. Each kind has its own flags and help."""

from __future__ import annotations

import argparse
from pathlib import Path

from diffusion_stepper.core.cli import toy2d
from diffusion_stepper.core.cli.common import (
    FlagScope,
    OneLineParser,
    add_kinds,
    float_in,
    fraction,
    int_in,
    kind_scopes,
    positive_int,
    progress,
    seed,
    steps,
)
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_output_folder

NAME = "train"
MNIST = "mnist"
JUDGE = "mnist-judge"
TOY2D = "toy2d"
DEFAULT_MODEL, DEFAULT_PRESET = "class", "course"


def register(commands) -> None:
    train = commands.add_parser(
        NAME,
        help="train a CS180 part B model on MNIST (mnist), the digit judge that scores samples (mnist-judge), "
        "or a 2D lab model (toy2d)",
        description="Train a model. Each kind has its own flags: see diffusion-stepper train KIND --help.",
    )
    targets = train.add_subparsers(
        dest="target", metavar="{mnist,mnist-judge,toy2d}", required=True, parser_class=OneLineParser
    )
    add_kinds(targets, KINDS)


def add_mnist_arguments(train: argparse.ArgumentParser) -> None:
    from diffusion_stepper.core.devices import DEVICE_CHOICES
    from diffusion_stepper.core.limits import BATCH_SIZE, EPOCHS, HIDDEN, LEARNING_RATE, NOISE_SIGMA, SAMPLES
    from diffusion_stepper.core.mnist.recipes import LR_SCHEDULES, MODEL_KINDS, PRESETS, QUICK_SUMMARY

    train.add_argument("--model", choices=MODEL_KINDS, help=f"default: {DEFAULT_MODEL}")
    train.add_argument(
        "--objective", choices=["ddpm", "flow"], help="for time/class models (default: ddpm, or flow with quick)"
    )
    train.add_argument(
        "--preset",
        choices=PRESETS,
        help=f"course: CS180's recipe (the default); quick: {QUICK_SUMMARY.replace('%', '%%')}",  # argparse's %
    )
    train.add_argument(
        "--epochs",
        type=epoch_count(EPOCHS),
        help="default: the preset's. With --resume: train up to this many, or +N: N more after the checkpoint "
        "on a schedule of their own (keep training a run that has ended)",
    )
    train.add_argument("--hidden", type=int_in(HIDDEN), help="UNet hidden size D")
    train.add_argument("--batch-size", type=int_in(BATCH_SIZE))
    train.add_argument("--lr", type=float_in(LEARNING_RATE))
    train.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="exponential: the course's fall to 0.1x; warmup-cosine: warm up, then fall to zero",
    )
    train.add_argument("--ema-decay", type=fraction, help="sample from a moving average of the weights (0: off)")
    train.add_argument("--sigma", type=float_in(NOISE_SIGMA), help="single-step noise level (default 0.5)")
    train.add_argument(
        "--pure-noise", action="store_true", help="single-step: train on pure noise z = ε (part B's average digit)"
    )
    train.add_argument("--p-uncond", type=fraction, help="class dropout probability (default 0.1)")
    train.add_argument("--seed", type=seed, help="default 0")
    train.add_argument("--device", choices=DEVICE_CHOICES, help="default auto")
    train.add_argument("--data-dir", help="another copy of the MNIST IDX files (default: the bundled one)")
    train.add_argument("--limit", type=positive_int, help="train on the first N images only")
    train.add_argument("--log-every", type=positive_int, help="iterations per loss event (default 10)")
    train.add_argument(
        "--epoch-samples", type=int_in((0, SAMPLES[1])), help="samples drawn after each epoch (0: none; default 40)"
    )
    train.add_argument("--epoch-sample-steps", type=steps, help="sampling steps for the epoch grid")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from one of its checkpoints")
    train.add_argument("--out", required=True, help="directory for the checkpoints")


def add_judge_arguments(train: argparse.ArgumentParser) -> None:
    from diffusion_stepper.core.limits import BATCH_SIZE, EPOCHS, LEARNING_RATE
    from diffusion_stepper.core.mnist.judge import JudgeTraining

    default = JudgeTraining()
    train.add_argument(
        "--epochs", type=int_in(EPOCHS), help=f"at most (default {default.epochs}); it stops at its target accuracy"
    )
    train.add_argument("--batch-size", type=int_in(BATCH_SIZE), help=f"default {default.batch_size}")
    train.add_argument("--lr", type=float_in(LEARNING_RATE), help=f"Adam's rate (default {default.lr:g})")
    train.add_argument("--seed", type=seed, help=f"default {default.seed}")
    train.add_argument("--data-dir", help="another copy of the MNIST IDX files (default: the bundled one)")
    train.add_argument("--out", required=True, help="directory for the judge's weights")


class MoreEpochs(int):
    """`--epochs +N`: N epochs to add to a run, not a count to train up to."""


def epoch_count(bounds: tuple[int, int]):
    """`--epochs N`, or `+N` (a MoreEpochs) to add N epochs to a resumed run."""
    count = int_in(bounds)

    def parse(text: str) -> int:
        return MoreEpochs(count(text[1:])) if text.startswith("+") else count(text)

    return parse


def config_from_flags(args: argparse.Namespace):
    """The run's recipe: the checkpoint's own when resuming, else the preset with the flags given."""
    from diffusion_stepper.core.mnist.recipes import config_for_resume, preset_config

    if isinstance(args.epochs, MoreEpochs) and not args.resume:
        raise UserFacingError("--epochs +N adds epochs to a run: give the checkpoint to go on from with --resume")
    if args.resume:
        if isinstance(args.epochs, MoreEpochs):
            return config_for_resume(args.resume, more_epochs=int(args.epochs), device=args.device)
        return config_for_resume(args.resume, epochs=args.epochs, device=args.device)
    config = preset_config(args.preset or DEFAULT_PRESET, args.model or DEFAULT_MODEL, args.objective)
    for name in (
        "epochs",
        "hidden",
        "batch_size",
        "lr",
        "lr_schedule",
        "ema_decay",
        "sigma",
        "p_uncond",
        "epoch_sample_steps",
        "limit",
    ):
        if getattr(args, name) is not None:  # flags left out keep the preset's value
            setattr(config, name, getattr(args, name))
    config.pure_noise = args.pure_noise  # only the single-step model takes it (FLAG_SCOPES)
    config.seed, config.device = args.seed or 0, args.device or "auto"
    config.log_every = args.log_every or config.log_every
    if args.epoch_samples is not None:
        config.epoch_samples = args.epoch_samples
    return config


# The flags that make a new run's recipe, which --resume takes from the checkpoint instead
RECIPE_FLAGS = (
    *("--model", "--preset", "--objective", "--hidden", "--batch-size", "--lr", "--lr-schedule", "--ema-decay"),
    *("--sigma", "--pure-noise", "--p-uncond", "--limit", "--epoch-samples", "--epoch-sample-steps"),
    *("--log-every", "--seed"),
)
# Each kind of `train`: its help line and its own flags. Only these show in `train KIND --help`;
# another kind's flag given here is refused in one line (kind_scopes)
KINDS = {
    MNIST: ("a CS180 part B model on MNIST, one checkpoint (and a sample grid) per epoch", add_mnist_arguments),
    JUDGE: ("the digit judge that scores MNIST samples (a small CNN)", add_judge_arguments),
    TOY2D: ("a 2D lab model: an MLP on a 2D dataset or a drawn distribution", toy2d.add_train_arguments),
}
# Which of a kind's flags do something for which model; any other given is refused (one line)
FLAG_SCOPES = (
    FlagScope(
        ("--objective",),
        lambda args: args.target != MNIST or args.model != "single-step",
        "time and class models and train toy2d (the single-step model has one objective)",
    ),
    FlagScope(
        ("--sigma", "--pure-noise"),
        lambda args: args.model == "single-step",
        "the single-step model (--model single-step)",
    ),
    FlagScope(
        ("--p-uncond",),
        lambda args: args.classes if args.target == TOY2D else args.model in (None, "class"),
        "class-conditioned models (train mnist's class model, train toy2d --classes)",
    ),
    FlagScope(
        RECIPE_FLAGS,
        lambda args: not args.resume,
        "a new run: --resume goes on with the checkpoint's own recipe (it takes --epochs, --device, --data-dir)",
    ),
)


def train_judge_command(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.judge import JudgeTraining, train_judge

    check_output_folder(args.out)
    settings = JudgeTraining(seed=args.seed or 0, data_dir=args.data_dir)
    for name in ("epochs", "batch_size", "lr"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    weights, test_accuracy = train_judge(settings, args.out, report=lambda line: print(line, flush=True))
    print(f"wrote {weights}: test accuracy {test_accuracy:.2%}")
    return 0


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    return (*kind_scopes(NAME, "target", KINDS), *FLAG_SCOPES)  # the kind's first: "--preset is for train mnist"


def run(args: argparse.Namespace) -> int:
    if args.target == JUDGE:
        return train_judge_command(args)
    if args.target == TOY2D:
        return toy2d.run_train(args)
    from diffusion_stepper.core.mnist.data import mnist_source
    from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent, train_on_mnist
    from diffusion_stepper.core.training_progress import LossHistory

    config = config_from_flags(args)
    check_output_folder(args.out)
    history, bar = LossHistory(), None
    try:
        for event in train_on_mnist(config, Path(args.out), args.data_dir, resume_from=args.resume):
            if isinstance(event, LossEvent):
                if history.last is None:  # said once training runs, not before a bad flag stops it
                    print(f"training on {mnist_source(args.data_dir).describe()}", flush=True)
                history.add_losses(event)
                if bar is None:
                    bar = progress(event.epoch_iterations, f"epoch {event.epoch}/{config.epochs}", unit="batch")
                bar.n = event.epoch_iteration
                bar.set_postfix_str(history.readout(config.epochs))
            elif isinstance(event, EpochEvent):
                if bar is not None:
                    bar.close()
                    bar = None
                message = (
                    f"epoch {event.epoch}/{config.epochs}: mean loss {event.mean_loss:.4f} in {event.seconds:.1f} s, "
                    f"checkpoint {event.checkpoint}"
                )
                if event.samples_path is not None:
                    message += f", samples {event.samples_path}"
                print(message, flush=True)
    finally:
        if bar is not None:
            bar.close()
    return 0
