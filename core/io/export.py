"""Render trajectories to pictures: panels, labelled frames, GIFs and PNG contact sheets.

Qt-free (Pillow only), so the CLI and the GUI export the same pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.diffusion.equations import time_text
from diffusion_stepper.core.diffusion.labels import field_title
from diffusion_stepper.core.diffusion.theory import algorithm_family
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import IMAGE_FIELDS, NOISE_FIELDS, Frame, Trajectory
from diffusion_stepper.core.io.layout import GRID_PADDING, best_grid, screen_scale
from diffusion_stepper.core.limits import EXPORT_SIDE, check_memory
from diffusion_stepper.core.parsing import format_int_list, shorten
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, render_particles, view_title
from diffusion_stepper.core.toy2d.runs import is_toy2d

NOISE_DISPLAY_RANGE = (-3.0, 3.0)  # eps ~ N(0, 1) and v = x1 - x0 fit here but for rare tails
GAP_DISPLAY_RANGE = (0.0, 0.5)  # |ε_c − ε_u|: black where the condition changes nothing (MNIST's peak ≈ 0.5)
# The extra images algorithms attach to frames (core.diffusion.sampling, core.deepfloyd_if.sampling), by name.
EXTRA_TITLES = {
    "eps_cond": "ε_c conditional",
    "eps_uncond": "ε_u unconditional",
    "v_cond": "v_c conditional",
    "v_uncond": "v_u unconditional",
    "eps_gap": "|ε_c − ε_u|: where the class acts",
    "v_gap": "|v_c − v_u|: where the class acts",
    "eps_low": "lowpass part (prompt 1)",
    "eps_high": "highpass part (prompt 2)",
    "x0": "original",
    "mask": "mask (white: new)",
    "low_res": "stage I input, upscaled",
    "blurred": "Gaussian blur",
    "noise": "the noise added",
    "eps_view1": "view 1 ε̂",
    "eps_view2": "view 2 ε̂",
    "eps_view3": "view 3 ε̂",
    "eps_view4": "view 4 ε̂",
    "x0_view1": "view 1 x̂₀",
    "x0_view2": "view 2 x̂₀",
    "x0_view3": "view 3 x̂₀",
    "x0_view4": "view 4 x̂₀",
    "x0_afar": "x̂₀ from afar (shrunk 4×)",
    "eps_hat_2": "ε̂′ at Euler's guess (Heun's second evaluation)",
    "eps_2": "ε′ from the clipped x̂₀ at Euler's guess (Heun)",
    "v_hat_2": "v̂′ at Euler's guess (Heun's second evaluation)",
    "v_mid": "v̂_mid at the midpoint (second evaluation)",
    "noise_std": "σ per pixel (learned variance)",
}
SIDE_BY_SIDE = "side-by-side"
PANEL_CHOICES = ("x_t", "x0_hat", "eps_hat", "v_hat", SIDE_BY_SIDE)

BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (235, 235, 235)
# How exported frames are laid out: side by side (a row), stacked (a column), or whichever shows
# the images larger in the frame ("auto", for a fixed frame such as a slide).
ARRANGEMENTS = ("side-by-side", "stacked", "auto")
ASPECTS = {"16:9": (16, 9), "4:3": (4, 3), "1:1": (1, 1)}  # slide shapes, 1080 px tall unless a width is given
SLIDE_HEIGHT = 1080
CAPTION_SHARE = 0.032  # a caption's text is at least this share of the frame's height (3% asked)
GAP = 6  # pixels between panels


def field_caption(meta: dict, name: str, ascii: bool = True) -> str:
    """A panel's title in an export: the field's name for this run, or the extra's. ASCII for
    pictures (the export font lacks x̂'s combining hat); a web page can have the real symbols."""
    return field_title(meta, name, ascii=ascii) or EXTRA_TITLES.get(name, name)


def display_range(name: str, value_range: tuple[float, float]) -> tuple[float, float]:
    """The value range a panel maps to black..white: noise fields are centred on zero."""
    if name.endswith("_gap"):
        return GAP_DISPLAY_RANGE
    if name in NOISE_FIELDS or name == "noise" or name.startswith(("eps", "v_")):
        return NOISE_DISPLAY_RANGE
    if name == "mask":  # 0 and 1, whatever the images' range
        return (0.0, 1.0)
    if name == "noise_std":  # a step's σ: up to 1 on IF's cosine schedule at its strided first steps
        return (0.0, 1.0)
    return value_range


def to_uint8(images: torch.Tensor, low: float, high: float) -> np.ndarray:
    """[N, C, H, W] floats -> [N, H, W, 3] uint8, clipping to [low, high]."""
    scaled = ((images.float() - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    array = scaled.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array[..., :3]


def grid_columns(num_images: int, labels: torch.Tensor | None = None) -> int:
    """One column per class for class-conditioned runs, else a near-square grid."""
    if labels is not None and len(labels) == num_images:
        return max(1, min(num_images, len(torch.unique(labels))))
    return max(1, math.ceil(math.sqrt(num_images)))


def tile(images: np.ndarray, columns: int, padding: int = GRID_PADDING) -> np.ndarray:
    """[N, H, W, 3] -> one [rows*(H+p)+p, cols*(W+p)+p, 3] grid on the background colour."""
    count, height, width, _ = images.shape
    rows = math.ceil(count / columns)
    canvas = np.empty((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), np.uint8)
    canvas[...] = BACKGROUND
    for i in range(count):
        row, column = divmod(i, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = images[i]
    return canvas


def text_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


CAPTION_MARGIN = 8  # pixels beside a caption's text, 4 on each side


def _caption(image: Image.Image, text: str, font: ImageFont.ImageFont) -> Image.Image:
    """`image` with a line of text above it, widened when the text is wider than the image
    (a small image's step label would otherwise be cut off)."""
    strip = getattr(font, "size", 12) + 8  # the bitmap fallback font has no size: about 12 px
    text_width = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font))
    width = max(image.width, text_width + CAPTION_MARGIN)
    out = Image.new("RGB", (width, image.height + strip), BACKGROUND)
    out.paste(image, (0, strip))
    ImageDraw.Draw(out).text((4, 3), text, fill=TEXT_COLOUR, font=font)
    return out


def hstack(images: Sequence[Image.Image], gap: int = GAP) -> Image.Image:
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    height = max(image.height for image in images)
    out = Image.new("RGB", (width, height), BACKGROUND)
    left = 0
    for image in images:
        out.paste(image, (left, 0))
        left += image.width + gap
    return out


def vstack(images: Sequence[Image.Image], gap: int = GAP) -> Image.Image:
    width = max(image.width for image in images)
    height = sum(image.height for image in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (width, height), BACKGROUND)
    top = 0
    for image in images:
        out.paste(image, (0, top))
        top += image.height + gap
    return out


def panel_names(trajectory: Trajectory, panel: str | Sequence[str]) -> list[str]:
    """The image fields a panel choice shows, left to right.

    `panel` is one choice ("x_t", "side-by-side", an extra's name), a comma-separated list of them
    ("x_t,eps_hat"), or a sequence. "eps_hat" and "v_hat" both mean the run's noise field.
    """
    choices = panel.split(",") if isinstance(panel, str) else list(panel)
    names: list[str] = []
    for choice in (choice.strip() for choice in choices):
        for name in _one_panel(trajectory, choice):
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("choose at least one panel to export")
    return names


def _one_panel(trajectory: Trajectory, panel: str) -> list[str]:
    noise = trajectory.noise_field
    if panel == SIDE_BY_SIDE:
        return ["x_t", "x0_hat"] + ([noise] if noise else [])
    if panel in NOISE_FIELDS:
        if noise is None:
            raise ValueError("this trajectory has no noise estimate to show")
        return [noise]
    if panel in ("x_t", "x0_hat") or panel in trajectory.extra_names():
        return [panel]
    raise ValueError(
        f"unknown panel {panel!r}; choose from {', '.join(PANEL_CHOICES + tuple(trajectory.extra_names()))}"
    )


def step_label(trajectory: Trajectory, frame: Frame) -> str:
    return f"step {frame.index}/{len(trajectory) - 1}   t = {time_text(algorithm_family(trajectory.meta), frame.t)}"


@dataclass(frozen=True)
class ExportLayout:
    """How each exported frame is laid out: at `scale` screen pixels per image pixel, or fitted to
    a frame of `size` pixels (a slide), the panels arranged as `arrangement` says."""

    arrangement: str = "side-by-side"
    scale: int = 4
    size: tuple[int, int] | None = None  # (width, height)
    particle_view: ParticleViewOptions | None = None  # what a 2D run's picture shows (default: the defaults)

    @classmethod
    def for_aspect(cls, aspect: str, width: int | None = None, arrangement: str = "auto") -> ExportLayout:
        """A frame of that aspect ratio, 1080 px tall, or `width` px wide."""
        if aspect not in ASPECTS:
            raise ValueError(f"unknown aspect {aspect!r}; choose from {', '.join(ASPECTS)}")
        across, down = ASPECTS[aspect]
        if width is None:
            width = round(SLIDE_HEIGHT * across / down)
        height = round(width * down / across)
        if min(width, height) < 64:
            raise ValueError(f"a {width} px wide {aspect} frame is too small to show anything")
        return cls(arrangement, size=(width + width % 2, height + height % 2))  # even sizes, as H.264 wants


SLIDES = ExportLayout.for_aspect("16:9")  # the "for slides" preset: 1920x1080, the panels as large as they fit


def shown_images(trajectory: Trajectory, frame: Frame, name: str) -> torch.Tensor:
    """The images a panel shows for `frame`. The final frame has no estimate of its own (its noise
    estimate is zero): its noise panels and the extras it lacks show the last step's, so that the
    last picture of an export is the result beside the estimate that made it."""
    source = frame
    lacks_estimate = name in NOISE_FIELDS or (name not in IMAGE_FIELDS and name not in frame.extras)
    if frame.coeffs.get("final") and 0 < frame.index < len(trajectory) and lacks_estimate:
        source = trajectory[frame.index - 1]
    try:
        return source.image(name)
    except KeyError:  # an extra no frame around carries: blank
        return torch.zeros_like(frame.x_t)


def caption_size(content_height: float, caption_rows: int) -> int:
    """The caption font's pixel size for a frame whose pictures are `content_height` tall and that has
    `caption_rows` lines of caption: at least CAPTION_SHARE of the whole frame's height."""
    strips = caption_rows * 8  # each caption line adds 8 px of margin to its text
    share = CAPTION_SHARE * caption_rows
    return max(12, math.ceil(CAPTION_SHARE * (content_height + strips) / (1 - share)))


def _fit_text(text: str, font: ImageFont.ImageFont, width: float) -> str:
    """`text`, cut with an ellipsis where its caption (the text and its margins) would be wider
    than `width` pixels."""
    width -= CAPTION_MARGIN
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    if measure(text, font=font) <= width:
        return text
    while text and measure(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def shown_tiles(trajectory: Trajectory, frame: Frame, name: str) -> np.ndarray:
    """A panel's images of `frame` as [N, H, W, 3] uint8, mapped from the panel's display range."""
    low, high = display_range(name, trajectory.value_range)
    return to_uint8(shown_images(trajectory, frame, name), low, high)


def _arrangement_fits(tiles: list[np.ndarray], labels, box: tuple[float, float], stacked: bool, title_px: int):
    """The grids (columns per panel) and the one scale that fit these panels into `box` when
    arranged this way, with a title line above each panel."""
    count = len(tiles)
    width, height = box
    if stacked:
        panel_box = (width, (height - GAP * (count - 1)) / count - (title_px + 8))
    else:
        panel_box = ((width - GAP * (count - 1)) / count, height - (title_px + 8))
    fits = [best_grid(t.shape[0], t.shape[1], t.shape[2], *panel_box, labels) for t in tiles]
    return fits, min(fit.scale for fit in fits)


def render_frame(
    trajectory: Trajectory, frame: Frame, names: Sequence[str], scale: int = 4, layout: ExportLayout | None = None
) -> Image.Image:
    """The chosen panels of one frame, each batch in the grid that shows it largest, titled, with the
    step and t written above. `layout` (default: side by side at `scale`) may fit it to a slide."""
    layout = layout or ExportLayout(scale=scale)
    if is_toy2d(trajectory.meta):
        return _particle_picture(trajectory, frame, layout)
    if layout.arrangement not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {layout.arrangement!r}; choose from {', '.join(ARRANGEMENTS)}")
    tiles = [shown_tiles(trajectory, frame, name) for name in names]
    titles = [field_caption(trajectory.meta, name) for name in names]
    step_text = step_label(trajectory, frame)
    # the box the grids are chosen for: the slide, or a 16:9 one when the size follows the scale
    box_width, box_height = layout.size or (1920, 1080)
    font_px = caption_size(box_height, 2) if layout.size else 0
    options = [False, True] if layout.arrangement == "auto" else [layout.arrangement == "stacked"]
    candidates = []
    for stacked in options:
        title_px = font_px or 12
        rows = len(names) + 1 if stacked else 2
        box = (box_width - 2 * GAP, box_height - (title_px + 8) - 2 * GAP)
        fits, fitted_scale = _arrangement_fits(tiles, trajectory.labels, box, stacked, title_px)
        candidates.append((fitted_scale, stacked, fits, rows))
    fitted_scale, stacked, fits, rows = max(candidates, key=lambda candidate: candidate[0])
    shown_scale = screen_scale(fitted_scale) if layout.size else float(layout.scale)
    pictures = []
    for panel_tiles, fit in zip(tiles, fits):
        grid = tile(panel_tiles, fit.columns)
        size = (max(1, round(grid.shape[1] * shown_scale)), max(1, round(grid.shape[0] * shown_scale)))
        pictures.append(Image.fromarray(grid).resize(size, Image.NEAREST))
    if not font_px:  # free size: the captions grow with the pictures
        content = (
            sum(p.height for p in pictures) + GAP * (len(pictures) - 1) if stacked else max(p.height for p in pictures)
        )
        font_px = caption_size(content, rows)
    font = text_font(font_px)
    if layout.size:  # a slide's titles must not widen their panels past the frame
        titles = [_fit_text(title, font, max(picture.width, 40)) for picture, title in zip(pictures, titles)]
    panels = [_caption(picture, title, font) for picture, title in zip(pictures, titles)]
    body = vstack(panels, GAP) if stacked else hstack(panels, GAP)
    if layout.size is None:
        picture = _caption(body, step_text, font)
    else:  # the slide: centred on a frame of exactly that size
        width, height = layout.size
        picture = Image.new("RGB", layout.size, BACKGROUND)
        strip = font_px + 8
        body = body.crop((0, 0, min(body.width, width), min(body.height, height - strip)))
        picture.paste(body, ((width - body.width) // 2, strip + (height - strip - body.height) // 2))
        ImageDraw.Draw(picture).text(
            (GAP, 3), _fit_text(step_text, font, layout.size[0] - 2 * GAP), fill=TEXT_COLOUR, font=font
        )
    picture.info.update(caption_px=font_px, scale=shown_scale)
    return picture


PARTICLE_VIEW_PER_SCALE = 180  # a 2D run's picture is this many pixels a side per unit of --scale (4: 720)


def _particle_picture(trajectory: Trajectory, frame: Frame, layout: ExportLayout) -> Image.Image:
    """A 2D run's frame: the particle view, the step and what the picture shows written above."""
    options = layout.particle_view or ParticleViewOptions()
    if layout.size:
        width, height = layout.size
        font_px = caption_size(height, 2)
        side = max(64, min(width - 2 * GAP, height - 2 * (font_px + 8) - GAP))
    else:
        side = PARTICLE_VIEW_PER_SCALE * layout.scale
        font_px = caption_size(side, 2)
    options = replace(options, size=side)
    font = text_font(font_px)
    plot = Image.fromarray(render_particles(trajectory, frame.index, options))
    text_width = layout.size[0] - 2 * GAP if layout.size else side
    titled = _caption(plot, _fit_text(view_title(trajectory, options), font, text_width), font)
    titled = _caption(titled, _fit_text(step_label(trajectory, frame), font, text_width), font)
    if layout.size is None:
        return titled
    picture = Image.new("RGB", layout.size, BACKGROUND)
    picture.paste(titled, ((layout.size[0] - titled.width) // 2, (layout.size[1] - titled.height) // 2))
    return picture


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


def anagram_turn(trajectory: Trajectory, num_frames: int = 24) -> Trajectory:
    """A visual anagram's result turning into its second view, as a trajectory of its own
    (x_t: the turning image), to export like any run: the illusion's reveal for a slide."""
    from diffusion_stepper.core.deepfloyd_if.sampling import view_turn

    views = trajectory.meta.get("params", {}).get("views") or []
    if len(views) < 2:
        raise ValueError("the anagram turn is for visual anagram runs (task anagram), which record their views")
    turning = view_turn(trajectory.final_sample, views[1], num_frames)
    frames = [
        Frame(index=i, t=float(i), x_t=image, x0_hat=image, coeffs={"t": float(i)}) for i, image in enumerate(turning)
    ]
    meta = {
        **trajectory.meta,
        "algorithm": "anagram-turn",
        "params": {**trajectory.meta["params"], "turn_to": views[1]},
    }
    return Trajectory(meta, frames, trajectory.labels, trajectory.data)


def check_export_fits(
    trajectory: Trajectory, names: Sequence[str], num_frames: int, scale: int, layout: ExportLayout | None
) -> None:
    """Refuse, before rendering, frames larger than EXPORT_SIDE on a side or more frames than fit in
    memory; the size at `scale` is measured from the first frame rendered at scale 1."""
    layout = layout or ExportLayout(scale=scale)
    if layout.size:
        width, height = layout.size
    else:
        probe = render_frame(trajectory, trajectory[0], names, 1, replace(layout, scale=1))
        width, height = probe.width * layout.scale, probe.height * layout.scale
    if max(width, height) > EXPORT_SIDE[1]:
        raise ValueError(
            f"frames of {width:,} x {height:,} px are larger than {EXPORT_SIDE[1]:,} px on a side; "
            "use a smaller --scale, or --aspect / --for-slides"
        )
    check_memory(
        3 * width * height * num_frames,
        f"{num_frames:,} frames of {width:,} x {height:,} px",
        "export fewer frames (--every) or smaller ones",
    )


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


write_gif = write_animation  # the name the Foundation's callers know


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


def default_steps_shown(num_frames: int, count: int = 8) -> list[int]:
    if num_frames <= count:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (count - 1)) for i in range(count)})


def write_png_grid(
    trajectory: Trajectory,
    path: str | os.PathLike,
    steps_shown: Sequence[int] | None = None,
    panel: str | Sequence[str] = SIDE_BY_SIDE,
    scale: int = 2,
    layout: ExportLayout | None = None,
) -> Path:
    """A contact sheet: one row per chosen step, each row the chosen panels with its label."""
    steps_shown = list(steps_shown) if steps_shown else default_steps_shown(len(trajectory))
    bad = [s for s in steps_shown if not 0 <= s < len(trajectory)]
    if bad:
        raise ValueError(f"steps {shorten(format_int_list(sorted(set(bad))))} are outside 0-{len(trajectory) - 1}")
    names = panel_names(trajectory, panel)
    check_export_fits(trajectory, names, len(steps_shown), scale, layout)
    sheet = vstack([render_frame(trajectory, trajectory[s], names, scale, layout) for s in steps_shown])
    target = Path(path)
    with atomic_path(target) as temporary:
        sheet.save(temporary, format="PNG")
    return target


def write_sample_grid(
    images: torch.Tensor, path: str | os.PathLike, labels: torch.Tensor | None = None, value_range=(0.0, 1.0)
) -> Path:
    """A plain PNG grid of samples (one column per class when labelled), at their native size."""
    grid = tile(to_uint8(images, *value_range), grid_columns(images.shape[0], labels))
    target = Path(path)
    with atomic_path(target) as temporary:
        Image.fromarray(grid).save(temporary, format="PNG")
    return target
