"""Fitting a batch of images into a box: how many columns, and at what scale.

The app's panels and the exports both lay a batch out as a grid. The near-square grid is rarely
the best one: a wide panel wants a wide grid and a tall one a tall grid. `best_grid` tries every
column count and keeps the one that shows each image largest. A batch that repeats classes
(4 samples of each digit) keeps one column per class, so that a column reads as one digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SMALLEST_FRACTIONAL_SCALE = 1.5  # below it a fitted panel shows at a whole number (see screen_scale)
GRID_PADDING = 1  # background pixels between and around the images of a grid: a thin line, even when zoomed


@dataclass(frozen=True)
class GridFit:
    columns: int
    rows: int
    scale: float  # screen pixels per image pixel at which the grid fills the box


def grid_shape(
    count: int, columns: int, tile_height: int, tile_width: int, padding: int = GRID_PADDING
) -> tuple[int, int]:
    """(height, width) in image pixels of `count` tiles in `columns` columns."""
    rows = math.ceil(count / columns)
    return rows * (tile_height + padding) + padding, columns * (tile_width + padding) + padding


def class_columns(labels: torch.Tensor | None, count: int) -> int | None:
    """One column per class when some class has several images; None when any arrangement reads."""
    if labels is None or len(labels) != count:
        return None
    classes = len(torch.unique(labels))
    return classes if classes < count else None


def best_grid(
    count: int,
    tile_height: int,
    tile_width: int,
    box_width: float,
    box_height: float,
    labels: torch.Tensor | None = None,
    padding: int = GRID_PADDING,
) -> GridFit:
    """The column count that shows `count` tiles largest in a box of that size, and the scale."""
    fixed = class_columns(labels, count)
    candidates = [fixed] if fixed else range(1, max(1, count) + 1)
    best = None
    for columns in candidates:
        height, width = grid_shape(count, columns, tile_height, tile_width, padding)
        scale = min(box_width / width, box_height / height)
        if best is None or scale > best.scale:
            best = GridFit(columns, math.ceil(count / columns), scale)
    return best


def screen_scale(fit_scale: float) -> float:
    """The zoom a fitted panel shows at: the exact fit from 1.5× up (a projector needs every pixel
    it can get, and from there on the uneven nearest-neighbour pixels of 1 and 2 screen pixels
    matter less than the size: six runs of ten digits at 1366×768 show at 1.9×), a whole number
    below; never below 1."""
    return fit_scale if fit_scale >= SMALLEST_FRACTIONAL_SCALE else max(1.0, float(math.floor(fit_scale)))
