"""A 2D run as the app records it: the particles' frames plus what the particle view draws.

Each frame of a 2D run carries, besides the particles (x_t, x̂₀, ε̂ or v̂ of each):
  grid_x0_hat, grid_noise   [1, 2, G, G]  the model's clean estimate and noise estimate E[z | x]
                                          at the points of a G × G grid over the view, at this t
                                          (not stored when the model is the exact field itself)
  exact_x0_hat, exact_noise [1, 2, G, G]  the same for the exact field, where the data is a
                                          Gaussian mixture (8 Gaussians, a drawing)
  density                   [1, 1, D, D]  the noised marginal p_t on a D × D grid, where known
and the coefficient `field_error`: the mean distance between the model's output (ε̂ or v̂) and
the exact one at the particles. The file also keeps a sample of the training data (`data`). So a
saved 2D run draws its field, its density and its data with no model and no dataset at hand.

From the clean and noise estimates the view derives whichever field it shows (see `field_vectors`):
the noise ε̂, the score −ε̂/b, or the velocity the particles move along (flow matching's v̂; for
DDPM runs the probability-flow ODE's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from diffusion_stepper.core.devices import make_generator
from diffusion_stepper.core.diffusion.objectives import DDPMObjective, FlowObjective, class_guided_estimate
from diffusion_stepper.core.diffusion.rules.catalogue import check_sampler_choice
from diffusion_stepper.core.diffusion.sampling import NetworkPredictor
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import Frame, SamplingRun
from diffusion_stepper.core.limits import POINTS, STEPS, check_guidance, check_run_fits, out_of_range
from diffusion_stepper.core.run_meta import DENSITY, TOY2D_KEY
from diffusion_stepper.core.toy2d.checkpoints import load_toy2d_checkpoint
from diffusion_stepper.core.toy2d.datasets import VIEW_EXTENT, Toy2DDataset
from diffusion_stepper.core.toy2d.sampling import (
    ExactMixturePredictor,
    as_images,
    as_points,
    sample_points,
)

DEFAULT_PARTICLES = 5_000
DATA_SAMPLE = 2_000  # points of the training data each 2D run keeps, to draw under the particles
FIELD_GRID = 21  # arrows across the view
DENSITY_GRID = 64  # p_t's resolution (drawn smoothly scaled up)
# Steps a 2D run takes by default: DDPM's chain is 1,000 long, strided to 100; flow's Euler 50
DEFAULT_STEPS = {"ddpm": 100, "flow": 50}


def grid_points(size: int, extent: float = VIEW_EXTENT) -> torch.Tensor:
    """[size², 2] points of a size × size grid over [-extent, extent]², row by row from the top
    (y = +extent) down, each row from left to right: the row-major order of an image."""
    ticks = torch.linspace(-extent, extent, size)
    ys, xs = torch.meshgrid(ticks.flip(0), ticks, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def points_to_grid_image(values: torch.Tensor, size: int) -> torch.Tensor:
    """[size², C] values at `grid_points(size)` -> [1, C, size, size], an image of the grid."""
    return values.T.reshape(1, -1, size, size).float()


def grid_image_to_points(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `points_to_grid_image`: [1, C, G, G] -> [G², C]."""
    return image.reshape(image.shape[1], -1).T


def marginal_ab(objective: DDPMObjective | FlowObjective, t: float) -> tuple[float, float]:
    """(a, b) with x_t = a·x_data + b·z at this t."""
    if objective.name == "flow":
        return float(t), 1.0 - float(t)
    alpha_bar = objective.schedule.alpha_bar(int(t)) if t > 0 else 1.0
    return math.sqrt(alpha_bar), math.sqrt(max(0.0, 1.0 - alpha_bar))


def clean_and_noise(
    objective: DDPMObjective | FlowObjective, x: torch.Tensor, t: float, raw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂_data, ẑ) from a model's raw output at (x, t): from ε̂ for DDPM, from v̂ for flow."""
    if objective.name == "flow":  # x = t·x₁ + (1 − t)·z and v = x₁ − z
        return x + (1.0 - t) * raw, x - t * raw
    a, b = marginal_ab(objective, t)
    return (x - b * raw) / max(a, 1e-6), raw


def field_vectors(kind: str, clean: torch.Tensor, noise: torch.Tensor, a: float, b: float, flow: bool) -> torch.Tensor:
    """The field the view draws, from the clean and noise estimates at x_t = a·x₀ + b·noise:
    "noise" the noise estimate, "score" −ε̂/b (Tweedie), or "velocity", the direction the sampler
    moves the particles: flow's v̂ = x̂₁ − x̂₀, and for DDPM runs the probability-flow ODE's
    x̂₀/√ᾱ − ε̂/√(1 − ᾱ) (d x_t/d√ᾱ over √ᾱ, with the estimates held fixed: DDIM's direction)."""
    if kind == "noise":
        return noise
    if kind == "score":
        return -noise / max(b, 1e-3)
    if kind == "velocity":
        return clean - noise if flow else clean / max(a, 1e-3) - noise / max(b, 1e-3)
    raise ValueError(f"unknown field {kind!r}; choose noise, score or velocity")


@dataclass
class Toy2DSource:
    """What walks the particles: a trained MLP or the exact mixture field, with its objective and data."""

    predict: Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor]
    objective: DDPMObjective | FlowObjective
    dataset: Toy2DDataset
    num_classes: int
    name: str
    checkpoint: str | None = None
    is_exact: bool = False  # the closed-form field itself, not a model of it

    @classmethod
    def from_model(cls, model, objective, dataset: Toy2DDataset, name: str, checkpoint: str | None = None):
        return cls(NetworkPredictor(model, objective), objective, dataset, model.num_classes, name, checkpoint)

    @classmethod
    def from_checkpoint(cls, path) -> Toy2DSource:
        loaded = load_toy2d_checkpoint(path)
        return cls.from_model(loaded.model, loaded.objective, loaded.dataset, loaded.name, str(loaded.sidecar_path))

    @classmethod
    def exact(cls, dataset: Toy2DDataset, objective: DDPMObjective | FlowObjective) -> Toy2DSource:
        """The perfect model of a Gaussian-mixture dataset (its classes too)."""
        if dataset.mixture is None:
            raise UserFacingError(
                f"{dataset.title} has no exact field (only Gaussian mixtures do: 8-gaussians, drawn): "
                "train a model on it first"
            )
        predictor = ExactMixturePredictor(dataset.mixture, objective)
        name = f"{dataset.name} · exact {objective.name} field"
        return cls(predictor, objective, dataset, predictor.num_classes, name, is_exact=True)


@dataclass
class Toy2DSettings:
    """How to sample: the CLI's and the app's options for a 2D run."""

    count: int = DEFAULT_PARTICLES
    seed: int = 0
    steps: int | None = None  # default: DEFAULT_STEPS of the objective
    sampler: str | None = None  # default: the objective's (DDPM's posterior step, flow's Euler)
    eta: float | None = None
    label: int | None = None  # guide every particle to this class (a class-conditioned source)
    guidance: float = 1.0
    note: str | None = None


def check_particle_count(count: int) -> None:
    if out_of_range(count, POINTS):
        raise UserFacingError(f"particles must be between {POINTS[0]} and {POINTS[1]:,}, got {count:,}")


def toy2d_run(source: Toy2DSource, settings: Toy2DSettings) -> SamplingRun:
    """The frames of `settings.count` particles walked by `source`, each with the grid fields,
    the exact field and p_t where known (see the module's docstring)."""
    objective = source.objective
    steps = settings.steps or DEFAULT_STEPS[objective.name]
    check_particle_count(settings.count)
    if out_of_range(steps, STEPS) or (objective.name == "ddpm" and steps > objective.schedule.T):
        most = objective.schedule.T if objective.name == "ddpm" else STEPS[1]
        raise UserFacingError(f"steps must be between 1 and {most:,}, got {steps:,}")
    sampler = settings.sampler or objective.default_sampler
    check_sampler_choice(sampler, settings.eta, objective.samplers, f"a {objective.name} model")
    labels = None
    if settings.label is not None:
        if not source.num_classes:
            raise UserFacingError(f"{source.name} has no classes to guide towards (train it with classes)")
        if not 0 <= settings.label < source.num_classes:
            raise UserFacingError(f"class must be in 0..{source.num_classes - 1}, got {settings.label}")
        check_guidance(settings.guidance)
        labels = torch.full((settings.count,), settings.label, dtype=torch.int64)
    check_run_fits(steps + 1, settings.count, (2, 1, 1), pictures_per_frame=4)  # and a second evaluation
    generator = make_generator(settings.seed, "cpu")
    data, _ = source.dataset.sample(DATA_SAMPLE, make_generator(settings.seed + 1, "cpu"))
    frames = sample_points(
        source.predict,
        objective,
        settings.count,
        generator,
        num_classes=source.num_classes,
        steps=steps,
        sampler=sampler,
        labels=labels,
        guidance=settings.guidance,
        eta=settings.eta,
    )
    frames = with_fields(frames, objective, source.dataset, source, labels, settings.guidance)
    sampled = {"sampler": sampler}
    if labels is not None:
        sampled.update(guidance=settings.guidance, classes=[settings.label])
    if settings.eta is not None:
        sampled["eta"] = settings.eta
    meta = toy2d_meta(source, objective.name + ("+cfg" if labels is not None else ""), settings, steps, sampled)
    return SamplingRun(frames, meta, labels, steps + 1, data=data)


def toy2d_meta(
    source: Toy2DSource, algorithm: str, settings: Toy2DSettings, steps: int, sampled: dict | None = None
) -> dict:
    """A 2D run's metadata: what walked which data, and how the view draws it (params.toy2d);
    `sampled`: the sampler's own settings (sampler, guidance, classes, eta), for a sampled run."""
    meta = {
        "algorithm": algorithm,
        "model": source.name,
        "checkpoint": source.checkpoint,
        "seed": settings.seed,
        "params": {
            "objective": source.objective.to_dict(),
            "steps": steps,
            "num_samples": settings.count,
            TOY2D_KEY: {
                "dataset": source.dataset.name,
                "title": source.dataset.title,
                "extent": VIEW_EXTENT,
                "field_grid": FIELD_GRID,
                "exact": source.dataset.mixture is not None,
            },
            **(sampled or {}),
        },
        "value_range": [-VIEW_EXTENT, VIEW_EXTENT],
        "device": "cpu",
    }
    if settings.note:
        meta["note"] = settings.note
    return meta


def with_fields(
    frames: Iterator[Frame],
    objective: DDPMObjective | FlowObjective,
    dataset: Toy2DDataset,
    source: Toy2DSource | None = None,
    labels: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> Iterator[Frame]:
    """Add to each frame the grid field of `source` (if any, and not the exact field itself), and
    the exact field and p_t where the data is a Gaussian mixture (see the module's docstring).
    CFG's per-particle parts are dropped: the view does not draw them; what the step's update
    names (Heun's second evaluation) is kept."""
    grid = grid_points(FIELD_GRID)
    grid_images = as_images(grid)
    grid_labels = None if labels is None else labels[:1].expand(grid.shape[0])
    learned = None
    if source is not None and not source.is_exact:  # an exact source's field is the exact one, stored once
        learned = class_guided_estimate(source.predict, objective, grid_labels, source.num_classes, guidance)
    mixture = dataset.mixture
    if mixture is not None:
        exact_source = Toy2DSource.exact(dataset, objective)
        exact = class_guided_estimate(exact_source.predict, objective, grid_labels, exact_source.num_classes, guidance)
        density_grid = grid_points(DENSITY_GRID).double()
        density_mixture = mixture if labels is None else mixture.given_class(int(labels[0]))

    def grid_field(estimate, t: float, prefix: str) -> dict[str, torch.Tensor]:
        clean, noise = clean_and_noise(objective, grid, t, as_points(estimate(grid_images, t).value))
        return {
            f"{prefix}_x0_hat": points_to_grid_image(clean, FIELD_GRID),
            f"{prefix}_noise": points_to_grid_image(noise, FIELD_GRID),
        }

    for frame in frames:
        t = float(frame.t)
        needed = frame.update.images() if frame.update is not None else set()  # a second evaluation, say
        frame.extras = {name: image for name, image in frame.extras.items() if name in needed}
        with torch.no_grad():
            if learned is not None:
                frame.extras.update(grid_field(learned, t, "grid"))
            if mixture is not None:
                frame.extras.update(grid_field(exact, t, "exact"))
                a, b = marginal_ab(objective, t)
                log_p = density_mixture.log_density(density_grid, a, b)
                frame.extras[DENSITY] = points_to_grid_image(log_p.exp()[:, None], DENSITY_GRID)
                noise_field = frame.noise_field
                if learned is not None and labels is None and not frame.coeffs.get("final") and noise_field:
                    # how far the model's output (ε̂ or v̂) is from the exact one, on average at the particles
                    x = as_points(frame.x_t)
                    error = as_points(getattr(frame, noise_field)) - as_points(exact_source.predict(x, t, None))
                    frame.coeffs["field_error"] = float(error.norm(dim=1).mean())
        yield frame
