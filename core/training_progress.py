"""What the Train view shows about a training run, as Qt-free numbers: the loss per iteration,
its smoothed curve, where the epochs end, the throughput and the time left."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent

SMOOTHING = 0.95  # the weight of the past in the smoothed loss (an EMA over about 20 iterations)
THROUGHPUT_SMOOTHING = 0.8


@dataclass
class LossHistory:
    iterations: list[int] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    epoch_ends: list[tuple[int, int]] = field(default_factory=list)  # (iteration, epoch)
    images_per_second: float | None = None
    last: LossEvent | None = None
    first_iteration: int = 0  # iterations done before this launch (a resumed run's earlier ones)
    seconds_before: float = 0.0  # training time of this history's earlier launches ("Keep training")
    _ema: float = 0.0  # the plain EMA, which starts at 0; smoothed[] divides out that start

    def add_losses(self, event: LossEvent) -> None:
        """Each iteration's loss, and the bias-corrected exponential moving average beside it.
        (The 2D lab's Toy2DLoss has the fields this reads, so its training plots the same way.)"""
        first = event.iteration - len(event.losses) + 1
        if self.last is None:
            self.first_iteration = first - 1
        for offset, loss in enumerate(event.losses):
            self.iterations.append(first + offset)
            self.raw.append(loss)
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            self.smoothed.append(self._ema / (1 - SMOOTHING ** len(self.raw)))
        if self.images_per_second is None:
            self.images_per_second = event.images_per_second
        else:
            self.images_per_second = (
                THROUGHPUT_SMOOTHING * self.images_per_second + (1 - THROUGHPUT_SMOOTHING) * event.images_per_second
            )
        self.last = event

    def new_launch(self, from_iteration: int) -> None:
        """The run goes on in a new launch ("Keep training") from its checkpoint at
        `from_iteration`: the curve continues from there (what a stop left after it, which the
        checkpoint does not hold, is dropped), while the pace and the time left are measured
        afresh (each launch's clock starts at 0)."""
        if self.last is not None:
            self.seconds_before += self.last.seconds
        kept = sum(1 for iteration in self.iterations if iteration <= from_iteration)
        del self.iterations[kept:], self.raw[kept:], self.smoothed[kept:]
        self.epoch_ends = [(iteration, epoch) for iteration, epoch in self.epoch_ends if iteration <= from_iteration]
        self._ema = self.smoothed[-1] * (1 - SMOOTHING ** len(self.raw)) if self.raw else 0.0
        self.last, self.images_per_second = None, None

    def seconds_per_epoch(self) -> float | None:
        """This launch's training time per epoch so far (pauses and preview grids not counted)."""
        event = self.last
        done = 0 if event is None else event.iteration - self.first_iteration
        if done <= 0 or event.seconds <= 0:
            return None
        return event.seconds / done * event.epoch_iterations

    def trained_seconds(self, launch_seconds: float) -> float:
        """Training time of the whole history at `launch_seconds` into this launch."""
        return self.seconds_before + launch_seconds

    def add_epoch(self, event: EpochEvent) -> None:
        self.epoch_ends.append((event.iteration, event.epoch))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.iterations, float), np.asarray(self.raw, float), np.asarray(self.smoothed, float)

    def seconds_left(self, epochs: int) -> float | None:
        """Time left at this launch's measured pace: its wall time per iteration so far (epoch
        grids and checkpoints included; pauses, and the few-percent cost of the preview grids,
        not) times the iterations left."""
        event = self.last
        done = 0 if event is None else event.iteration - self.first_iteration
        if done <= 0 or event.seconds <= 0:
            return None
        iterations_left = (
            (epochs - event.epoch) * event.epoch_iterations + event.epoch_iterations - event.epoch_iteration
        )
        return iterations_left * event.seconds / done

    def readout(self, epochs: int) -> str:
        """ "epoch 2/6 · 4 min 12 s left · loss 0.0430 (last batch 0.0412) · batch 340/600 · 123 img/s":
        most wanted first, since a narrow window cuts the end."""
        event = self.last
        if event is None:
            return "starting…"
        parts = [f"epoch {event.epoch}/{epochs}"]
        seconds = self.seconds_left(epochs)
        if seconds is not None:
            parts.append(f"{format_duration(seconds)} left")
        parts += [
            f"loss {self.smoothed[-1]:.4f} (last batch {self.raw[-1]:.4f})",
            f"batch {event.epoch_iteration}/{event.epoch_iterations}",
            f"{self.images_per_second:.0f} img/s",
        ]
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(math.ceil(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
