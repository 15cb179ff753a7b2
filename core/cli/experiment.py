"""`diffusion-stepper experiment mnist|if NAME`: one of the app's Experiments menu entries,
written as one trajectory file per run."""

from __future__ import annotations

import argparse

from diffusion_stepper.core.cli.common import OneLineParser, int_list, seed, steps, write_experiment
from diffusion_stepper.core.cli.if_options import add_if_settings_arguments, if_settings
from diffusion_stepper.core.files import check_output_folder

NAME = "experiment"


def register(commands) -> None:
    from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
    from diffusion_stepper.core.deepfloyd_if.tasks import DEFAULT_IMAGE, DEFAULT_MASK
    from diffusion_stepper.core.devices import DEVICE_CHOICES
    from diffusion_stepper.core.mnist.experiments import EXPERIMENTS
    from diffusion_stepper.core.paths import sample_image

    parent = commands.add_parser(NAME, help="run a course experiment (as the app's Experiments menu does)")
    targets = parent.add_subparsers(dest="dataset", metavar="{mnist,if}", required=True, parser_class=OneLineParser)

    mnist = targets.add_parser("mnist", help="a part B experiment on the MNIST models")
    mnist.add_argument("name", choices=list(EXPERIMENTS), help="which experiment")
    mnist.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    mnist.add_argument("--seed", type=seed, default=0)
    mnist.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    mnist.add_argument("--steps", type=steps, help="sampling steps of the sampling runs (default: each model's own)")
    mnist.add_argument("--data-dir", help="MNIST folder, for the experiments on test digits")
    mnist.add_argument("--run-dir", help="epochs: the training run's folder")
    mnist.add_argument(
        "--epochs", type=int_list, help="epochs: which (default: up to four of those saved, first to last)"
    )

    deepfloyd_if = targets.add_parser("if", help="a part A experiment on DeepFloyd IF")
    deepfloyd_if.add_argument("name", choices=list(PART_A_EXPERIMENTS), help="which experiment")
    deepfloyd_if.add_argument("--out-dir", required=True, help="folder for the trajectory files, one per run")
    add_if_settings_arguments(deepfloyd_if, str(sample_image(DEFAULT_IMAGE)), str(sample_image(DEFAULT_MASK)))


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out_dir, "--out-dir")
    if args.dataset == "if":
        from diffusion_stepper.core.deepfloyd_if.experiments import part_a_requests
        from diffusion_stepper.core.deepfloyd_if.tasks import prepare_all

        requests = prepare_all(part_a_requests(args.name, if_settings(args)))
    else:
        from diffusion_stepper.core.mnist.experiments import ExperimentOptions, experiment_requests

        options = ExperimentOptions(
            seed=args.seed,
            device=args.device,
            steps=args.steps,
            data_dir=args.data_dir,
            run_dir=args.run_dir,
            epochs=args.epochs,
        )
        requests = experiment_requests(args.name, options)
    write_experiment(args.name, requests, args.out_dir)
    return 0
