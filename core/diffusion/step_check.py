"""Checking a step's update on the stored frames: its terms (`core.updates`), evaluated on the
images the frames keep, against the next frame's x_t; what the equation panel's proof line says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.updates import NOISE, PREVIOUS, Term

# A deterministic step's terms land within this fraction of the largest |x| of the next x_t
EXACT_TOLERANCE = 1e-4


def why_unchecked(frames: Sequence[Frame], index: int) -> str | None:
    """Why frame `index`'s update cannot be checked against the frames stored, or None if it can:
    the next frame must be this step's result, and a term of the previous frame needs that frame."""
    frame = frames[index]
    if frame.update is None:
        return "this frame records no update" if not frame.coeffs.get("final") else "the last frame: no step left"
    if index + 1 >= len(frames):
        return "the next frame is not here yet"
    if "t_next" in frame.coeffs and not math.isclose(frames[index + 1].t, frame.coeffs["t_next"], abs_tol=1e-9):
        return "the frame in between was not kept (keep every K): the next frame stored is a later step's"
    if any(term.frame == PREVIOUS for term in frame.update.terms):
        if index == 0:
            return "the previous frame is not in the run"
        previous = frames[index - 1]
        if not math.isclose(previous.coeffs.get("t_next", math.nan), frame.t, abs_tol=1e-9):
            return "the previous step's frame was not kept (keep every K)"
    return None


def _term_image(frames: Sequence[Frame], index: int, term: Term) -> torch.Tensor:
    frame = frames[index + term.frame]
    image = frame.image(term.member).double()
    if term.scale:
        image = image * frames[index].image(term.scale).double()
    return image


@dataclass(frozen=True)
class StepCheck:
    """How the update's terms, evaluated on the stored images, meet the next frame's x_t."""

    largest_error: float  # max |Σ terms − x_t′| over the pixels where the update holds (deterministic part)
    largest_value: float  # max |x_t′| there, the scale the error is judged against
    noise_mean: float | None = None  # noisy steps: the residual divided by z's coefficient
    noise_std: float | None = None

    @property
    def exact(self) -> bool:
        return self.noise_mean is None

    def holds(self) -> bool:
        """Within EXACT_TOLERANCE for a deterministic step; a residual like N(0, 1) for a noisy one."""
        if self.exact:
            return self.largest_error <= EXACT_TOLERANCE * max(self.largest_value, 1.0)
        return abs(self.noise_mean) < 0.1 and abs(self.noise_std - 1.0) < 0.1

    def line(self) -> str:
        """The panel's proof line: what the check found, and whether that proves the numbers."""
        if self.exact:
            if self.holds():
                return f"check: these numbers give the next x_t to within {self.largest_error:.1e}"
            return f"check: these numbers DO NOT give the next x_t: they miss it by up to {self.largest_error:.2g}"
        found = f"(x_t′ − the terms without z) / z's coefficient: mean {self.noise_mean:+.2f}, std {self.noise_std:.2f}"
        return f"check: {found}" + (", so z ~ N(0, 1)" if self.holds() else ", NOT the N(0, 1) noise z should be")


def check_step(frames: Sequence[Frame], index: int) -> StepCheck | None:
    """The terms of frame `index`'s update evaluated on the stored images, against frame index + 1;
    None where the frames stored cannot show it (see `why_unchecked`)."""
    if why_unchecked(frames, index) is not None:
        return None
    frame, update = frames[index], frames[index].update
    target = frames[index + 1].x_t.double()
    deterministic = torch.zeros_like(target)
    noise_scale = torch.zeros_like(target)
    for term in update.terms:
        if term.member == NOISE:
            scale = frame.image(term.scale).double() if term.scale else torch.ones_like(target)
            noise_scale = noise_scale + term.coef * scale
        else:
            deterministic = deterministic + term.coef * _term_image(frames, index, term)
    where = torch.ones_like(target, dtype=torch.bool)
    if update.where:
        where = frame.image(update.where) > 0.5
    residual = (target - deterministic)[where]
    largest_value = float(target[where].abs().max()) if where.any() else 0.0
    noisy = noise_scale[where].abs() > 0
    if not bool(noisy.any()):
        return StepCheck(float(residual.abs().max()) if residual.numel() else 0.0, largest_value)
    noise = residual[noisy] / noise_scale[where][noisy]
    exact_part = residual[~noisy]
    largest_error = float(exact_part.abs().max()) if exact_part.numel() else 0.0
    return StepCheck(largest_error, largest_value, float(noise.mean()), float(noise.std()))
