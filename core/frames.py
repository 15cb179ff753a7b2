"""The one record every algorithm yields (`Frame`) and a run's worth of them (`Trajectory`).

A frame describes one step: the sample `x_t` the step started from, the model's estimates at
`x_t`, and the numbers the update used to get to the next frame's `x_t`. Frame 0 is the starting
state; the last frame holds the final sample and no estimate (its `x0_hat` is the sample itself
and its noise estimate is zero), so a run of S steps has S + 1 frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from diffusion_stepper.core.run_meta import RunMeta
from diffusion_stepper.core.updates import Update

# The field names shared by frames, trajectory files and exports.
NOISE_FIELDS = ("eps_hat", "v_hat")
# A coefficient set to 1 on a frame whose x_t was drawn from the forward process q(x_t | x0) of a
# known clean image (the noising experiments, SDEdit's start): only there does theory know p(x_t).
FORWARD_NOISED = "forward_noised"
IMAGE_FIELDS = ("x_t", "x0_hat") + NOISE_FIELDS


@dataclass
class Frame:
    index: int
    t: float  # integer timestep for DDPM-style runs, a float in [0, 1] for flow matching
    x_t: torch.Tensor  # [N, C, H, W], on the CPU
    x0_hat: torch.Tensor  # the clean-image estimate at x_t, whatever the objective calls it
    eps_hat: torch.Tensor | None = None  # noise estimate (DDPM, IF, single-step)
    v_hat: torch.Tensor | None = None  # velocity estimate (flow matching)
    coeffs: dict[str, float] = field(default_factory=dict)  # the numbers this step's update used
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # named images to show
    update: Update | None = None  # how the step's rule made the next frame's x_t (core.updates)

    @property
    def noise_field(self) -> str | None:
        """ "eps_hat" or "v_hat", whichever this frame carries."""
        if self.eps_hat is not None:
            return "eps_hat"
        if self.v_hat is not None:
            return "v_hat"
        return None

    @property
    def nbytes(self) -> int:
        """The memory its pictures hold."""
        images = [self.x_t, self.x0_hat, self.eps_hat, self.v_hat, *self.extras.values()]
        return sum(image.numel() * image.element_size() for image in images if image is not None)

    def image(self, name: str) -> torch.Tensor:
        """One of the image fields or extras by name, e.g. "x_t" or "eps_cond"."""
        value = getattr(self, name) if name in IMAGE_FIELDS else self.extras.get(name)
        if value is None:
            raise KeyError(f"frame {self.index} has no image named {name!r}")
        return value


def keep_every(frames: Iterator[Frame], every: int, num_frames: int) -> Iterator[Frame]:
    """Every `every`-th of `num_frames` frames plus the last, renumbered 0, 1, 2, ...

    Each kept frame still holds its own t and the coefficients of the step it took, so the
    equation panel stays right; only the frames in between are dropped (to keep big runs small).
    """
    if every <= 0:
        raise ValueError(f"keep-every must be positive, got {every}")
    kept = 0
    for frame in frames:
        if frame.index % every == 0 or frame.index == num_frames - 1:
            frame.index = kept
            kept += 1
            yield frame


def with_extras(frames: Iterator[Frame], make: Callable[[Frame], dict[str, torch.Tensor]]) -> Iterator[Frame]:
    """Add the named images `make(frame)` returns to each frame as it passes (the known original,
    the mask, an anagram's views, ...)."""
    for frame in frames:
        frame.extras.update(make(frame))
        yield frame


def forward_noised_start(frames: Iterator[Frame]) -> Iterator[Frame]:
    """Mark the first frame as drawn from the forward process (a run that starts from a noised image)."""
    for frame in frames:
        if frame.index == 0:
            frame.coeffs[FORWARD_NOISED] = 1.0
        yield frame


def last_frame(frames: Iterator[Frame]) -> Frame:
    """Run `frames` to the end, keeping only the last: the result, for measurements that judge it."""
    last = None
    for frame in frames:
        last = frame
    if last is None:
        raise ValueError("a run yielded no frames")
    return last


def to_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """Detach a tensor for a frame. On the CPU this is free; samplers never write in place."""
    return tensor.detach().to("cpu", torch.float32)


@dataclass
class Trajectory:
    """The frames of one run plus its metadata (algorithm, model, seed, parameters, value range):
    `meta` as its producer wrote it and the file stores it, `run_meta` the same read as fields."""

    meta: dict
    frames: list[Frame] = field(default_factory=list)
    labels: torch.Tensor | None = None  # [N] class labels for class-conditioned runs
    data: torch.Tensor | None = None  # [M, 2] a sample of the training data (2D runs), drawn under the particles

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __getitem__(self, index: int) -> Frame:
        return self.frames[index]

    @property
    def run_meta(self) -> RunMeta:
        """The run's record, typed. Read from `meta` at each call (microseconds), so it is never
        out of date with the dict its producer (or a test) still edits."""
        return RunMeta.of(self.meta)

    @property
    def value_range(self) -> tuple[float, float]:
        value_range = self.run_meta.value_range
        if value_range is None:
            raise KeyError("value_range")
        return value_range

    @property
    def noise_field(self) -> str | None:
        return self.frames[0].noise_field if self.frames else None

    @property
    def final_sample(self) -> torch.Tensor:
        return self.frames[-1].x_t

    def stack(self, name: str) -> torch.Tensor:
        """One image field over all frames: [F, N, C, H, W]."""
        return torch.stack([frame.image(name) for frame in self.frames])

    def extra_names(self) -> list[str]:
        names: list[str] = []
        for frame in self.frames:
            names.extend(name for name in frame.extras if name not in names)
        return names


@dataclass
class SamplingRun:
    """A run about to happen: its frames (a generator, drawn one step at a time), its metadata,
    class labels for class-conditioned runs, and how many frames it will yield."""

    frames: Iterator[Frame]
    meta: dict
    labels: torch.Tensor | None
    num_frames: int
    data: torch.Tensor | None = None  # see Trajectory.data

    @property
    def run_meta(self) -> RunMeta:
        return RunMeta.of(self.meta)
