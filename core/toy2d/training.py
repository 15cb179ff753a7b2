"""Training a 2D model: a generator of events, as MNIST training is.

The data never runs out: each iteration draws a fresh batch from the dataset with the run's
generator, so "an epoch" has no meaning here and the run is counted in iterations. The loss is
the shared objectives' (DDPM's ε-prediction or the course's flow matching), the class dropped
with probability `p_uncond` for classifier-free guidance, exactly as for MNIST; the loop's pieces
(the rate's cosine, the loss window and its finite check, the clock) are MNIST's too
(core.training.loop).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from diffusion_stepper.core.diffusion.objectives import (
    P_UNCOND,
    DDPMObjective,
    FlowObjective,
    class_condition_with_dropout,
)
from diffusion_stepper.core.diffusion.schedules import LinearBetaSchedule
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.limits import (
    BATCH_SIZE,
    LOG_EVERY,
    TOY_DEPTH,
    TOY_HIDDEN,
    TOY_ITERATIONS,
    TOY_LEARNING_RATE,
    check_memory,
)
from diffusion_stepper.core.toy2d.datasets import DATASETS, Toy2DDataset
from diffusion_stepper.core.toy2d.drawn import resolve_dataset
from diffusion_stepper.core.toy2d.model import TIME_FREQUENCIES, PointMLP
from diffusion_stepper.core.training.loop import (
    LossWindow,
    Stopwatch,
    cosine_rate,
    descend,
    out_of_memory_said,
    seeded,
    set_rate,
)

# The 2D chain: 1,000 steps of DDPM's linear β reach pure noise (√ᾱ_T ≈ 0.006). The course's
# MNIST chain of 300 stops at √ᾱ_T ≈ 0.22, which the 2D lab can show on purpose, not by default.
TOY_T = 1000
TOY_OBJECTIVES = ("ddpm", "flow")
CPU = torch.device("cpu")  # a 2D model trains on the CPU: its batches are small
DIVERGED_ADVICE = "lower --lr"


@dataclass
class Toy2DConfig:
    dataset: str = "moons"  # a name in DATASETS, or the path of a drawn distribution
    objective: str = "flow"
    classes: bool = False  # condition on the dataset's classes (with dropout, for CFG)
    iterations: int = 5000  # about 10 s on a 2-core CPU (bench/toy2d_training.py)
    batch_size: int = 512
    lr: float = 3e-3  # Adam, falling to zero on a cosine over the run
    hidden: int = 128
    depth: int = 3
    p_uncond: float = P_UNCOND
    seed: int = 0
    log_every: int = 50

    def validate(self) -> None:
        """One line naming the first setting out of range."""
        dataset = resolve_dataset(self.dataset)  # one line if it is neither a name nor a drawing
        if self.objective not in TOY_OBJECTIVES:
            raise UserFacingError(f"objective must be one of {', '.join(TOY_OBJECTIVES)}, got {self.objective!r}")
        if self.classes and not dataset.num_classes:
            labelled = ", ".join(name for name, data in DATASETS.items() if data.num_classes)
            raise UserFacingError(f"{self.dataset} has no classes to condition on; these do: {labelled}")
        for name, (low, high) in (
            ("iterations", TOY_ITERATIONS),
            ("batch_size", BATCH_SIZE),
            ("hidden", TOY_HIDDEN),
            ("depth", TOY_DEPTH),
            ("log_every", LOG_EVERY),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise UserFacingError(f"{name.replace('_', '-')} must be an integer in {low}..{high:,}, got {value}")
        low, high = TOY_LEARNING_RATE
        if not (math.isfinite(self.lr) and low < self.lr <= high):
            raise UserFacingError(f"lr must be in ({low:g}, {high:g}], got {self.lr}")
        if not 0 <= self.p_uncond < 1:
            raise UserFacingError(f"p-uncond must be in [0, 1), got {self.p_uncond}")
        check_memory(
            self.memory_estimate(),
            f"training a {self.hidden}-wide MLP on batches of {self.batch_size:,} points",
            "use a smaller --batch-size or --hidden",
        )

    def memory_estimate(self) -> int:
        """Bytes a training step holds at its peak: each layer's output and activation kept for the
        backward pass and a gradient beside them (float32), and the weights with their gradients
        and Adam's two moments."""
        activations = 3 * self.depth * self.batch_size * self.hidden
        weights = self.depth * self.hidden * (self.hidden + 2 * TIME_FREQUENCIES + 66)
        return 4 * (activations + 4 * weights)

    @property
    def num_classes(self) -> int:
        return resolve_dataset(self.dataset).num_classes if self.classes else 0


def make_objective(name: str) -> DDPMObjective | FlowObjective:
    return DDPMObjective(LinearBetaSchedule.create(T=TOY_T)) if name == "ddpm" else FlowObjective()


def build_model(config: Toy2DConfig) -> PointMLP:
    """A freshly initialised MLP whose weights depend only on the seed."""
    return seeded(config.seed, lambda: PointMLP(config.hidden, config.depth, config.num_classes))


@dataclass
class Toy2DLoss:
    """What `LossHistory` (core.training_progress) reads from MNIST's loss events, so the same
    loss plot shows both."""

    iteration: int
    loss: float  # mean over the last `log_every` iterations
    seconds: float  # training time so far (a pause not counted)
    losses: list[float]  # each of those iterations' losses
    images_per_second: float  # points per second over those iterations


@dataclass
class Toy2DTrained:
    model: PointMLP
    objective: DDPMObjective | FlowObjective
    config: Toy2DConfig
    dataset: Toy2DDataset
    seconds: float
    final_loss: float


def train_toy2d(config: Toy2DConfig) -> Iterator[Toy2DLoss | Toy2DTrained]:
    """Yields a loss event every `log_every` iterations, then the trained model (in eval mode)."""
    config.validate()
    dataset = resolve_dataset(config.dataset)
    objective = make_objective(config.objective)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    watch, window = Stopwatch(), LossWindow()
    for iteration in range(1, config.iterations + 1):
        points, labels = dataset.sample(config.batch_size, generator)
        cond = None
        if config.classes:
            cond = class_condition_with_dropout(labels, config.num_classes, config.p_uncond, generator)
        set_rate(optimizer, cosine_rate(config.lr, iteration - 1, config.iterations))  # to zero over the run
        with out_of_memory_said(CPU, config.batch_size, f"iteration {iteration}"):
            loss = objective.training_loss(model, points, cond, generator)
            descend(optimizer, loss)
        window.add(loss, config.batch_size)
        if iteration % config.log_every == 0 or iteration == config.iterations:
            losses = window.read(iteration, DIVERGED_ADVICE)
            event = Toy2DLoss(iteration, losses.mean, watch.seconds, losses.values, losses.images_per_second)
            yield from watch.hand_over(event)
            window.restart()
    model.eval()
    yield Toy2DTrained(model, objective, config, dataset, watch.seconds, losses.mean)
