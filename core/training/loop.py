"""The pieces of a training loop that MNIST's training (core.mnist.training) and the 2D lab's
(core.toy2d.training) share, so each loop is only what its family does differently.

A loop is a generator of events: it adds each iteration's loss to a `LossWindow`, reads the
window back once per loss event (one device sync, every loss checked finite) and hands the event
over with its `Stopwatch` stopped, so a caller's pause is not counted as training.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from diffusion_stepper.core.errors import TrainingDiverged, UserFacingError

Event = TypeVar("Event")
Module = TypeVar("Module", bound=nn.Module)


def seeded(seed: int, build: Callable[[], Module]) -> Module:
    """A freshly built network whose first weights depend only on `seed`. nn.Module initialisers
    draw from the global RNG: it is forked, so the caller's stays untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def cosine_rate(peak: float, done: int, total: int, warmup: int = 0) -> float:
    """The learning rate at iteration `done` (0-based) of `total`: a linear rise over the first
    `warmup` iterations, then a cosine fall from `peak` to zero over the rest."""
    if done < warmup:
        return peak * (done + 1) / warmup
    progress = min(1.0, (done - warmup) / max(1, total - warmup))
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of the optimizer down the gradient of `loss`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


@contextmanager
def out_of_memory_said(device: torch.device, batch_size: int, where: str) -> Iterator[None]:
    """Running out of memory inside becomes one line: where it happened (`where`, e.g.
    "epoch 2, iteration 40") and a smaller batch size to try."""
    try:
        yield
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        smaller = max(1, batch_size // 2)
        raise UserFacingError(
            f"out of {device.type.upper()} memory at batch size {batch_size} ({where}); "
            f"try a smaller batch size, such as {smaller}"
        ) from None


@dataclass
class WindowLosses:
    """A window's losses, read back: each iteration's, their mean, and the pace over the window."""

    values: list[float]
    mean: float
    images_per_second: float  # a 2D model's points per second


class LossWindow:
    """The losses of the iterations since the last loss event, kept on the device until the event
    reads them (one sync per event, not per iteration)."""

    def __init__(self):
        self.restart()

    def restart(self) -> None:
        """A new window: call it when the caller asks for more, so a pause is not counted."""
        self._losses: list[torch.Tensor] = []
        self._images, self._since = 0, time.perf_counter()

    def __len__(self) -> int:
        return len(self._losses)

    def add(self, loss: torch.Tensor, images: int) -> None:
        self._losses.append(loss.detach())
        self._images += images

    def read(self, last_iteration: int, advice: str, epoch: int | None = None) -> WindowLosses:
        """The window's losses, which end at `last_iteration` (1-based, of `epoch` where there are
        epochs); a loss that is not finite stops the training with where it happened and `advice`."""
        values = torch.stack(self._losses).tolist()  # one device sync per window
        first = last_iteration - len(values) + 1
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                where = f"iteration {first + offset}" if epoch is None else f"epoch {epoch}, iteration {first + offset}"
                raise TrainingDiverged(f"loss became {value} at {where}; {advice}")
        pace = self._images / max(time.perf_counter() - self._since, 1e-9)
        return WindowLosses(values, sum(values) / len(values), pace)


class Stopwatch:
    """Seconds of training: it stops while the caller holds an event (a pause is not counted) and
    while a preview grid is drawn for the class, so a preview shows the weights at a round
    number of seconds of training. (Epoch grids and checkpoints count.)"""

    def __init__(self):
        self._banked, self._since = 0.0, time.perf_counter()

    @property
    def seconds(self) -> float:
        return self._banked + time.perf_counter() - self._since

    @contextmanager
    def stopped(self) -> Iterator[None]:
        self._banked = self.seconds
        try:
            yield
        finally:
            self._since = time.perf_counter()

    def hand_over(self, event: Event) -> Iterator[Event]:
        """Yield `event` with the clock stopped (use with `yield from`)."""
        with self.stopped():
            yield event


class WeightAverage:
    """An exponential moving average of a model's weights (its BatchNorm statistics copied as
    they are): the network the samples and checkpoints use when the decay is > 0.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) at iteration n, so the first, random
    weights are forgotten within a few steps instead of ~1 / (1 - decay).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model, self.decay = model, decay
        self.average = copy.deepcopy(model) if decay > 0 else model

    @property
    def enabled(self) -> bool:
        return self.average is not self.model

    @torch.no_grad()
    def update(self, iteration: int) -> None:
        if not self.enabled:
            return
        decay = min(self.decay, (1 + iteration) / (10 + iteration))
        for average, current in zip(self.average.parameters(), self.model.parameters()):
            average.lerp_(current, 1 - decay)
        for average, current in zip(self.average.buffers(), self.model.buffers()):
            average.copy_(current)


def optimizer_to_safetensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The optimizer's state as named tensors (safetensors holds nothing else), and its parameter
    groups for the sidecar."""
    state = optimizer.state_dict()
    tensors = {}
    for param_index, param_state in state["state"].items():
        for key, value in param_state.items():
            tensors[f"optimizer.{param_index}.{key}"] = torch.as_tensor(value)
    return tensors, state["param_groups"]


def optimizer_from_safetensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param_index, name = key.split(".", 2)
            state.setdefault(int(param_index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
