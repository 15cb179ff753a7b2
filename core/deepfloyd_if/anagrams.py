"""Visual anagrams: the views (orthogonal transforms, so pure noise stays pure noise), the
noise estimate that averages one prompt per view (`ViewAverage`), and the anagram's turn from its
first reading into its second, for a slide (`view_turn`, `anagram_turn`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from diffusion_stepper.core.diffusion.sampling import NoiseEstimate
from diffusion_stepper.core.frames import Frame, Trajectory
from diffusion_stepper.core.run_meta import VIEW_NAMES


@dataclass(frozen=True)
class View:
    """An orthogonal transform of the image, so pure noise stays pure noise under it."""

    name: str
    apply: Callable[[torch.Tensor], torch.Tensor]
    invert: Callable[[torch.Tensor], torch.Tensor]  # spatial part only
    negates: bool = False  # colour negation: the noise estimate flips sign, the variance does not


def _jigsaw_permutation(patches: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed shuffle of a patches x patches grid (reproducible: its own generator)."""
    order = torch.randperm(patches * patches, generator=torch.Generator().manual_seed(seed))
    return order, torch.argsort(order)


def _permute_patches(x: torch.Tensor, order: torch.Tensor, patches: int = 4) -> torch.Tensor:
    n, c, h, w = x.shape
    if h % patches or w % patches:
        raise ValueError(f"the jigsaw view needs a size divisible by {patches}, got {h}x{w}")
    ph, pw = h // patches, w // patches
    grid = x.reshape(n, c, patches, ph, patches, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, patches * patches, c, ph, pw)
    grid = grid[:, order.to(x.device)]
    return grid.reshape(n, patches, patches, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def make_view(name: str) -> View:
    """identity, flip (upside down, the course's), rot90, rot180, rot270, negate, jigsaw."""
    spatial = {
        "identity": (lambda x: x, lambda x: x),
        "flip": (lambda x: torch.flip(x, dims=[2]), lambda x: torch.flip(x, dims=[2])),
        "rot90": (lambda x: torch.rot90(x, 1, dims=[2, 3]), lambda x: torch.rot90(x, -1, dims=[2, 3])),
        "rot180": (lambda x: torch.rot90(x, 2, dims=[2, 3]), lambda x: torch.rot90(x, -2, dims=[2, 3])),
        "rot270": (lambda x: torch.rot90(x, -1, dims=[2, 3]), lambda x: torch.rot90(x, 1, dims=[2, 3])),
    }
    if name in spatial:
        forward, inverse = spatial[name]
        return View(name, forward, inverse)
    if name == "negate":
        return View(name, lambda x: -x, lambda x: x, negates=True)
    if name == "jigsaw":
        order, inverse_order = _jigsaw_permutation()
        return View(name, lambda x: _permute_patches(x, order), lambda x: _permute_patches(x, inverse_order))
    raise ValueError(f"unknown view {name!r}; choose from {', '.join(VIEW_NAMES)}")


TURN_DEGREES = {"rot90": -90.0, "rot180": 180.0, "rot270": 90.0}  # in affine_grid's sense, to end on torch.rot90's


def view_turn(image: torch.Tensor, name: str, num_frames: int = 24) -> torch.Tensor:
    """[num_frames, N, C, H, W]: the image turning from its first reading into `name`'s view,
    for showing an anagram. Rotations turn, a flip folds over the horizontal axis, negation and
    jigsaw cross-fade; the last frame is exactly the view."""
    target = make_view(name).apply(image)
    low = image.amin(dim=(1, 2, 3), keepdim=True)  # outside the turned square: the image's minimum, as background
    frames = []
    for index in range(num_frames):
        f = index / max(1, num_frames - 1)
        if name in TURN_DEGREES or name == "flip":
            if name == "flip":  # fold: the vertical axis scales from 1 through 0 to -1
                matrix = [[1.0, 0.0, 0.0], [0.0, math.cos(math.pi * f), 0.0]]
            else:
                angle = math.radians(TURN_DEGREES[name] * f)
                matrix = [[math.cos(angle), math.sin(angle), 0.0], [-math.sin(angle), math.cos(angle), 0.0]]
            theta = torch.tensor(matrix, dtype=image.dtype, device=image.device).expand(image.shape[0], 2, 3)
            grid = F.affine_grid(theta, list(image.shape), align_corners=False)
            frames.append(F.grid_sample(image - low, grid, align_corners=False) + low)
        else:
            frames.append((1 - f) * image + f * target)
    frames[-1] = target
    return torch.stack(frames)


class ViewAverage:
    """Visual anagrams: each view of x_t gets its own prompt's estimate, mapped back and averaged.

        eps = mean_i  view_i^-1( eps(view_i(x_t), prompt_i) )

    The learned-variance channels are mapped back and averaged the same way (never negated).
    Each view's mapped-back noise estimate is in the extras as eps_view1, eps_view2, ...
    """

    def __init__(
        self, views: Sequence[View], estimates: Sequence[Callable[[torch.Tensor, float], NoiseEstimate]], channels: int
    ):
        if not 2 <= len(views) == len(estimates) <= 4:
            raise ValueError("visual anagrams take 2 to 4 views, each with its own prompt")
        self.views = list(views)
        self.estimates = list(estimates)
        self.channels = channels

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        mapped_back = []
        extras: dict[str, torch.Tensor] = {}
        coeffs: dict[str, float] = {}
        for number, (view, estimate) in enumerate(zip(self.views, self.estimates), 1):
            result = estimate(view.apply(x), t)
            value = view.invert(result.value)
            if view.negates:
                value = torch.cat([-value[:, : self.channels], value[:, self.channels :]], dim=1)
            mapped_back.append(value)
            extras[f"eps_view{number}"] = value[:, : self.channels]
            coeffs.update(result.coeffs)
        return NoiseEstimate(torch.stack(mapped_back).mean(dim=0), extras=extras, coeffs=coeffs)


def anagram_turn(trajectory: Trajectory, num_frames: int = 24) -> Trajectory:
    """A visual anagram's result turning into its second view, as a trajectory of its own
    (x_t: the turning image), to export like any run: the illusion's reveal for a slide."""
    record = trajectory.run_meta
    views = record.views or ()
    if len(views) < 2:
        raise ValueError("the anagram turn is for visual anagram runs (task anagram), which record their views")
    turning = view_turn(trajectory.final_sample, views[1], num_frames)
    frames = [
        Frame(index=i, t=float(i), x_t=image, x0_hat=image, coeffs={"t": float(i)}) for i, image in enumerate(turning)
    ]
    meta = {
        **trajectory.meta,
        "algorithm": "anagram-turn",
        "params": {**record.params, "turn_to": views[1]},  # every setting the run had, and the turn
    }
    return Trajectory(meta, frames, trajectory.labels, trajectory.data)
