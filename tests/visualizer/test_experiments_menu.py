"""The Experiments menu: each part B experiment in one click, shown in the Step or Compare view."""

import numpy as np
import pytest

from diffusion_stepper.core.mnist.experiments import (
    COURSE_SIGMAS,
    EXPERIMENTS,
    RACE_BUDGETS_IN_MENU,
    ExperimentOptions,
)
from diffusion_stepper.visualizer.main_window import COMPARE_TAB, STEP_TAB
from diffusion_stepper.visualizer.widgets.panels import render_grid
from tests.visualizer.conftest import displayed, settle, shown_columns, wait_until_sampled


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


@pytest.fixture
def tiny_experiments(window, tiny_checkpoints, mnist_dir, monkeypatch):
    """Point the window's experiments at tiny models and the real MNIST test digits."""
    options = ExperimentOptions(
        device="cpu",
        data_dir=str(mnist_dir),
        seed=2,
        single_step_checkpoint=str(tiny_checkpoints["single-step"]),
        pure_noise_checkpoint=str(tiny_checkpoints["single-step"]),
        ddpm_checkpoint=str(tiny_checkpoints["class-ddpm"]),
        flow_checkpoint=str(tiny_checkpoints["class-flow"]),
    )
    monkeypatch.setattr(window.sample_dock, "experiment_options", lambda: options)
    return window


def trigger(window, key):
    title = EXPERIMENTS[key].title
    action = next(a for a in window.actions() if a.text() == title)
    action.trigger()


def test_every_experiment_has_a_menu_entry_with_a_shortcut(window):
    texts = {action.text(): action for action in window.actions()}
    for experiment in EXPERIMENTS.values():
        if experiment.race:  # one entry per budget in the Samplers menu
            titles = [f"{experiment.title}, {nfe} evaluations each" for nfe in RACE_BUDGETS_IN_MENU]
        else:
            titles = [experiment.title if experiment.title in texts else experiment.title + "…"]
        for title in titles:
            assert title in texts and not texts[title].shortcut().isEmpty()


def test_noising_process_steps_through_the_sigmas(qtbot, window, tiny_experiments):
    trigger(window, "noising")
    wait_until_sampled(qtbot, window)
    run = window.session.active
    assert [frame.t for frame in run.trajectory] == list(COURSE_SIGMAS)
    assert window.tabs.currentIndex() == STEP_TAB
    assert window.step_view.note.isVisible() and "z = x + σ·ε" in window.step_view.note.text()
    window.session.seek(3)
    settle(qtbot)
    frame = run.trajectory[3]
    expected = render_grid(frame.x_t, "x_t", (0.0, 1.0), run.trajectory.labels, shown_columns(window))
    assert np.array_equal(displayed(window, "x_t"), expected)
    assert "σ = 0.500" in window.transport.caption.text()
    assert window.step_view.histogram.x_t_theory.isVisible()  # the digits are known: p(z) is exact


def test_out_of_distribution_and_pure_noise_carry_their_notes(qtbot, window, tiny_experiments):
    trigger(window, "out-of-distribution")
    wait_until_sampled(qtbot, window)
    assert window.session.active.trajectory.meta["algorithm"] == "single-step"
    assert "Out of distribution" in window.step_view.note.text()
    window.session.last()
    settle(qtbot)
    original = window.step_view.extra_panels["x0"]  # the clean digits, on every step of the sweep
    assert original.image_item.image.max() > 0
    trigger(window, "pure-noise")
    wait_until_sampled(qtbot, window)
    assert "average" in window.step_view.note.text()
    assert window.session.active.trajectory.meta["params"]["source"] == "pure noise"


@pytest.mark.parametrize(
    "key, names",
    [
        ("guidance-sweep", ["γ=0", "γ=5", "γ=10"]),
        ("ddpm-vs-flow", ["ddpm+cfg", "flow+cfg"]),
    ],
)
def test_comparisons_open_side_by_side(qtbot, window, tiny_experiments, key, names):
    trigger(window, key)
    wait_until_sampled(qtbot, window)
    qtbot.waitUntil(lambda: len(window.session.compared) == len(names) and not window.sampling.busy, timeout=60_000)
    settle(qtbot)
    runs = window.session.compared
    assert window.tabs.currentIndex() == COMPARE_TAB and len(window.compare_view.panels) == len(names)
    for run, name in zip(runs, names):
        assert name in run.name and run.trajectory.meta["seed"] == 2
