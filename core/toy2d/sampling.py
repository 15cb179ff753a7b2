"""Sampling a 2D model: the shared loop over points [N, 2] instead of images.

The same pieces as MNIST's: the network behind `NetworkPredictor`, a plain or guided noise
estimate, the objective's timesteps and a named step rule, composed by `run_sampler`. So every
frame carries x_t, x̂₀ and ε̂ or v̂ for each particle, and the numbers of its update.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective, FlowObjective, one_hot
from diffusion_stepper.core.diffusion.sampling import (
    ClassifierFreeGuidance,
    NetworkPredictor,
    PlainEstimate,
    run_sampler,
)
from diffusion_stepper.core.frames import Frame


def sample_points(
    model: torch.nn.Module,
    objective: DDPMObjective | FlowObjective,
    count: int,
    generator: torch.Generator,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    labels: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> Iterator[Frame]:
    """Frames of `count` particles from pure noise; with `labels` (one per particle), CFG at `guidance`."""
    x_start = torch.randn((count, 2), generator=generator)
    predict = NetworkPredictor(model, objective)
    if labels is not None:
        cond = one_hot(labels, model.num_classes)
        name = "v" if objective.name == "flow" else "eps"
        estimate = ClassifierFreeGuidance(predict, cond, torch.zeros_like(cond), guidance, name=name)
    else:
        estimate = PlainEstimate(predict)
    sampler = sampler or objective.default_sampler
    rule = objective.step_rule(sampler) if objective.name == "flow" else objective.step_rule(None, sampler)
    return run_sampler(x_start, objective.timesteps(steps), estimate, rule, generator)
