"""`diffusion-stepper export RUN.npz`: a GIF, MP4 or PNG contact sheet of a trajectory."""

from __future__ import annotations

import argparse

from diffusion_stepper.core.cli.common import float_in, int_in, int_list, progress
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_output_file

NAME = "export"


def register(commands) -> None:
    from diffusion_stepper.core.io.export import ARRANGEMENTS, ASPECTS, PANEL_CHOICES, SIDE_BY_SIDE
    from diffusion_stepper.core.limits import EXPORT_SIDE, FPS, KEEP_EVERY, SCALE

    export = commands.add_parser(NAME, help="render a trajectory to a GIF, an MP4 or a PNG contact sheet")
    export.add_argument("trajectory")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--gif", metavar="OUT.gif")
    target.add_argument("--mp4", metavar="OUT.mp4", help="H.264 video that plays in browsers and slides")
    target.add_argument("--png-grid", metavar="OUT.png")
    export.add_argument(
        "--panel",
        default=SIDE_BY_SIDE,
        help=f"one of {', '.join(PANEL_CHOICES)} or an extra's name; several side by side as x_t,eps_hat",
    )
    export.add_argument("--fps", type=float_in(FPS), default=10.0)
    export.add_argument("--every", type=int_in(KEEP_EVERY), default=1, help="keep every K-th frame (the last is kept)")
    export.add_argument("--frames", metavar="START:END", help="frame range, inclusive")
    export.add_argument("--scale", type=int_in(SCALE), default=4, help="integer zoom (without --aspect)")
    export.add_argument(
        "--layout",
        choices=ARRANGEMENTS,
        help="the panels side by side (the default), stacked, or whichever shows them larger "
        "(auto: the default with --aspect)",
    )
    export.add_argument(
        "--aspect",
        choices=list(ASPECTS),
        help="fit every frame to a slide of this shape, 1080 px tall (or --width wide), the pictures as large "
        "as they fit",
    )
    export.add_argument("--width", type=int_in(EXPORT_SIDE), help="with --aspect: the frame's width in pixels")
    export.add_argument(
        "--for-slides",
        action="store_true",
        help="the slide preset: 16:9 at 1920x1080, the panels arranged to be largest (use with --mp4)",
    )
    export.add_argument("--steps-shown", type=int_list, help="frames for --png-grid, e.g. 0,100,200,300")
    export.add_argument(
        "--anagram-turn",
        action="store_true",
        help="a visual anagram run: animate its result turning into the second view instead of its steps",
    )


def frame_range(text: str | None, num_frames: int) -> tuple[int, int | None]:
    """ "START:END" (either may be left out) as frame indices, inclusive."""
    if not text:
        return 0, None
    try:
        start_text, end_text = text.split(":")
        start = int(start_text) if start_text else 0
        end = int(end_text) if end_text else num_frames - 1
    except ValueError:
        raise UserFacingError(f"--frames expects START:END, got {text!r}") from None
    return start, end


def export_layout(args: argparse.Namespace):
    """The frames' layout the flags ask for: free at --scale, or fitted to a slide."""
    from diffusion_stepper.core.io.export import SLIDES, ExportLayout

    if args.for_slides:
        if args.aspect or args.width:
            raise UserFacingError("--for-slides is 16:9 at 1920x1080: leave out --aspect and --width")
        return SLIDES
    if args.aspect:
        return ExportLayout.for_aspect(args.aspect, args.width, args.layout or "auto")
    if args.width:
        raise UserFacingError("--width goes with --aspect (the frame's shape)")
    return ExportLayout(args.layout or "side-by-side", scale=args.scale)  # auto without a frame: side by side


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.io.export import (
        SIDE_BY_SIDE,
        anagram_turn,
        panel_names,
        write_animation,
        write_png_grid,
    )
    from diffusion_stepper.core.io.trajectory_file import load_trajectory

    flag, out = next(
        (f"--{name.replace('_', '-')}", getattr(args, name))
        for name in ("gif", "mp4", "png_grid")
        if getattr(args, name)
    )
    check_output_file(out, flag)
    trajectory = load_trajectory(args.trajectory)
    try:
        if args.anagram_turn:
            trajectory = anagram_turn(trajectory)
            args.panel = "x_t" if args.panel == SIDE_BY_SIDE else args.panel  # the turning picture alone
        panel_names(trajectory, args.panel)  # a bad --panel is refused before anything renders
        layout = export_layout(args)
        animation = args.gif or args.mp4
        if animation:
            start, end = frame_range(args.frames, len(trajectory))
            with progress(len(trajectory), "rendering", unit="frame") as bar:

                def advance(done: int, total: int) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                path = write_animation(
                    trajectory,
                    animation,
                    args.panel,
                    args.fps,
                    args.every,
                    args.scale,
                    start,
                    end,
                    progress=advance,
                    layout=layout,
                )
        else:
            path = write_png_grid(trajectory, args.png_grid, args.steps_shown, args.panel, args.scale, layout)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    print(f"wrote {path}")
    return 0
