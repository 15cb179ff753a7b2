"""A run as an animation (GIF or MP4), one rendered picture per chosen frame: which frames,
whether the export fits in memory, and the writers."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

from PIL import Image

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.render import (
    SIDE_BY_SIDE,
    ExportLayout,
    check_export_fits,
    panel_names,
    render_frame,
)
from diffusion_stepper.core.formats.pictures import BACKGROUND
from diffusion_stepper.core.frames import Trajectory


def select_frames(num_frames: int, every: int = 1, start: int = 0, end: int | None = None) -> list[int]:
    """Every `every`-th frame of [start, end], always ending on the range's last frame."""
    end = num_frames - 1 if end is None else end
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    if not 0 <= start <= end < num_frames:
        raise ValueError(f"frame range {start}:{end} is outside 0:{num_frames - 1}")
    chosen = list(range(start, end + 1, every))
    if chosen[-1] != end:
        chosen.append(end)
    return chosen


ANIMATION_FORMATS = ("gif", "mp4")


def animation_format(path: str | os.PathLike) -> str:
    """ "gif" or "mp4", from the file name's suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ANIMATION_FORMATS:
        raise ValueError(f"cannot export an animation to {Path(path).name!r}: name it .gif or .mp4")
    return suffix


def export_animation(
    trajectory: Trajectory,
    path: str | os.PathLike,
    panel: str | Sequence[str] = SIDE_BY_SIDE,
    fps: float = 10.0,
    every: int = 1,
    scale: int = 4,
    start: int = 0,
    end: int | None = None,
    hold_last_seconds: float = 1.0,
    layout: ExportLayout | None = None,
) -> Iterator[tuple[int, int]]:
    """Render frames, then write a GIF or MP4 (by `path`'s suffix); yields (frames rendered, total).

    A generator, so that the CLI's progress bar and the GUI's cancel button share one loop: a
    caller that stops iterating early leaves nothing on disk, and the file appears only complete.
    Both formats loop or play in a browser; the last frame is held `hold_last_seconds`. `layout`
    (default: side by side at `scale`) may fit every frame to a slide.
    """
    kind = animation_format(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    names = panel_names(trajectory, panel)
    indices = select_frames(len(trajectory), every, start, end)
    check_export_fits(trajectory, names, len(indices), scale, layout)
    pictures = []
    for done, index in enumerate(indices, start=1):
        pictures.append(render_frame(trajectory, trajectory[index], names, scale, layout))
        yield done, len(indices)
    with atomic_path(Path(path)) as temporary:
        if kind == "gif":
            _save_gif(pictures, temporary, fps, hold_last_seconds)
        else:
            _save_mp4(pictures, temporary, fps, hold_last_seconds)


def write_animation(
    trajectory: Trajectory,
    path: str | os.PathLike,
    panel: str | Sequence[str] = SIDE_BY_SIDE,
    fps: float = 10.0,
    every: int = 1,
    scale: int = 4,
    start: int = 0,
    end: int | None = None,
    hold_last_seconds: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    layout: ExportLayout | None = None,
) -> Path:
    """`export_animation` run to the end; `progress(done, total)` is called after each frame."""
    frames = export_animation(trajectory, path, panel, fps, every, scale, start, end, hold_last_seconds, layout)
    for done, total in frames:
        if progress is not None:
            progress(done, total)
    return Path(path)


def _save_gif(pictures: Sequence[Image.Image], path: Path, fps: float, hold_last_seconds: float) -> None:
    frame_ms = max(20, int(round(1000 / fps)))  # browsers treat shorter GIF delays as 100 ms
    durations = [frame_ms] * len(pictures)
    durations[-1] = max(frame_ms, int(hold_last_seconds * 1000))
    pictures[0].save(
        path, format="GIF", save_all=True, append_images=list(pictures[1:]), duration=durations, loop=0, disposal=1
    )


def _save_mp4(pictures: Sequence[Image.Image], path: Path, fps: float, hold_last_seconds: float) -> None:
    """H.264 in yuv420p, the one MP4 flavour every browser plays; sizes are padded to even numbers."""
    try:
        # Deferred: PyAV is needed only for MP4.
        import av
    except ImportError:
        raise UserFacingError("MP4 export needs PyAV: pip install av (or export a .gif)") from None
    width = max(picture.width for picture in pictures)
    height = max(picture.height for picture in pictures)
    width, height = width + width % 2, height + height % 2
    rate = Fraction(fps).limit_denominator(1000)
    hold_frames = max(0, math.ceil(hold_last_seconds * fps) - 1)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}  # sharp edges on upscaled pixels; files stay small
        for picture in list(pictures) + [pictures[-1]] * hold_frames:
            canvas = Image.new("RGB", (width, height), BACKGROUND)
            canvas.paste(picture, (0, 0))
            for packet in stream.encode(av.VideoFrame.from_image(canvas)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
