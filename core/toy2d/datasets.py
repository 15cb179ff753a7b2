"""The 2D lab's data: the distributions lectures on diffusion and flow matching draw in the plane.

Each dataset draws points [N, 2] from an explicit generator (the same seed gives the same points)
and, where it has classes, the class of each point (each moon, each circle, each Gaussian), for
class conditioning and guidance. All are centred and spread over about [-2.5, 2.5]², a scale
the noise N(0, I) covers. The 8 Gaussians are a `GaussianMixture`, so their noised marginals,
score and velocity are known exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffusion_stepper.core.toy2d.mixture import GaussianMixture

# The plane the lab shows: [-VIEW_EXTENT, VIEW_EXTENT]² holds the data and nearly all of N(0, I)
VIEW_EXTENT = 3.5

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Toy2DDataset:
    name: str  # the CLI's word
    title: str  # how the app labels it
    num_classes: int  # 0: unlabelled
    draw: Sampler
    mixture: GaussianMixture | None = None  # the exact distribution, where it is a Gaussian mixture

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        points, labels = self.draw(count, generator)
        return points.float(), labels


def _uniform(count: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(count, generator=generator, dtype=torch.float64)


def _noise(count: int, generator: torch.Generator, scale: float) -> torch.Tensor:
    return scale * torch.randn((count, 2), generator=generator, dtype=torch.float64)


def two_moons(count: int, generator: torch.Generator, noise: float = 0.08) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half circles (scikit-learn's shape), class = which moon."""
    labels = (torch.rand(count, generator=generator) < 0.5).long()
    angle = math.pi * _uniform(count, generator)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1.0 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    points = torch.where(labels[:, None] == 0, upper, lower) + _noise(count, generator, noise)
    return 1.6 * (points - torch.tensor([0.5, 0.25], dtype=torch.float64)), labels


def swiss_roll(count: int, generator: torch.Generator, noise: float = 0.25) -> tuple[torch.Tensor, None]:
    """A spiral of one and a half turns."""
    angle = 1.5 * math.pi * (1.0 + 2.0 * _uniform(count, generator))
    points = torch.stack([angle * torch.cos(angle), angle * torch.sin(angle)], dim=1) + _noise(count, generator, noise)
    return points / 5.0, None


def checkerboard(count: int, generator: torch.Generator) -> tuple[torch.Tensor, None]:
    """Uniform on the dark squares of a 4 × 4 board over [-2, 2]²."""
    x = 4.0 * _uniform(count, generator) - 2.0
    column = torch.floor(x + 2.0)
    row = torch.randint(0, 2, (count,), generator=generator).double() * 2.0 + torch.remainder(column, 2.0)
    y = row - 2.0 + _uniform(count, generator)
    return torch.stack([x, y], dim=1), None


def circles(count: int, generator: torch.Generator, noise: float = 0.06) -> tuple[torch.Tensor, torch.Tensor]:
    """Two concentric circles, radii 1 and 2, class = which circle."""
    labels = (torch.rand(count, generator=generator) < 0.5).long()
    angle = 2.0 * math.pi * _uniform(count, generator)
    radius = 1.0 + labels.double()
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return points + _noise(count, generator, noise), labels


def eight_gaussians_mixture(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """Eight equal Gaussians on a circle, class k = the k-th, counter-clockwise from +x."""
    angles = torch.arange(8, dtype=torch.float64) * (2.0 * math.pi / 8.0)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(
        means,
        torch.full((8,), std, dtype=torch.float64),
        torch.full((8,), 1.0 / 8, dtype=torch.float64),
        torch.arange(8),
    )


EIGHT_GAUSSIANS = eight_gaussians_mixture()

DATASETS = {
    dataset.name: dataset
    for dataset in (
        Toy2DDataset("moons", "Two moons", 2, two_moons),
        Toy2DDataset("swiss-roll", "Swiss roll", 0, swiss_roll),
        Toy2DDataset("8-gaussians", "8 Gaussians", 8, EIGHT_GAUSSIANS.sample, EIGHT_GAUSSIANS),
        Toy2DDataset("checkerboard", "Checkerboard", 0, checkerboard),
        Toy2DDataset("circles", "Concentric circles", 2, circles),
    )
}
