"""Pixels: how a field's values map to grey levels, batches tiled into grids, the fonts and
colours of every picture the app writes, and a plain PNG grid of samples. Shared by the exports,
the charts, the training's epoch grids and the GUI's panels."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFont

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.formats.layout import GRID_PADDING
from diffusion_stepper.core.frames import IMAGE_FIELDS, NOISE_FIELDS, Frame, Trajectory

NOISE_DISPLAY_RANGE = (-3.0, 3.0)  # eps ~ N(0, 1) and v = x1 - x0 fit here but for rare tails

GAP_DISPLAY_RANGE = (0.0, 0.5)  # |ε_c − ε_u|: black where the condition changes nothing (MNIST's peak ≈ 0.5)

BACKGROUND = (24, 24, 24)

TEXT_COLOUR = (235, 235, 235)


def display_range(name: str, value_range: tuple[float, float]) -> tuple[float, float]:
    """The value range a panel maps to black..white: noise fields are centred on zero."""
    if name.endswith("_gap"):
        return GAP_DISPLAY_RANGE
    if name in NOISE_FIELDS or name == "noise" or name.startswith(("eps", "v_")):
        return NOISE_DISPLAY_RANGE
    if name == "mask":  # 0 and 1, whatever the images' range
        return (0.0, 1.0)
    if name == "noise_std":  # a step's σ: up to 1 on IF's cosine schedule at its strided first steps
        return (0.0, 1.0)
    return value_range


def to_uint8(images: torch.Tensor, low: float, high: float) -> np.ndarray:
    """[N, C, H, W] floats -> [N, H, W, 3] uint8, clipping to [low, high]."""
    scaled = ((images.float() - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    array = scaled.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array[..., :3]


def grid_columns(num_images: int, labels: torch.Tensor | None = None) -> int:
    """One column per class for class-conditioned runs, else a near-square grid."""
    if labels is not None and len(labels) == num_images:
        return max(1, min(num_images, len(torch.unique(labels))))
    return max(1, math.ceil(math.sqrt(num_images)))


def tile(images: np.ndarray, columns: int, padding: int = GRID_PADDING) -> np.ndarray:
    """[N, H, W, 3] -> one [rows*(H+p)+p, cols*(W+p)+p, 3] grid on the background colour."""
    count, height, width, _ = images.shape
    rows = math.ceil(count / columns)
    canvas = np.empty((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), np.uint8)
    canvas[...] = BACKGROUND
    for i in range(count):
        row, column = divmod(i, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = images[i]
    return canvas


def text_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def shown_images(trajectory: Trajectory, frame: Frame, name: str) -> torch.Tensor:
    """The images a panel shows for `frame`. The final frame has no estimate of its own (its noise
    estimate is zero): its noise panels and the extras it lacks show the last step's, so that the
    last picture of an export is the result beside the estimate that made it."""
    source = frame
    lacks_estimate = name in NOISE_FIELDS or (name not in IMAGE_FIELDS and name not in frame.extras)
    if frame.coeffs.get("final") and 0 < frame.index < len(trajectory) and lacks_estimate:
        source = trajectory[frame.index - 1]
    try:
        return source.image(name)
    except KeyError:  # an extra no frame around carries: blank
        return torch.zeros_like(frame.x_t)


def shown_tiles(trajectory: Trajectory, frame: Frame, name: str) -> np.ndarray:
    """A panel's images of `frame` as [N, H, W, 3] uint8, mapped from the panel's display range."""
    low, high = display_range(name, trajectory.value_range)
    return to_uint8(shown_images(trajectory, frame, name), low, high)


def write_sample_grid(
    images: torch.Tensor, path: str | os.PathLike, labels: torch.Tensor | None = None, value_range=(0.0, 1.0)
) -> Path:
    """A plain PNG grid of samples (one column per class when labelled), at their native size."""
    grid = tile(to_uint8(images, *value_range), grid_columns(images.shape[0], labels))
    target = Path(path)
    with atomic_path(target) as temporary:
        Image.fromarray(grid).save(temporary, format="PNG")
    return target
