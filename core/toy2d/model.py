"""The 2D lab's network: a small MLP that reads a point, its time and optionally its class.

It has the course UNet's calling convention, `net(x, t, c)` with x [N, 2] (or the frames' image
layout [N, 2, 1, 1], answered in the same layout), t [N, 1] in [0, 1]
and c [N, K] one-hot (the zero vector: no class), so the shared objectives train it and the
shared sampling loop walks it (see core.diffusion.objectives and core.diffusion.sampling).
Time enters as sine and cosine features at several frequencies, so a small network can tell
t = 0.50 from t = 0.52.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TIME_FREQUENCIES = 8  # sin and cos of 2π·2^k·t for k < 8: 16 time features


def time_features(t: torch.Tensor) -> torch.Tensor:
    """[N, 1] in [0, 1] -> [N, 2 * TIME_FREQUENCIES]."""
    scales = 2.0 * math.pi * 2.0 ** torch.arange(TIME_FREQUENCIES, device=t.device, dtype=t.dtype)
    angles = t * scales[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class PointMLP(nn.Module):
    def __init__(self, hidden: int = 128, depth: int = 3, num_classes: int = 0):
        super().__init__()
        if hidden < 1 or depth < 1 or num_classes < 0:
            raise ValueError("the MLP needs hidden >= 1, depth >= 1 and num_classes >= 0")
        self.hidden, self.depth, self.num_classes = hidden, depth, num_classes
        inputs = 2 + 2 * TIME_FREQUENCIES + num_classes
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [nn.Linear(inputs if index == 0 else hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, 2))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x.reshape(-1, 2), time_features(t)]
        if self.num_classes:
            parts.append(torch.zeros(x.shape[0], self.num_classes, device=x.device) if c is None else c)
        return self.layers(torch.cat(parts, dim=1)).reshape(x.shape)

    def architecture(self) -> dict:
        return {"name": "point-mlp", "hidden": self.hidden, "depth": self.depth, "num_classes": self.num_classes}
