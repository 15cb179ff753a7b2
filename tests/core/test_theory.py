"""Histogram densities and theory curves, and the schedule the plot draws."""

import math

import numpy as np
import pytest
import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective
from diffusion_stepper.core.diffusion.schedules import LinearBetaSchedule
from diffusion_stepper.core.diffusion.theory import (
    CLEAN_EXTRA,
    HISTOGRAM_EDGES,
    density_histogram,
    frame_histograms,
    mixture_density,
    normal_pdf,
    schedule_curves,
)
from diffusion_stepper.core.frames import Frame, Trajectory
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist
from diffusion_stepper.core.run_meta import RunMeta


def sampled(checkpoint, **kwargs) -> Trajectory:
    run = sample_mnist(load_checkpoint(checkpoint), **kwargs)
    return Trajectory(run.meta, list(run.frames), run.labels)


def test_density_histogram_integrates_to_the_share_inside_the_edges():
    values = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    density = density_histogram(values)
    assert (density * np.diff(HISTOGRAM_EDGES)).sum() == pytest.approx(1.0, abs=1e-3)
    centres = 0.5 * (HISTOGRAM_EDGES[1:] + HISTOGRAM_EDGES[:-1])
    assert np.abs(density - normal_pdf(centres)).max() < 0.02
    outside = density_histogram(torch.full((10,), 9.0))
    assert outside.sum() == 0  # values off the chart are not renormalized into it


def test_mixture_density_is_the_forward_marginal():
    grid = np.linspace(-6, 6, 2001)
    step = grid[1] - grid[0]
    clean = torch.tensor([0.0, 0.0, 0.0, 1.0])
    density = mixture_density(grid, clean, a=0.5, b=0.8)
    assert density.sum() * step == pytest.approx(1.0, abs=1e-3)
    expected = 0.75 * normal_pdf(grid, 0.0, 0.8) + 0.25 * normal_pdf(grid, 0.5, 0.8)
    assert np.allclose(density, expected, atol=1e-3)


def test_sampling_from_noise_overlays_n01_at_the_start_only(tiny_checkpoints):
    trajectory = sampled(tiny_checkpoints["class-ddpm"], classes=[1, 2], steps=5)
    start = frame_histograms(trajectory, trajectory[0])
    assert start.x_t_theory is not None and np.allclose(start.x_t_theory.y, normal_pdf(start.x_t_theory.x))
    assert start.noise_theory is not None and start.noise_name == "eps_hat"
    assert np.array_equal(start.x_t, density_histogram(trajectory[0].x_t))
    middle = frame_histograms(trajectory, trajectory[2])
    assert middle.x_t_theory is None and "unknown" in middle.x_t_note
    final = frame_histograms(trajectory, trajectory[-1])
    assert final.noise is None  # the last frame has no estimate


def test_known_clean_image_gives_the_forward_marginal(tiny_checkpoints):
    clean = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    trajectory = sampled(tiny_checkpoints["single-step"], clean_images=clean, sigma=0.5)
    assert torch.equal(trajectory[0].extras[CLEAN_EXTRA], clean)
    histograms = frame_histograms(trajectory, trajectory[0])
    theory = histograms.x_t_theory
    assert theory is not None
    assert np.allclose(theory.y, mixture_density(theory.x, clean, 1.0, 0.5))
    # and it matches the data it describes
    centres = 0.5 * (HISTOGRAM_EDGES[1:] + HISTOGRAM_EDGES[:-1])
    assert np.abs(histograms.x_t - mixture_density(centres, clean, 1.0, 0.5)).max() < 0.1


def test_schedule_curves_are_the_runs_schedule(tiny_checkpoints):
    trajectory = sampled(tiny_checkpoints["class-ddpm"], classes=[0], steps=4)
    curves = schedule_curves(trajectory.run_meta)
    expected = DDPMObjective(LinearBetaSchedule.create(T=20)).schedule.alpha_bars.numpy()
    assert np.allclose(curves.curves[0].y, expected)
    assert np.allclose(curves.curves[1].y, np.sqrt(1 - expected))
    flow = schedule_curves(RunMeta.of({"algorithm": "flow+cfg"}))
    assert flow.curves[0].y[-1] == 1.0 and flow.curves[1].y[0] == 1.0
    assert schedule_curves(RunMeta.of({"algorithm": "single-step"})) is None


def test_flow_marginal_coefficients():
    from diffusion_stepper.core.diffusion.theory import marginal_coefficients

    frame = Frame(index=3, t=0.25, x_t=torch.zeros(1, 1, 2, 2), x0_hat=torch.zeros(1, 1, 2, 2))
    assert marginal_coefficients(RunMeta.of({"algorithm": "flow"}), frame) == (0.25, 0.75)
    frame.coeffs = {"alpha_bar_t": 0.36}
    assert marginal_coefficients(RunMeta.of({"algorithm": "ddpm+cfg"}), frame) == pytest.approx((0.6, 0.8))
    assert math.isclose(marginal_coefficients(RunMeta.of({"algorithm": "ddpm"}), frame)[1], 0.8)


def test_the_noise_density_is_labelled_as_the_true_noise_and_flow_says_x1(tiny_checkpoints):
    guided = sampled(tiny_checkpoints["class-ddpm"], classes=[1, 2], steps=5, guidance=5.0)
    histograms = frame_histograms(guided, guided[1])
    assert histograms.noise_theory.label == "N(0, 1): the true ε"  # not a claim about the guided ε̂
    flow = sampled(tiny_checkpoints["class-flow"], classes=[3], steps=4)
    assert "x_0 ~ N(0, 1) (t = 0)" in frame_histograms(flow, flow[0]).x_t_note
    assert "x1 is unknown" in frame_histograms(flow, flow[2]).x_t_note


def test_each_run_names_its_fields_by_what_they_hold():
    from diffusion_stepper.core.diffusion.labels import field_title

    assert field_title(RunMeta.of({"algorithm": "ddpm+cfg"}), "x0_hat") == "x̂₀  clean estimate"
    assert field_title(RunMeta.of({"algorithm": "flow+cfg"}), "x0_hat").startswith("x̂₁")
    assert field_title(RunMeta.of({"algorithm": "flow"}), "x0_hat", ascii=True) == "x1 estimate (data)"
    noising = RunMeta.of({"algorithm": "noising"})
    assert field_title(noising, "eps_hat") == "ε  the noise added"  # the true ε, not an estimate
    assert field_title(RunMeta.of({"algorithm": "noising"}), "x0_hat") == "x  the clean digits"
    assert field_title(RunMeta.of({"algorithm": "if-forward"}), "x0_hat", ascii=True) == "x0 original"
    assert field_title(RunMeta.of({"algorithm": "ddpm"}), "eps_cond") is None  # extras have their own titles
