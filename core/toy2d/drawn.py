"""A distribution the lecturer draws with the mouse: the drawn points, each the centre of a small
Gaussian, so it is a `GaussianMixture` and its noised marginals, score and velocity are exact.

Saved as a small JSON file (never code):
  {"format": "diffusion-stepper-drawn-2d", "version": 1, "std": 0.12, "points": [[x, y], ...]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from diffusion_stepper.core import schema
from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.errors import DataError, UserFacingError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.limits import DRAWN_POINTS, DRAWN_SPREAD, NAME_CHARS, out_of_range
from diffusion_stepper.core.schema import SchemaError
from diffusion_stepper.core.toy2d.datasets import DATASETS, VIEW_EXTENT, Toy2DDataset
from diffusion_stepper.core.toy2d.mixture import GaussianMixture

DRAWN_FORMAT = "diffusion-stepper-drawn-2d"
DRAWN_VERSION = 1
DRAWN_STD = 0.12  # each drawn point's spread: a stroke reads as a band, not beads
DRAWN_SUFFIX = ".json"


def drawn_mixture(points: torch.Tensor, std: float = DRAWN_STD) -> GaussianMixture:
    """An equal mixture of N(p, std² I) over the drawn points [K, 2]."""
    count = points.shape[0]
    if out_of_range(count, DRAWN_POINTS):
        raise DataError(f"a drawn distribution needs {DRAWN_POINTS[0]} to {DRAWN_POINTS[1]:,} points, got {count:,}")
    return GaussianMixture(
        points.to(torch.float64),
        torch.full((count,), float(std), dtype=torch.float64),
        torch.full((count,), 1.0 / count, dtype=torch.float64),
    )


def drawn_dataset(points: torch.Tensor, name: str = "drawn", std: float = DRAWN_STD) -> Toy2DDataset:
    """The drawing as a dataset named `name` (its file's name), which runs and checkpoints record:
    a name longer than they may hold is refused here, before anything is trained or sampled."""
    if len(name) > NAME_CHARS:
        raise DataError(
            f"a drawing's name may have at most {NAME_CHARS} characters (runs and checkpoints record it), "
            f"got {len(name)}: rename {name[:30]}..."
        )
    mixture = drawn_mixture(points, std)
    return Toy2DDataset(name, f"Drawn ({name})", 0, mixture.sample, mixture)


def save_drawn(path: str | os.PathLike, points: torch.Tensor, std: float = DRAWN_STD) -> Path:
    """Write the drawn points atomically (checked first, so a bad drawing never replaces a good file)."""
    drawn_mixture(points, std)
    document = {
        "format": DRAWN_FORMAT,
        "version": DRAWN_VERSION,
        "std": float(std),
        "points": [[round(float(x), 4), round(float(y), 4)] for x, y in points.tolist()],
    }
    target = Path(path)
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(document))
    return target


def _drawn_reader() -> schema.Reader:
    coordinate = schema.number(-VIEW_EXTENT, VIEW_EXTENT)
    point = schema.list_of(coordinate, max_length=2, length=2)
    return schema.record(
        {
            "format": schema.text((DRAWN_FORMAT,)),
            "version": schema.number(DRAWN_VERSION, DRAWN_VERSION, integer=True),
            "std": schema.number(*DRAWN_SPREAD),
            "points": schema.list_of(point, max_length=DRAWN_POINTS[1], min_length=DRAWN_POINTS[0]),
        },
        required=("format", "version", "std", "points"),
    )


def load_drawn(path: str | os.PathLike) -> tuple[torch.Tensor, float]:
    """(points [K, 2], std) from a drawn-distribution file; one `DataError` line if it is not one."""
    path = check_input_file(path, DataError, max_bytes=1024 * 1024)
    try:
        document = _drawn_reader()(schema.parse_json(path.read_text(encoding="utf-8"), "drawing"), "drawing")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable drawn distribution ({exc})") from None
    except SchemaError as exc:
        raise DataError(f"{path}: not a drawn distribution of diffusion-stepper ({exc})") from None
    return torch.tensor(document["points"], dtype=torch.float32), float(document["std"])


def resolve_dataset(name_or_path: str) -> Toy2DDataset:
    """A dataset by its name, or a drawn distribution by its file's path (see above)."""
    if name_or_path in DATASETS:
        return DATASETS[name_or_path]
    if not name_or_path.endswith(DRAWN_SUFFIX):
        raise UserFacingError(
            f"unknown dataset {name_or_path!r}; the datasets are {', '.join(DATASETS)}, "
            f"or the path of a drawn distribution ({DRAWN_SUFFIX})"
        )
    points, std = load_drawn(name_or_path)
    return drawn_dataset(points, Path(name_or_path).stem, std)
