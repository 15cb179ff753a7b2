"""How close a cloud of points is to a distribution: the energy distance.

    D²(P, Q) = 2·E|X − Y| − E|X − X′| − E|Y − Y′|,   X, X′ ~ P,   Y, Y′ ~ Q

It is zero only when P = Q and needs no density, so it judges any learned sampler against fresh
data. Two finite samples of the same distribution still differ by a little: the figure to compare
with is the distance between two fresh data samples of the same size (the floor).
"""

from __future__ import annotations

import torch


def _mean_distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> float:
    """E|A − B| over all pairs, in chunks so 5,000 × 5,000 pairs stay small in memory."""
    total = 0.0
    for start in range(0, a.shape[0], chunk):
        total += float(torch.cdist(a[start : start + chunk].double(), b.double()).sum())
    return total / (a.shape[0] * b.shape[0])


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The (squared) energy distance between two point clouds [N, 2] and [M, 2]."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two clouds of points [N, D], got {tuple(a.shape)} and {tuple(b.shape)}")
    return 2.0 * _mean_distance(a, b) - _mean_distance(a, a) - _mean_distance(b, b)
