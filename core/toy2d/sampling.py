"""Sampling a 2D model: the shared loop over particles instead of images.

The same pieces as MNIST's: the network behind `NetworkPredictor`, a plain or guided noise
estimate, the objective's timesteps and a named step rule, composed by `run_sampler`. So every
frame carries x_t, x̂₀ and ε̂ or v̂ for each particle, and the numbers of its update.

Particles travel in the frames' image layout: N "images" of 2 channels and 1 × 1 pixel,
[N, 2, 1, 1], so trajectories, files and the timeline treat them as any run (`as_points` and
`as_images` convert).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective, FlowObjective, compose_sampler
from diffusion_stepper.core.diffusion.sampling import (
    NetworkPredictor,
)
from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.toy2d.mixture import GaussianMixture


def as_images(points: torch.Tensor) -> torch.Tensor:
    """[N, 2] -> the frames' layout [N, 2, 1, 1]."""
    return points.reshape(-1, 2, 1, 1)


def as_points(images: torch.Tensor) -> torch.Tensor:
    """The frames' layout [N, 2, 1, 1] (or [N, 2]) -> [N, 2]."""
    return images.reshape(-1, 2)


class ExactMixturePredictor:
    """The perfect model of a Gaussian-mixture dataset: at each (x, t) the ideal ε̂ (DDPM) or v̂
    (flow) of the mixture, in closed form, and for a row with a class (one-hot `cond`) that of the
    class's own mixture. Sampled with the same step rules as a trained model, it separates the
    sampler's error from the model's."""

    def __init__(self, mixture: GaussianMixture, objective: DDPMObjective | FlowObjective):
        self.mixture, self.objective = mixture, objective
        self.num_classes = mixture.num_classes

    def _field(self, mixture: GaussianMixture, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.objective.name == "flow":
            return mixture.flow_velocity(x, float(t))
        eps, _ = mixture.ddpm_estimates(x, self.objective.schedule.alpha_bar(int(t)))
        return eps

    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        points = as_points(x).double()
        field = self._field(self.mixture, points, t)
        if cond is not None:
            for label in range(cond.shape[1]):
                rows = cond[:, label] > 0.5
                if bool(rows.any()):
                    field[rows] = self._field(self.mixture.given_class(label), points[rows], t)
        return field.to(x.dtype).reshape(x.shape)


def sample_points(
    predict,
    objective: DDPMObjective | FlowObjective,
    count: int,
    generator: torch.Generator,
    *,
    num_classes: int = 0,
    steps: int | None = None,
    sampler: str | None = None,
    labels: torch.Tensor | None = None,
    guidance: float = 1.0,
    eta: float | None = None,
) -> Iterator[Frame]:
    """Frames of `count` particles from pure noise, walked by `predict(x, t, cond)` (a trained
    network behind `NetworkPredictor`, or `ExactMixturePredictor`); with `labels` (one per
    particle, `num_classes` classes), CFG at `guidance`."""
    x_start = as_images(torch.randn((count, 2), generator=generator))
    return compose_sampler(  # no x̂₀ clipping: the plane has no pixel range
        predict,
        objective,
        x_start,
        generator,
        labels=labels,
        num_classes=num_classes,
        guidance=guidance,
        steps=steps,
        sampler=sampler,
        eta=eta,
    )


def sample_model(model: torch.nn.Module, objective: DDPMObjective | FlowObjective, count: int, generator, **options):
    """`sample_points` for a trained 2D network."""
    return sample_points(
        NetworkPredictor(model, objective), objective, count, generator, num_classes=model.num_classes, **options
    )
