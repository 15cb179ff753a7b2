"""The Python API, `import diffusion_stepper as ds`: a user's own model or sampling loop, stepped
through as the app steps through its own, with no Qt (it runs in Jupyter and Colab).

    run = ds.sample(model, objective="ddpm", shape=(1, 28, 28), num=16, sampler="ddim", steps=50)
    run.save("mine.npz")    # the trajectory file the app, `inspect` and `export` open
    run                     # in a notebook: the interactive page, inline, with no network

    rec = ds.Recorder(objective="ddpm", value_range=(0, 1), name="my DDPM")
    ...                     # rec.add(t=t, x_t=x, x0_hat=x0, noise_hat=eps) in the student's loop
    rec.save("mine.npz"); rec.run

The work is done in core (core.own_model); this module only runs it and wraps what it gives.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from tqdm import tqdm

from diffusion_stepper.core.diffusion.schedules import DEFAULT_BETA_END, DEFAULT_BETA_START, DEFAULT_T
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.html_page import PageOptions, html_page_text, suggested_every, write_html_page
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.frames import Frame, Trajectory
from diffusion_stepper.core.own_model.model_sampling import (
    DEFAULT_VALUE_RANGE,
    ModelCallError,
    ModelOutputError,
    ModelSampleRequest,
)
from diffusion_stepper.core.own_model.model_sampling import linear_schedule as checked_linear_schedule
from diffusion_stepper.core.own_model.recorder import FrameRecorder, RecorderError
from diffusion_stepper.core.run_meta import RunMeta
from diffusion_stepper.core.run_names import default_run_name

__all__ = [
    "ModelCallError",
    "ModelOutputError",
    "Recorder",
    "RecorderError",
    "Run",
    "UserFacingError",
    "linear_schedule",
    "load",
    "sample",
]

INLINE_PAGE_HEIGHT = 760  # pixels: the page's pictures, equation and histograms without scrolling


class Run:
    """A finished run: its frames (x_t, x̂₀, ε̂ or v̂ at each step) and its record."""

    def __init__(self, trajectory: Trajectory):
        self.trajectory = trajectory
        self._pages: dict[int, str] = {}  # every k -> the page: a notebook shows a run many times

    @property
    def frames(self) -> list[Frame]:
        return self.trajectory.frames

    @property
    def meta(self) -> RunMeta:
        """The run's settings as fields: sampler, steps, guidance, seed, value range, ..."""
        return self.trajectory.run_meta

    @property
    def samples(self) -> torch.Tensor:
        """The final samples, (N, C, H, W)."""
        return self.trajectory.final_sample

    @property
    def name(self) -> str:
        return default_run_name(self.meta)

    def __len__(self) -> int:
        return len(self.trajectory)

    def __getitem__(self, index: int) -> Frame:
        return self.trajectory[index]

    def __repr__(self) -> str:
        if not self.frames:
            return f"<Run {self.name!r}: no frames>"
        shape = "×".join(str(size) for size in self.samples.shape[1:])
        return f"<Run {self.name!r}: {len(self) - 1} steps, {self.samples.shape[0]} samples of {shape}>"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the trajectory file (written whole, then renamed: an old file is never half replaced)."""
        return save_trajectory(self.trajectory, path)

    def save_html(self, path: str | os.PathLike, every: int | None = None) -> Path:
        """The interactive page as one HTML file that opens offline; `every` keeps every k-th frame."""
        return write_html_page([(self.name, self.trajectory)], path, self._page_options(every))

    def html(self, every: int | None = None) -> str:
        """The interactive page's HTML (made once for each `every`: the run does not change)."""
        options = self._page_options(every)
        if options.every not in self._pages:
            self._pages[options.every] = html_page_text([(self.name, self.trajectory)], options)
        return self._pages[options.every]

    def _page_options(self, every: int | None) -> PageOptions:
        return PageOptions(every=suggested_every(len(self)) if every is None else every)

    def _repr_html_(self) -> str:
        """The page inline in Jupyter or Colab: in an iframe of its own, so that its styles and
        script neither touch the notebook nor are touched by it."""
        page = html.escape(self.html(), quote=True)
        return (
            f'<iframe srcdoc="{page}" title="{html.escape(self.name)}" style="width: 100%; '
            f'height: {INLINE_PAGE_HEIGHT}px; border: 1px solid #888;"></iframe>'
        )


def sample(
    model: Callable,
    objective: str = "ddpm",
    shape: Iterable[int] = (1, 28, 28),
    num: int | None = None,
    *,
    classes: Iterable[int] | None = None,
    per_class: int | None = None,
    num_classes: int | None = None,
    guidance: float | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    eta: float | None = None,
    seed: int = 0,
    schedule=None,
    value_range=DEFAULT_VALUE_RANGE,
    device: str | torch.device | None = None,
    name: str | None = None,
    progress: bool = True,
) -> Run:
    """Sample your own model, frame by frame.

    `model(x_t, t)` (or `model(x_t, t, c)` with `classes`) is called as CS180 part B's UNets are:
    t a float tensor (N,), t/T for "ddpm" (ε-prediction, the course's schedule unless `schedule`
    says otherwise: `linear_schedule(T, beta_start, beta_end)` or ᾱ as a list or tensor), flow time
    in [0, 1] for "flow" (v-prediction, x₀ = noise, x₁ = data); c one-hot (N, num_classes), zero
    for classifier-free guidance's unconditional pass. `sampler`: for ddpm one of ddpm (default),
    ddim (with `eta`), dpm++2m, dpm++2m-sde, euler, heun; for flow euler (default), heun, midpoint.
    `num` images (default 16), or `per_class` (default 1) of each of `classes`, guided at
    `guidance` (default 5). x_T is drawn where the model's weights are (or on `device`; the model is
    not moved), and handed to it in its weights' dtype. An `nn.Module` samples in eval mode and is
    put back as it was. Raises `UserFacingError` (one line) for a bad argument before any step;
    `ModelOutputError` for an output of the wrong shape or with NaN, and `ModelCallError` for an
    exception of the model's own, at the step it happens.
    """
    request = ModelSampleRequest(
        model=model,
        objective=objective,
        shape=shape,
        num=num,
        classes=classes,
        per_class=per_class,
        num_classes=num_classes,
        guidance=guidance,
        sampler=sampler,
        steps=steps,
        eta=eta,
        seed=seed,
        schedule=schedule,
        value_range=value_range,
        device=device,
        name=name,
    )
    run = request.start()
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        frames = list(tqdm(run.frames, total=run.num_frames, desc=str(run.meta["model"]), disable=not progress))
    finally:
        if was_training:
            model.train()
    return Run(Trajectory(meta=run.meta, frames=frames, labels=run.labels))


class Recorder(FrameRecorder):
    """Your own sampling loop, recorded: `add(t=..., x_t=..., x0_hat=..., noise_hat=...)` at each
    step (extras by name), and `add(t=..., x_t=...)` for the final sample; then `save` or `run`."""

    @property
    def run(self) -> Run:
        return Run(self.trajectory)

    def save(self, path: str | os.PathLike) -> Path:
        return self.run.save(path)

    def _repr_html_(self) -> str:
        return self.run._repr_html_()


def linear_schedule(T: int = DEFAULT_T, beta_start: float = DEFAULT_BETA_START, beta_end: float = DEFAULT_BETA_END):  # noqa: N803
    """The DDPM schedule of CS180 part B, β_t linear from `beta_start` to `beta_end` over T steps."""
    return checked_linear_schedule(T, beta_start, beta_end)


def load(path: str | os.PathLike) -> Run:
    """A run saved by `save`, the app or the command line."""
    return Run(load_trajectory(path))
