"""A run students can take home: one self-contained interactive HTML page.

The page holds everything in one file, so it opens from disk with no server and no network: the
CSS and JavaScript inline (resources/page/), the run's numbers as JSON, and every image as a PNG
data URI. It shows what the Step view shows: the panels of each frame at a crisp nearest-neighbour
zoom, the update equation with the step's numbers, the pixel histograms against theory, the
schedule with a cursor and the run's settings; several runs share one slider, aligned as the
Compare view aligns them (normalized time, or model evaluations).

Everything the page shows is computed here, by the same core functions the app calls (equations,
theory, the session's timeline); the JavaScript only draws it.

Size: each panel of each frame is one PNG, the N images of the batch side by side, maybe stored
as its difference from a like picture (core.exports.page_pictures). The pictures of a 2D run are
the particle view (core.exports.render.run_pictures says which a run has). A theory curve that
repeats (N(0, 1) at every step) is stored once.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.diffusion.labels import guidance_gap_curve, guidance_gap_label, sampler_label
from diffusion_stepper.core.diffusion.sampler_race import x0_convergence
from diffusion_stepper.core.diffusion.theory import (
    HISTOGRAM_EDGES,
    Curve,
    frame_histograms,
    no_schedule_reason,
    schedule_curves,
)
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.animation import select_frames
from diffusion_stepper.core.exports.page_pictures import batch_strip, encode_pictures
from diffusion_stepper.core.exports.render import ImagePictures, ParticlePictures, run_pictures
from diffusion_stepper.core.formats.palette import page_palette
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.limits import check_memory, format_bytes
from diffusion_stepper.core.paths import resources_dir
from diffusion_stepper.core.run_meta import PARTICLES, RunMeta
from diffusion_stepper.core.run_names import run_differences
from diffusion_stepper.core.timeline import ALIGN_NFE, ALIGN_TIME, Track, frame_index, timeline_length
from diffusion_stepper.core.toy2d.render import ParticleViewOptions

# Beyond this many frames a page grows large and slow to build: the CLI and the app offer to keep
# every k-th frame (suggested_every).
PAGE_FRAME_LIMIT = 101
PARTICLE_PICTURE_SIZE = 480  # the 2D view's pixels in a page: sharp at a laptop's full height
PAGE_CURVE_POINTS = 101  # theory and schedule curves are thinned to this many points
# A page's pictures are held as they are built (uint8 strips), then as PNG data URIs in the page's
# text, which is copied a few times on its way to the file: about this many times the strips' bytes
PAGE_MEMORY_FACTOR = 4
PAGE_PICTURE_BYTES = 2_000_000_000  # strips beyond this make a page no browser opens: refused at any memory
TEMPLATE_FILES = ("page.html", "page.css", "page.js")


@dataclass
class PageOptions:
    every: int = 1  # keep every k-th frame (and the last)
    particle_view: ParticleViewOptions | None = None  # what a 2D run's pictures show (default: the app's)
    title: str | None = None


def suggested_every(num_frames: int, limit: int = PAGE_FRAME_LIMIT) -> int:
    """The smallest k that keeps a run of `num_frames` frames within `limit` frames (1 if it fits)."""
    return max(1, math.ceil((num_frames - 1) / max(1, limit - 1)))


def kept_frame_count(num_frames: int, every: int) -> int:
    return len(select_frames(num_frames, every))


# --- the run's numbers ------------------------------------------------------------------------------


def _rounded(values, digits: int = 4) -> list[float]:
    """Four significant digits: plenty for a plot, and a quarter of the JSON."""
    return [float(f"{value:.{digits}g}") for value in np.asarray(values, dtype=np.float64).ravel()]


def _curve(curve: Curve | None) -> dict | None:
    if curve is None:
        return None
    step = max(1, math.ceil(len(curve.x) / PAGE_CURVE_POINTS))
    xs, ys = np.asarray(curve.x)[::step], np.asarray(curve.y)[::step]
    return {"label": curve.label, "x": _rounded(xs), "y": _rounded(ys)}


class _Curves:
    """A run's theory curves, each stored once: frames refer to them by their place in the list."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._places: dict[str, int] = {}

    def place(self, curve: Curve | None) -> int | None:
        record = _curve(curve)
        if record is None:
            return None
        key = json.dumps(record)
        if key not in self._places:
            self._places[key] = len(self.records)
            self.records.append(record)
        return self._places[key]


def _histograms(trajectory: Trajectory, index: int, curves: _Curves) -> dict:
    histograms = frame_histograms(trajectory, trajectory[index])
    return {
        "x_t": _rounded(histograms.x_t),
        "noise": None if histograms.noise is None else _rounded(histograms.noise),
        "noise_name": histograms.noise_name,
        "x_t_theory": curves.place(histograms.x_t_theory),
        "noise_theory": curves.place(histograms.noise_theory),
        "note": histograms.x_t_note,
    }


def _schedule(trajectory: Trajectory) -> dict:
    meta = trajectory.run_meta
    curves = schedule_curves(meta)
    if curves is None:
        return {"note": no_schedule_reason(meta)}
    record = {"x_label": curves.x_label, "reversed": curves.reversed_time, "curves": [_curve(c) for c in curves.curves]}
    gap = guidance_gap_curve(trajectory.frames)
    if gap is not None:  # when in the chain guidance acts, as the app's schedule plot shows it
        t, relative, peak = gap
        record["gap"] = {"label": f"mean {guidance_gap_label(meta)} ÷ {peak:.3g}", "x": t, "y": _rounded(relative)}
    return record


# Settings shown first, in this order: (label, the record's field, which is also its key in params)
_SETTINGS = (
    ("model", "model"),
    ("algorithm", "algorithm"),
    ("steps", "steps"),
    ("γ (guidance scale)", "guidance"),
    ("seed", "seed"),
    ("classes", "classes"),
    ("prompts", "prompts"),
    ("x̂₀ clip", "x0_clip"),
    ("epoch", "epoch"),
    ("start", "source"),
)
# Params too big or too nested to be a setting (schedules, architectures, the 2D lab's block)
_NOT_SETTINGS = {"objective", "architecture", "alpha_bars", "toy2d", "sampler", "eta", "timesteps"}


def _setting_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_text(item) for item in value)
    return str(value)


def run_settings(meta: RunMeta) -> list[tuple[str, str]]:
    """What a run was made with, as (label, value) rows: model, sampler, γ, seed, steps first, then
    any other simple setting the run recorded."""
    rows: list[tuple[str, str]] = []
    sampler = sampler_label(meta)
    for label, key in _SETTINGS:
        value = getattr(meta, key)
        if value not in (None, (), ""):  # not recorded, or recorded empty
            rows.append((label, _setting_text(value)))
        if key == "algorithm" and sampler:
            rows.append(("sampler", sampler))
    shown = {key for _, key in _SETTINGS} | _NOT_SETTINGS
    for key, value in meta.params.items():  # the rest, whatever the run recorded
        simple = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and len(value) <= 16 and all(isinstance(v, (str, int, float)) for v in value)
        )
        if key not in shown and simple:
            rows.append((key.replace("_", " "), _setting_text(value)))
    return rows


# --- one run --------------------------------------------------------------------------------------


@dataclass
class _RunPage:
    """One run's part of the page, built frame by frame."""

    name: str
    trajectory: Trajectory
    indices: list[int]  # the frames kept
    difference: str  # what sets it apart from the runs beside it ("DDIM η=0 · 10 steps"), or ""
    pictures: ImagePictures | ParticlePictures  # its panels' pictures: images, or a 2D run's particle view

    def numbers(self, index: int, curves: _Curves) -> dict:
        meta, frame = self.trajectory.run_meta, self.trajectory[index]
        return {
            "index": frame.index,
            "t": float(frame.t),
            "caption": frame_caption(meta, frame, len(self.trajectory)),
            "equation": step_equation(meta, frame, self.trajectory.frames),
            "histograms": _histograms(self.trajectory, index, curves),
        }


def _run_items(page: _RunPage) -> Iterator[tuple[int, dict | None]]:
    """Builds one run's JSON record; yields (frames done, None) as it goes, then (total, record)."""
    trajectory, pictures = page.trajectory, page.pictures
    names = pictures.panels()
    strips: list[list[np.ndarray]] = [[] for _ in names]
    frames, curves = [], _Curves()
    for done, index in enumerate(page.indices, start=1):
        for panel, name in enumerate(names):
            strips[panel].append(batch_strip(pictures.tiles(name, index)))
        frames.append(page.numbers(index, curves))
        yield done, None

    panels = [
        {
            "name": name,
            "title": pictures.title(name, ascii=False),
            "main": name in (PARTICLES, "x_t", "x0_hat", trajectory.noise_field),
            "frames": stored,
        }
        for name, stored in zip(names, encode_pictures(strips, differences=pictures.store_differences))
    ]
    count, height, width = pictures.tile_shape()
    curve = x0_convergence(Trajectory(trajectory.meta, [trajectory[i] for i in page.indices], trajectory.labels))
    yield (
        len(page.indices),
        {
            "name": page.name,
            "difference": page.difference,
            "settings": run_settings(trajectory.run_meta),
            "kind": pictures.kind,
            "count": count,
            "tile": [height, width],
            "fixed_columns": pictures.fixed_columns(),
            "length": len(trajectory),
            "panels": panels,
            "frames": frames,
            "curves": curves.records,
            "schedule": _schedule(trajectory),
            "convergence": {"nfe": curve.nfe, "distance": _rounded(curve.distance)},
        },
    )


# --- the shared slider ------------------------------------------------------------------------------


def _timelines(pages: list[_RunPage]) -> dict[str, list[list[int]]]:
    """For each alignment, the slider's positions: at each, the kept frame (its place in the page's
    list) that every run shows. The session's timeline arithmetic (core.timeline) decides, so the page lines runs up as
    the Compare view does; positions that would show the same frames are merged."""
    tracks = [Track(page.trajectory, len(page.trajectory)) for page in pages]
    alignments = (ALIGN_TIME, ALIGN_NFE) if len(pages) > 1 else (ALIGN_TIME,)
    timelines = {}
    for align in alignments:
        length = timeline_length(tracks, align)
        positions: list[list[int]] = []
        for position in range(length):
            shown = []
            for track, page in zip(tracks, pages):
                full = frame_index(track, position, length, align)
                shown.append(max(0, bisect.bisect_right(page.indices, full) - 1))  # the last kept frame reached
            if not positions or shown != positions[-1]:
                positions.append(shown)
        timelines[align] = positions
    return timelines


# --- the page ---------------------------------------------------------------------------------------


def _page_title(pages: list[_RunPage]) -> str:
    """The run's name; for compared runs, what tells them apart ("DDPM · 10 steps vs DDIM η=0 · 10 steps")."""
    if len(pages) == 1:
        return pages[0].name
    return f"{len(pages)} runs compared: " + " vs ".join(page.difference or page.name for page in pages)


def html_page_items(
    runs: Sequence[tuple[str, Trajectory]], path: str | os.PathLike, options: PageOptions | None = None
) -> Iterator[tuple[int, int]]:
    """The page of `runs` (name, trajectory), written to `path` as the returned iterator is run
    through; it yields (frames done, total). Bad requests raise ValueError here, before any work.

    An iterator, as core.exports.animation.export_animation is, so the CLI's progress bar and the app's
    Cancel share one loop: stopping early leaves nothing on disk.
    """
    pages, title, every = _prepared_pages(runs, options or PageOptions())
    return _build_page(pages, title, every, lambda text: _write_page(path, text))


def html_page_text(runs: Sequence[tuple[str, Trajectory]], options: PageOptions | None = None) -> str:
    """The page of `runs` as text, written nowhere: what a notebook shows inline."""
    pages, title, every = _prepared_pages(runs, options or PageOptions())
    texts: list[str] = []
    for _ in _build_page(pages, title, every, texts.append):
        pass
    return texts[0]


def _prepared_pages(runs: Sequence[tuple[str, Trajectory]], options: PageOptions) -> tuple[list[_RunPage], str, int]:
    """The runs' pages, checked to fit, with the page's title and frame step; bad requests raise here."""
    if not runs:
        raise ValueError("no run to put on the page")
    for name, trajectory in runs:
        if len(trajectory) == 0:
            raise ValueError(f"{name} has no frames yet")
    particle_view = replace(options.particle_view or ParticleViewOptions(), size=PARTICLE_PICTURE_SIZE)
    particle_view.check()
    differences = run_differences([trajectory.run_meta for _, trajectory in runs])
    pages = []
    for (name, trajectory), difference in zip(runs, differences):
        kept = select_frames(len(trajectory), options.every)
        pages.append(_RunPage(name, trajectory, kept, difference, run_pictures(trajectory, particle_view)))
    if len({page.pictures.kind for page in pages}) > 1:
        raise ValueError("a page compares 2D runs with 2D runs, image runs with image runs")
    check_page_fits(pages)
    return pages, options.title or _page_title(pages), options.every


def check_page_fits(pages: list[_RunPage]) -> None:
    """Refuse, before any picture is drawn, a page whose pictures would not fit in the memory free
    (or would make a page too large to open): a 2D run of 20,000 frames is 14 GB of pictures."""
    frames = sum(len(page.indices) for page in pages)
    pictures = sum(len(page.indices) * page.pictures.frame_bytes() for page in pages)
    advice = f"keep fewer frames with --every K (the Export dialog's 'every k-th frame'); {frames:,} are kept now"
    if pictures > PAGE_PICTURE_BYTES:
        raise UserFacingError(
            f"a page of {frames:,} frames would hold about {format_bytes(pictures)} of pictures, more than the "
            f"{format_bytes(PAGE_PICTURE_BYTES)} a browser opens; {advice}"
        )
    check_memory(PAGE_MEMORY_FACTOR * pictures, f"a page of {frames:,} frames", advice)


def _build_page(
    pages: list[_RunPage], title: str, every: int, finish: Callable[[str], None]
) -> Iterator[tuple[int, int]]:
    """Draw every frame's pictures (yielding progress), then hand the page's text to `finish`."""
    total = sum(len(page.indices) for page in pages)
    finished = 0
    records = []
    for page in pages:
        for done, record in _run_items(page):
            if record is None:
                yield finished + done, total
            else:
                records.append(record)
        finished += len(page.indices)
    data = {
        "title": title,
        "made": f"diffusion-stepper, {date.today().isoformat()}",
        "every": every,
        "histogram_edges": _rounded(HISTOGRAM_EDGES),
        "colours": page_palette(),  # the app's: run k is the same colour in both
        "runs": records,
        "timelines": _timelines(pages),
    }
    finish(page_html(data))


def _write_page(path: str | os.PathLike, text: str) -> None:
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(text, encoding="utf-8")


def page_html(data: dict) -> str:
    """The page: the template with its CSS, JavaScript and `data` put inline."""
    folder = resources_dir() / "page"
    html, css, script = ((folder / name).read_text(encoding="utf-8") for name in TEMPLATE_FILES)
    # "</script" or "<!--" in a prompt would end or derail the <script> element: JSON may spell "<" as \u003c
    parts = {
        "TITLE": data["title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        "CSS": css,
        "DATA": json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c"),
        "SCRIPT": script,
    }
    # one pass, so that a prompt that happens to read "{{SCRIPT}}" stays text
    return re.sub(r"\{\{(TITLE|CSS|DATA|SCRIPT)\}\}", lambda match: parts[match[1]], html)


def write_html_page(
    runs: Sequence[tuple[str, Trajectory]],
    path: str | os.PathLike,
    options: PageOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Build and write the page at once; `progress(done, total)` is told after each frame."""
    for done, total in html_page_items(runs, path, options):
        if progress is not None:
            progress(done, total)
    return Path(path)
