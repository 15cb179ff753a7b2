import pytest
import torch

from diffusion_stepper.core.diffusion.schedules import (
    LinearBetaSchedule,
    evenly_spaced_timesteps,
    flow_time_grid,
    strided_timesteps,
)


def test_linear_beta_recipe_matches_the_course():
    schedule = LinearBetaSchedule.create()
    assert schedule.T == 300
    betas = schedule.betas
    assert betas[0].item() == pytest.approx(0.0, abs=1e-15)
    assert betas[1].item() == pytest.approx(1e-4, rel=1e-9)
    assert betas[300].item() == pytest.approx(0.02, rel=1e-9)
    spacing = betas[2:] - betas[1:-1]
    assert torch.allclose(spacing, torch.full_like(spacing, (0.02 - 1e-4) / 299), rtol=1e-6)
    # alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s, recomputed here by hand.
    running = 1.0
    for t in range(1, 301):
        beta = 1e-4 + (0.02 - 1e-4) * (t - 1) / 299
        running *= 1.0 - beta
        assert schedule.alpha_bar(t) == pytest.approx(running, rel=1e-9)
        assert schedule.alphas[t].item() == pytest.approx(1.0 - beta, rel=1e-9)
    assert schedule.alpha_bar(0) == 1.0
    assert schedule.alpha_bar(300) == pytest.approx(0.0483, abs=5e-4)  # nearly pure noise at t = T


def test_custom_length_and_bad_length():
    assert LinearBetaSchedule.create(T=10).T == 10
    with pytest.raises(ValueError):
        LinearBetaSchedule.create(T=0)


def test_strided_timesteps_of_part_a():
    steps = strided_timesteps(990, 30)
    assert steps[:3] == [990, 960, 930]
    assert steps[-2:] == [30, 0]
    assert len(steps) == 34
    assert strided_timesteps(100, 40) == [100, 60, 20, 0]
    with pytest.raises(ValueError):
        strided_timesteps(990, 0)


def test_evenly_spaced_timesteps_cover_the_chain():
    assert evenly_spaced_timesteps(300, 300) == list(range(300, -1, -1))
    short = evenly_spaced_timesteps(300, 10)
    assert len(short) == 11 and short[0] == 300 and short[-1] == 0
    assert all(a > b for a, b in zip(short, short[1:]))
    with pytest.raises(ValueError):
        evenly_spaced_timesteps(300, 301)
    with pytest.raises(ValueError):
        evenly_spaced_timesteps(300, 0)


def test_flow_time_grid():
    assert flow_time_grid(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(flow_time_grid()) == 51
    with pytest.raises(ValueError):
        flow_time_grid(0)
