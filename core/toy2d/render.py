"""The particle view as pixels: one home for what the app shows and what an export writes.

A frame of a 2D run is drawn on a square of `size` pixels over [-extent, extent]²: the marginal
density p_t as a heat map (where known), the training data as faint dots, the field on a grid as
arrows (the model's, the exact one, both, or their difference), the particles x_t, optionally
their clean estimates x̂₀ as a second cloud, and the whole paths of a few highlighted particles.
All in numpy and Pillow, fast enough to scrub (bench/toy2d_view_fps.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffusion_stepper.core.diffusion.theory import marginal_coefficients
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.run_meta import DENSITY, RunMeta
from diffusion_stepper.core.toy2d.runs import field_vectors, grid_image_to_points, grid_points

FIELDS = ("velocity", "noise", "score", "none")
# In ASCII, which every export font has (a fallback font lacks the combining hat of x̂₀)
FIELD_TITLES = {"velocity": "velocity", "noise": "noise eps", "score": "score grad log p_t", "none": "no field"}


def field_title(kind: str, meta: RunMeta) -> str:
    """The arrows' name for this run: the velocity is flow's v, and a DDPM run's probability-flow velocity."""
    if kind != "velocity":
        return FIELD_TITLES[kind]
    return "velocity v" if meta.family == "flow" else "probability-flow velocity"


FIELD_SOURCES = ("learned", "exact", "both", "error")
SOURCE_TITLES = {"learned": "model", "exact": "exact", "both": "model white, exact orange", "error": "model - exact"}

BACKGROUND = np.array((18, 18, 24), dtype=np.uint8)
DATA_COLOUR = np.array((110, 110, 120), dtype=np.uint8)
PARTICLE_COLOUR = np.array((90, 200, 255), dtype=np.uint8)
X0_COLOUR = np.array((255, 170, 60), dtype=np.uint8)
PATH_COLOUR = (255, 240, 120)
LEARNED_ARROW = (235, 235, 235)
EXACT_ARROW = (255, 140, 60)
ERROR_ARROW = (255, 70, 70)
# The heat map's colours, dark to bright (a magma-like ramp that stays behind white arrows)
# kept dim, so the particles and arrows drawn over it stay the brightest things in the picture
HEAT_STOPS = np.array([(18, 18, 24), (48, 22, 78), (100, 32, 92), (150, 70, 60), (175, 125, 70)], dtype=np.float64)
DEFAULT_SIZE = 720
ARROW_FRACTION = 0.9  # the longest arrows span this much of a grid cell


@dataclass
class ParticleViewOptions:
    field: str = "velocity"
    source: str = "learned"
    particles: bool = True
    x0_cloud: bool = False
    density: bool = True
    data: bool = True
    paths: bool = True
    num_paths: int = 8
    size: int = DEFAULT_SIZE

    def check(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"unknown field {self.field!r}; choose from {', '.join(FIELDS)}")
        if self.source not in FIELD_SOURCES:
            raise ValueError(f"unknown field source {self.source!r}; choose from {', '.join(FIELD_SOURCES)}")


def _heat_lut() -> np.ndarray:
    positions = np.linspace(0, 1, len(HEAT_STOPS))
    ramp = np.linspace(0, 1, 256)
    return np.stack([np.interp(ramp, positions, HEAT_STOPS[:, c]) for c in range(3)], axis=1).astype(np.uint8)


HEAT_LUT = _heat_lut()


class PlaneMapper:
    """Plane coordinates -> pixel coordinates of a square picture (y up)."""

    def __init__(self, extent: float, size: int):
        self.extent, self.size = extent, size
        self.scale = size / (2 * extent)

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = (points[:, 0] + self.extent) * self.scale
        ys = (self.extent - points[:, 1]) * self.scale
        return xs, ys


def _splat(picture: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour: np.ndarray, radius: int) -> None:
    """Square dots of side 2·radius (1 px at radius 0) at the given pixel positions, clipped to the picture."""
    size = picture.shape[0]
    ix, iy = xs.astype(np.int64), ys.astype(np.int64)
    offsets = range(-radius, radius) if radius > 0 else (0,)
    for dy in offsets:
        for dx in offsets:
            x, y = ix + dx, iy + dy
            inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            picture[y[inside], x[inside]] = colour


def _density_layer(density: torch.Tensor, size: int) -> np.ndarray:
    """p_t [1, 1, D, D] as a heat map of `size` pixels (square root: the tails stay visible)."""
    values = density.reshape(density.shape[-2], density.shape[-1]).numpy().astype(np.float64)
    peak = values.max()
    level = np.sqrt(values / peak) if peak > 0 else values
    small = Image.fromarray((level * 255).astype(np.uint8), mode="L")
    return HEAT_LUT[np.asarray(small.resize((size, size), Image.BILINEAR))]


def _field_at_grid(trajectory: Trajectory, index: int, kind: str, prefix: str) -> np.ndarray | None:
    frame = trajectory[index]
    clean, noise = frame.extras.get(f"{prefix}_x0_hat"), frame.extras.get(f"{prefix}_noise")
    if clean is None or noise is None:
        return None
    meta = trajectory.run_meta
    coefficients = marginal_coefficients(meta, frame)
    a, b = coefficients if coefficients else (1.0, 1.0)
    flow = meta.family == "flow"
    if kind in ("velocity", "score") and not flow and b < 1e-6:  # clean data: ε̂/b, and these fields, are undefined
        return None
    return field_vectors(kind, grid_image_to_points(clean), grid_image_to_points(noise), a, b, flow).numpy()


def _arrows(draw: ImageDraw.ImageDraw, starts: np.ndarray, vectors: np.ndarray, scale: float, mapper, colour, width):
    """One arrow per grid point: shaft and a two-stroke head, `scale` plane units per unit of field."""
    xs, ys = mapper(starts)
    ends = starts + vectors * scale
    xe, ye = mapper(ends)
    for x0, y0, x1, y1 in zip(xs, ys, xe, ye):
        length = np.hypot(x1 - x0, y1 - y0)
        if length < 1.5:
            continue
        draw.line((x0, y0, x1, y1), fill=colour, width=width)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        head = min(length * 0.4, 4.0 * width + 3)
        for side in (1, -1):
            draw.line(
                (x1, y1, x1 - head * (ux + side * 0.5 * uy), y1 - head * (uy - side * 0.5 * ux)),
                fill=colour,
                width=width,
            )


def path_indices(num_particles: int, count: int) -> np.ndarray:
    """Which particles have their paths drawn: `count` spread evenly over the batch."""
    count = min(count, num_particles)
    return np.linspace(0, num_particles - 1, count).round().astype(np.int64) if count else np.zeros(0, np.int64)


def render_particles(
    trajectory: Trajectory, index: int, options: ParticleViewOptions | None = None, paths: np.ndarray | None = None
) -> np.ndarray:
    """Frame `index` of a 2D run as a uint8 [size, size, 3] picture. `paths` (optional) holds every
    frame's particles [F, N, 2] already, so scrubbing does not gather them again each time."""
    options = options or ParticleViewOptions()
    options.check()
    extent, size = trajectory.run_meta.plane.extent, options.size
    mapper = PlaneMapper(extent, size)
    frame = trajectory[index]
    density = frame.extras.get(DENSITY)
    if options.density and density is not None:
        picture = _density_layer(density, size)
    else:
        picture = np.empty((size, size, 3), dtype=np.uint8)
        picture[:] = BACKGROUND
    dot = max(1, round(size / 720))  # dots grow with the picture, so a projected export reads
    if options.data and trajectory.data is not None:
        _splat(picture, *mapper(trajectory.data.numpy()), DATA_COLOUR, 0 if dot == 1 else dot // 2)
    if options.x0_cloud:
        _splat(picture, *mapper(frame.x0_hat.reshape(-1, 2).numpy()), X0_COLOUR, dot)
    if options.particles:
        _splat(picture, *mapper(frame.x_t.reshape(-1, 2).numpy()), PARTICLE_COLOUR, dot)
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    if options.paths and options.num_paths:
        if paths is None:
            paths = np.stack([f.x_t.reshape(-1, 2).numpy() for f in trajectory.frames[: index + 1]])
        chosen = path_indices(paths.shape[1], options.num_paths)
        for particle in chosen:
            xs, ys = mapper(paths[: index + 1, particle])
            if index > 0:
                draw.line(list(zip(xs.tolist(), ys.tolist())), fill=PATH_COLOUR, width=dot)
            draw.ellipse(
                (xs[-1] - 2 * dot - 1, ys[-1] - 2 * dot - 1, xs[-1] + 2 * dot + 1, ys[-1] + 2 * dot + 1),
                outline=PATH_COLOUR,
                width=dot,
            )
    if options.field != "none":
        _draw_field(draw, trajectory, index, options, mapper, dot)
    return np.asarray(image)


def _draw_field(draw, trajectory: Trajectory, index: int, options: ParticleViewOptions, mapper, width: int) -> None:
    plane = trajectory.run_meta.plane
    size = plane.field_grid
    starts = grid_points(size, plane.extent).numpy()
    exact = _field_at_grid(trajectory, index, options.field, "exact")
    learned = _field_at_grid(trajectory, index, options.field, "grid")
    if learned is None:  # the run's model is the exact field (or had no grid): that is its field
        learned = exact
    reference = learned if learned is not None else exact
    if reference is None:
        return
    # One scale for every arrow of the frame: the 95th percentile spans most of a cell
    cell = 2 * plane.extent / (size - 1)
    typical = float(np.percentile(np.linalg.norm(reference, axis=1), 95)) or 1.0
    scale = ARROW_FRACTION * cell / typical
    layers = {
        "learned": [(learned, LEARNED_ARROW)],
        "exact": [(exact, EXACT_ARROW)],
        "both": [(exact, EXACT_ARROW), (learned, LEARNED_ARROW)],
        "error": [(None if learned is None or exact is None else learned - exact, ERROR_ARROW)],
    }[options.source]
    for vectors, colour in layers:
        if vectors is not None:
            _arrows(draw, starts, vectors, scale, mapper, colour, width)


def view_title(trajectory: Trajectory, options: ParticleViewOptions) -> str:
    """What the picture shows, in words: the data, the field and whose it is."""
    meta = trajectory.run_meta
    field = (
        ""
        if options.field == "none"
        else f" · arrows: {field_title(options.field, meta)} ({SOURCE_TITLES[options.source]})"
    )
    density = ""
    if options.density and DENSITY in trajectory.frames[0].extras:
        density = " · " + density_title(meta)
    title = meta.plane.dataset if meta.plane.title is None else meta.plane.title
    return f"{title}: {trajectory.frames[0].x_t.shape[0]:,} particles{field}{density}"


def density_title(meta: RunMeta) -> str:
    """What the heat map is: p_t of the data, or, in a class-conditioned run, of the class asked for
    alone: not the density guided sampling follows at its γ (at γ = 0 the particles follow the
    unconditional field, and only a tenth of them land near that class)."""
    classes = meta.classes or ()
    return f"heat: p_t of class {classes[0]} (unguided)" if len(classes) == 1 else "heat: p_t"
