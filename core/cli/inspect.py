"""`diffusion-stepper inspect RUN.npz`: each step's t, the update rule with its numbers (the app's
equation panel) and the statistics of x_t and the noise estimate, as text."""

from __future__ import annotations

import argparse
import json

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
    inspect.add_argument(
        "--json",
        action="store_true",
        help="print each step's update as JSON terms (coefficient, file member, frame) to check it yourself",
    )


FLAG_SCOPES = (
    FlagScope(("--data-dir",), lambda args: args.judge, "--judge (the real digits it compares with)"),
    FlagScope(("--judge",), lambda args: not args.json, "the text report (--json prints the updates only)"),
)


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    return FLAG_SCOPES


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
    from diffusion_stepper.core.diffusion.theory import frame_histograms
    from diffusion_stepper.core.formats.trajectory_file import load_trajectory

    trajectory = load_trajectory(args.trajectory)
    steps = args.step if args.step else range(len(trajectory))
    bad = [step for step in steps if not 0 <= step < len(trajectory)]
    if bad:
        shown = shorten(format_int_list(sorted(set(bad))))
        raise UserFacingError(f"--step {shown} is outside this run's frames 0-{len(trajectory) - 1}")
    if args.json:
        print(json.dumps({"frames": [update_record(trajectory.frames, step) for step in steps]}))
        return 0
    meta = trajectory.run_meta
    print(f"{meta.algorithm} · {meta.model} · seed {meta.seed} · {len(trajectory)} frames")
    for step in steps:
        frame = trajectory[step]
        print(frame_caption(meta, frame, len(trajectory)))
        for line in step_equation(meta, frame, trajectory.frames):
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


def update_record(frames: list, step: int) -> dict:
    """One frame of `inspect --json`: its step, t and update, the update's terms naming the
    trajectory file's members (an extra as extra_NAME) and the frame each is read at; the update
    is null on the last frame, and where the frames stored cannot show the step (then "why" says why)."""
    from diffusion_stepper.core.diffusion.step_check import why_unchecked
    from diffusion_stepper.core.formats.trajectory_file import file_member
    from diffusion_stepper.core.updates import NOISE

    frame = frames[step]
    record: dict = {"step": step, "t": float(frame.t), "update": None}
    reason = why_unchecked(frames, step)
    if reason is not None:
        if frame.update is not None or not frame.coeffs.get("final"):
            record["why"] = reason
        return record
    terms = []
    for term in frame.update.terms:
        entry: dict = {"coef": term.coef, "member": NOISE if term.member == NOISE else file_member(term.member)}
        if term.member != NOISE:
            entry["frame"] = step + term.frame
        if term.scale:
            entry["scale"] = file_member(term.scale)  # read at this step's frame, multiplies pixel by pixel
        terms.append(entry)
    record["update"] = {"result_frame": step + 1, "formula": frame.update.formula, "terms": terms}
    if frame.update.where:
        record["update"]["where"] = file_member(frame.update.where)
    return record
