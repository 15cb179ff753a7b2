"""`diffusion-stepper export RUN.npz`: a GIF, MP4 or PNG contact sheet of a trajectory, or an
interactive HTML page of one run or of several compared on one slider."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffusion_stepper.core.cli.common import FlagScope, float_in, int_in, int_list, progress
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_output_file

NAME = "export"


def register(commands) -> None:
    from diffusion_stepper.core.exports.render import ARRANGEMENTS, ASPECTS, PANEL_CHOICES, SIDE_BY_SIDE
    from diffusion_stepper.core.limits import EXPORT_SIDE, FPS, KEEP_EVERY, SCALE

    export = commands.add_parser(
        NAME, help="render a trajectory to a GIF, an MP4, a PNG contact sheet or an interactive HTML page"
    )
    export.add_argument("trajectory", nargs="+", metavar="RUN.npz", help="one run; several only with --html")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--gif", metavar="OUT.gif")
    target.add_argument("--mp4", metavar="OUT.mp4", help="H.264 video that plays in browsers and slides")
    target.add_argument("--png-grid", metavar="OUT.png")
    target.add_argument(
        "--html",
        metavar="OUT.html",
        help="one self-contained page to step through in a browser, offline; several runs share one slider",
    )
    export.add_argument(
        "--panel",
        help=f"one of {', '.join(PANEL_CHOICES)} or an extra's name; several side by side as x_t,eps_hat "
        f"(default {SIDE_BY_SIDE})",
    )
    export.add_argument("--fps", type=float_in(FPS), help="frames per second (default 10)")
    export.add_argument("--every", type=int_in(KEEP_EVERY), help="keep every K-th frame (the last is kept)")
    export.add_argument("--frames", metavar="START:END", help="frame range, inclusive")
    export.add_argument("--scale", type=int_in(SCALE), help="integer zoom (without --aspect; default 4)")
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
    export.add_argument("--title", help="with --html: the page's title (default: the runs' names)")


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
    from diffusion_stepper.core.exports.render import SLIDES, ExportLayout

    if args.for_slides:
        if args.aspect or args.width:
            raise UserFacingError("--for-slides is 16:9 at 1920x1080: leave out --aspect and --width")
        return SLIDES
    if args.aspect:
        return ExportLayout.for_aspect(args.aspect, args.width, args.layout or "auto")
    if args.width:
        raise UserFacingError("--width goes with --aspect (the frame's shape)")
    return ExportLayout(args.layout or "side-by-side", scale=args.scale)  # auto without a frame: side by side


# The flags that shape pictures or animations, which a page does not take: it shows every panel
# and lets the reader choose the speed.
PICTURE_FLAGS = (
    *("--panel", "--fps", "--frames", "--scale", "--layout", "--aspect", "--width"),
    *("--for-slides", "--steps-shown", "--anagram-turn"),
)


def _making(*kinds: str):
    return lambda args: any(getattr(args, kind) is not None for kind in kinds)


# Which flags each kind of export takes; any other given is refused (one line)
FLAG_SCOPES = (
    FlagScope(
        PICTURE_FLAGS, lambda args: args.html is None, "pictures and animations; a --html page takes --every, --title"
    ),
    FlagScope(("--title",), _making("html"), "--html pages"),
    FlagScope(("--fps", "--frames"), _making("gif", "mp4"), "animations (--gif, --mp4)"),
    FlagScope(("--every",), _making("gif", "mp4", "html"), "animations and pages; --png-grid takes --steps-shown"),
    FlagScope(("--steps-shown",), _making("png_grid"), "--png-grid"),
    FlagScope(
        ("--scale",),
        lambda args: not (args.for_slides or args.aspect),
        "a free layout's zoom (--for-slides and --aspect size each frame to the slide)",
    ),
)


def run_html(args: argparse.Namespace) -> int:
    """`export RUN.npz [RUN2.npz ...] --html OUT.html`."""
    from diffusion_stepper.core.exports.html_page import (
        PAGE_FRAME_LIMIT,
        PageOptions,
        html_page_items,
        kept_frame_count,
        suggested_every,
    )
    from diffusion_stepper.core.formats.trajectory_file import load_trajectory
    from diffusion_stepper.core.run_names import default_run_name

    check_output_file(args.html, "--html", inputs=args.trajectory)
    trajectories = [load_trajectory(path) for path in args.trajectory]
    names = [default_run_name(trajectory.run_meta) for trajectory in trajectories]
    if len(set(names)) < len(names):  # two runs with the same settings: their files tell them apart
        names = [f"{name} ({Path(path).stem})" for name, path in zip(names, args.trajectory)]
    longest = max(len(trajectory) for trajectory in trajectories)
    every = args.every or 1
    options = PageOptions(every=every, title=args.title)
    try:
        items = html_page_items(list(zip(names, trajectories)), args.html, options)  # checks, before the bar
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    if args.every is None and longest > PAGE_FRAME_LIMIT:  # said once the page is known to fit: a refusal is one line
        k = suggested_every(longest)
        print(
            f"note: {longest} frames make a large page that is slow to open; --every {k} keeps "
            f"{kept_frame_count(longest, k)} of them (the last too)",
            file=sys.stderr,
        )
    total = sum(kept_frame_count(len(trajectory), every) for trajectory in trajectories)
    with progress(total, "building the page", unit="frame") as bar:
        for done, _ in items:
            bar.n = done
            bar.refresh()
    size = Path(args.html).stat().st_size
    print(f"wrote {args.html} ({size / 1e6:.1f} MB, {len(trajectories)} run{'s' if len(trajectories) > 1 else ''})")
    return 0


def flag_scopes(args: argparse.Namespace) -> tuple[FlagScope, ...]:
    return FLAG_SCOPES


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.deepfloyd_if.anagrams import anagram_turn
    from diffusion_stepper.core.exports.animation import write_animation
    from diffusion_stepper.core.exports.render import SIDE_BY_SIDE, panel_names, write_png_grid
    from diffusion_stepper.core.formats.trajectory_file import load_trajectory

    if args.html is not None:
        return run_html(args)
    if len(args.trajectory) > 1:
        raise UserFacingError("one trajectory per GIF, MP4 or contact sheet; several runs share one --html page")
    args.trajectory = args.trajectory[0]
    args.panel = args.panel or SIDE_BY_SIDE
    args.fps, args.every, args.scale = args.fps or 10.0, args.every or 1, args.scale or 4
    flag, out = next(
        (f"--{name.replace('_', '-')}", getattr(args, name))
        for name in ("gif", "mp4", "png_grid")
        if getattr(args, name) is not None
    )
    check_output_file(out, flag, inputs=[args.trajectory])
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
