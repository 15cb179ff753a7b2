"""Runs of a user's own model (`ds.sample`) and of a student's own loop (`ds.Recorder`) open in
the app: their pictures in the Step view (RGB as RGB), the update rule with its numbers, the
histograms, stepping to the end."""

from __future__ import annotations

import torch

import diffusion_stepper as ds
from diffusion_stepper.visualizer.views.common import NOISE
from tests.visualizer.conftest import action, displayed, settle


def rgb_model(x, t):
    """A toy ε-model: colour channels pulled apart, so RGB shows."""
    return 0.5 * x + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)


def test_an_rgb_run_of_your_own_model_opens_in_the_step_view(qtbot, shared_window, tmp_path):
    run = ds.sample(rgb_model, shape=(3, 32, 32), num=4, sampler="ddim", steps=10, value_range=(-1, 1),
                    name="my cifar unet", progress=False)  # fmt: skip
    assert shared_window.files.open_trajectory(run.save(tmp_path / "mine.npz"))
    settle(qtbot)
    picture = displayed(shared_window, "x_t")
    assert picture.ndim == 3 and picture.shape[2] == 3  # a colour picture, not a grey one
    assert not (picture[..., 0] == picture[..., 1]).all()
    equation = shared_window.step_view.equation.text
    assert "x̂₀" in equation and "ᾱ_t" in equation  # DDIM's rule with this step's numbers
    action(shared_window, "&Last frame").trigger()
    settle(qtbot)
    assert "final sample" in shared_window.step_view.equation.text
    assert shared_window.session.active.trajectory.run_meta.model == "my cifar unet"


def test_a_recorded_loop_opens_and_steps_in_the_app(qtbot, shared_window, tmp_path):
    schedule = ds.linear_schedule(20)
    recorder = ds.Recorder(objective="ddpm", value_range=(0, 1), name="homework loop", schedule=schedule)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((6, 1, 28, 28), generator=generator)
    for t in range(20, 0, -1):
        eps = 0.9 * x
        x0 = x - eps
        recorder.add(t=t, x_t=x, x0_hat=x0, noise_hat=eps)
        x = 0.95 * x
    recorder.add(t=0, x_t=x)
    assert shared_window.files.open_trajectory(recorder.save(tmp_path / "homework.npz"))
    settle(qtbot)
    session = shared_window.session
    assert displayed(shared_window, "x_t").shape[:2] == displayed(shared_window, NOISE).shape[:2]
    for _ in range(3):
        action(shared_window, "&Next frame").trigger()
    settle(qtbot)
    assert session.frame_index(session.active) == 3
    equation = shared_window.step_view.equation.text
    assert "your own loop" in equation and "ᾱ_t = 0.8" in equation  # ᾱ_t from the schedule given
