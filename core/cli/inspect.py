"""`diffusion-stepper inspect RUN.npz`: each step's t, the update rule with its numbers (the app's
equation panel) and the statistics of x_t and the noise estimate, as text."""

from __future__ import annotations

import argparse

from diffusion_stepper.core.cli.common import FlagScope, int_list
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.parsing import format_int_list, shorten

NAME = "inspect"


def register(commands) -> None:
    inspect = commands.add_parser(
        NAME, help="print a trajectory's steps: t, the update rule with its numbers, statistics"
    )
    inspect.add_argument("trajectory")
    inspect.add_argument("--step", type=int_list, help="frames to print, e.g. 0,150,300 (default: all)")
    inspect.add_argument(
        "--judge",
        action="store_true",
        help="MNIST runs: the bundled judge's figures for the final digits (right digit, FD beside real digits)",
    )
    inspect.add_argument("--data-dir", help="--judge: the MNIST folder (default: the bundled one)")


FLAG_SCOPES = (FlagScope(("--data-dir",), lambda args: args.judge, "--judge (the real digits it compares with)"),)


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    return FLAG_SCOPES


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
    from diffusion_stepper.core.diffusion.theory import frame_histograms
    from diffusion_stepper.core.io.trajectory_file import load_trajectory

    trajectory = load_trajectory(args.trajectory)
    steps = args.step if args.step else range(len(trajectory))
    bad = [step for step in steps if not 0 <= step < len(trajectory)]
    if bad:
        shown = shorten(format_int_list(sorted(set(bad))))
        raise UserFacingError(f"--step {shown} is outside this run's frames 0-{len(trajectory) - 1}")
    meta = trajectory.meta
    print(f"{meta['algorithm']} · {meta['model']} · seed {meta['seed']} · {len(trajectory)} frames")
    for step in steps:
        frame = trajectory[step]
        print(frame_caption(meta, frame, len(trajectory)))
        for line in step_equation(meta, frame):
            print(f"    {line}")
        statistics = [f"x_t mean {frame.x_t.mean():+.3f} std {frame.x_t.std():.3f}"]
        noise = frame.noise_field
        if noise and not frame.coeffs.get("final"):
            values = frame.image(noise)
            statistics.append(f"{noise} mean {values.mean():+.3f} std {values.std():.3f}")
        statistics.append(f"x_t theory: {frame_histograms(trajectory, frame).x_t_note}")
        print("    " + " · ".join(statistics))
    if args.judge:
        from diffusion_stepper.core.mnist.judge import describe_figures, judge_run

        print(describe_figures(judge_run(trajectory, data_dir=args.data_dir)))
    return 0
