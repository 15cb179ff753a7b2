"""A frame of a run as one picture for a slide: its panels side by side or stacked, captioned,
sized to a slide's shape (`ExportLayout`); a 2D run's frame as its particle view; and the PNG
contact sheet of chosen steps. The animations (core.exports.animation) are made of these.

How a run is pictured depends on what its frames hold, images or a 2D run's particles: every
export asks `run_pictures` (at the end), the one place that tells the two apart."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.diffusion.equations import time_text
from diffusion_stepper.core.diffusion.labels import field_caption
from diffusion_stepper.core.formats.layout import best_grid, class_columns, screen_scale
from diffusion_stepper.core.formats.pictures import BACKGROUND, TEXT_COLOUR, shown_tiles, text_font, tile
from diffusion_stepper.core.frames import NOISE_FIELDS, Frame, Trajectory
from diffusion_stepper.core.limits import EXPORT_SIDE, check_memory
from diffusion_stepper.core.parsing import format_int_list, shorten
from diffusion_stepper.core.run_meta import IMAGES, PARTICLES
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, render_particles, view_title

SIDE_BY_SIDE = "side-by-side"

PANEL_CHOICES = ("x_t", "x0_hat", "eps_hat", "v_hat", SIDE_BY_SIDE)

# How exported frames are laid out: side by side (a row), stacked (a column), or whichever shows
# the images larger in the frame ("auto", for a fixed frame such as a slide).
ARRANGEMENTS = ("side-by-side", "stacked", "auto")

ASPECTS = {"16:9": (16, 9), "4:3": (4, 3), "1:1": (1, 1)}  # slide shapes, 1080 px tall unless a width is given

SLIDE_HEIGHT = 1080

CAPTION_SHARE = 0.032  # a caption's text is at least this share of the frame's height (3% asked)

GAP = 6  # pixels between panels

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
    return f"step {frame.index}/{len(trajectory) - 1}   t = {time_text(trajectory.run_meta.family, frame.t)}"


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
    step and t written above (a 2D run: its particle view). `layout` (default: side by side at
    `scale`) may fit it to a slide."""
    layout = layout or ExportLayout(scale=scale)
    return run_pictures(trajectory, layout.particle_view).slide(frame, names, layout)


def _image_slide(trajectory: Trajectory, frame: Frame, names: Sequence[str], layout: ExportLayout) -> Image.Image:
    if layout.arrangement not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {layout.arrangement!r}; choose from {', '.join(ARRANGEMENTS)}")
    tiles = [shown_tiles(trajectory, frame, name) for name in names]
    titles = [field_caption(trajectory.run_meta, name) for name in names]
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


def _particle_slide(
    trajectory: Trajectory, frame: Frame, options: ParticleViewOptions, layout: ExportLayout
) -> Image.Image:
    """A 2D run's frame: the particle view, the step and what the picture shows written above."""
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


# --- what a run's pictures are made of --------------------------------------------------------------


class ImagePictures:
    """An image run's pictures: each field shown (x_t, x̂₀, the noise estimate, an extra) is the
    batch of images, tiled in a grid."""

    kind = IMAGES
    store_differences = True  # a picture may be stored as its difference from a like one (the page)

    def __init__(self, trajectory: Trajectory):
        self.trajectory = trajectory

    def panels(self) -> list[str]:
        """Every panel the run has: the main fields side by side, then its extras."""
        main = panel_names(self.trajectory, SIDE_BY_SIDE)
        return main + [name for name in self.trajectory.extra_names() if name not in main]

    def tiles(self, name: str, index: int) -> np.ndarray:
        """Panel `name` of frame `index`: [N, h, w, 3] uint8, one tile per image of the batch."""
        return shown_tiles(self.trajectory, self.trajectory[index], name)

    def title(self, name: str, ascii: bool = True) -> str:
        return field_caption(self.trajectory.run_meta, name, ascii=ascii)

    def tile_shape(self) -> tuple[int, int, int]:
        """(images per panel, height, width) of a panel's tiles."""
        first = self.trajectory[0].x_t
        return (first.shape[0], *first.shape[2:])

    def fixed_columns(self) -> int | None:
        """The grid's columns where its classes fix them (one per class), else None."""
        return class_columns(self.trajectory.labels, self.tile_shape()[0])

    def frame_bytes(self) -> int:
        """The bytes of one frame's pictures, all its panels, as uint8 RGB tiles."""
        frame, total = self.trajectory[0], 0
        for name in self.panels():
            try:
                shape = tuple(frame.image(name).shape)
            except (KeyError, AttributeError):  # an extra the first frame lacks: the size of x_t
                shape = tuple(frame.x_t.shape)
            total += 3 * math.prod(shape[:1] + shape[2:])  # N images of H × W, three channels each
        return total

    def slide(self, frame: Frame, names: Sequence[str], layout: ExportLayout) -> Image.Image:
        return _image_slide(self.trajectory, frame, names, layout)


class ParticlePictures:
    """A 2D run's pictures: one panel, the particle view (core.toy2d.render) drawn with
    `particle_view`'s choices; the fields are arrows in it, not panels of their own."""

    kind = PARTICLES
    store_differences = False  # a few colours, which a palette PNG holds best; differences do not keep

    def __init__(self, trajectory: Trajectory, particle_view: ParticleViewOptions | None = None):
        self.trajectory = trajectory
        self.view = particle_view or ParticleViewOptions()

    def panels(self) -> list[str]:
        return [PARTICLES]

    @cached_property
    def paths(self) -> np.ndarray:
        """Every frame's particles [F, N, 2], gathered once for the paths drawn at each frame."""
        return np.stack([frame.x_t.reshape(-1, 2).numpy() for frame in self.trajectory.frames])

    def tiles(self, name: str, index: int) -> np.ndarray:
        """Frame `index`'s particle view as one tile: [1, size, size, 3] uint8."""
        return render_particles(self.trajectory, index, self.view, self.paths)[None]

    def title(self, name: str, ascii: bool = True) -> str:
        return view_title(self.trajectory, self.view)

    def tile_shape(self) -> tuple[int, int, int]:
        return (1, self.view.size, self.view.size)

    def fixed_columns(self) -> int | None:
        return None

    def frame_bytes(self) -> int:
        return 3 * self.view.size**2

    def slide(self, frame: Frame, names: Sequence[str], layout: ExportLayout) -> Image.Image:
        return _particle_slide(self.trajectory, frame, self.view, layout)


def run_pictures(
    trajectory: Trajectory, particle_view: ParticleViewOptions | None = None
) -> ImagePictures | ParticlePictures:
    """How the exports picture this run (slides, animations, the page): the one place they ask
    whether it is a 2D run. `particle_view`: what a 2D run's pictures show (default: the defaults)."""
    if trajectory.run_meta.kind == PARTICLES:
        return ParticlePictures(trajectory, particle_view)
    return ImagePictures(trajectory)
