"""The forward process, checked statistically.

With n independent draws, the sample mean of x_t has standard error sqrt((1 - abar) / n) and the
sample variance has relative standard error about sqrt(2 / n). The tolerances below are five
standard errors, so a correct implementation fails with probability well under 1e-5.
"""

import math

import pytest
import torch

from diffusion_stepper.core.diffusion.schedules import LinearBetaSchedule, forward_process

N = 200_000


@pytest.mark.parametrize("t", [1, 50, 150, 300])
def test_forward_marginal_mean_and_variance(t):
    schedule = LinearBetaSchedule.create()
    alpha_bar = schedule.alpha_bar(t)
    generator = torch.Generator().manual_seed(t)
    x0 = torch.full((N,), 0.7, dtype=torch.float64)
    noise = torch.randn(N, generator=generator, dtype=torch.float64)
    x_t = forward_process(x0, alpha_bar, noise)
    mean_tolerance = 5 * math.sqrt((1 - alpha_bar) / N)
    assert x_t.mean().item() == pytest.approx(math.sqrt(alpha_bar) * 0.7, abs=mean_tolerance)
    assert x_t.var().item() == pytest.approx(1 - alpha_bar, rel=5 * math.sqrt(2 / N))


def test_per_item_alpha_bar_broadcasts_over_images():
    x0 = torch.ones(3, 1, 2, 2)
    noise = torch.zeros(3, 1, 2, 2)
    alpha_bars = torch.tensor([1.0, 0.25, 0.0])
    x_t = forward_process(x0, alpha_bars, noise)
    assert x_t[:, 0, 0, 0].tolist() == pytest.approx([1.0, 0.5, 0.0])
