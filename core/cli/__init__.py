"""The headless command line: everything the app does, without a display. One module per command,
each with its flags (`register`) and what it does (`run`):

    diffusion-stepper train mnist|toy2d ...      train a part B model (one checkpoint per epoch) or a 2D one
    diffusion-stepper sample mnist|if|toy2d ...  sample a model into a trajectory file
    diffusion-stepper experiment mnist|if|toy2d NAME   an experiment (the app's Experiments menu) into files
    diffusion-stepper export RUN.npz ...         GIF, MP4 or PNG contact sheet of a trajectory
    diffusion-stepper inspect RUN.npz            the update rule with its numbers, step by step
    diffusion-stepper models                     list the bundled checkpoints
    diffusion-stepper bundle CHECKPOINT ...      copy a checkpoint into the bundled models
    diffusion-stepper download mnist             fetch MNIST once, checking checksums

Bad input ends the command with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from diffusion_stepper.core import __version__
from diffusion_stepper.core.cli import bundle, download, experiment, export, inspect, models, sample, train
from diffusion_stepper.core.cli.common import PROG, OneLineParser, silence_stdout
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.logs import log_file

COMMAND_MODULES = {
    module.NAME: module for module in (train, sample, experiment, export, inspect, models, download, bundle)
}
COMMANDS = tuple(COMMAND_MODULES)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Step through diffusion sampling frame by frame. With no command, opens the app.",
        epilog=f"The app writes unexpected errors with their tracebacks to {log_file()} (send it with a report).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in COMMAND_MODULES.values():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMAND_MODULES[args.command].run(args)
    except UserFacingError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except torch.OutOfMemoryError:
        print(
            f"{PROG}: error: out of GPU memory; use fewer samples, a smaller --batch-size, or --device cpu",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other tools do
        silence_stdout()
        return 1


if __name__ == "__main__":
    sys.exit(main())
