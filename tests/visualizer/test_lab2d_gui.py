"""The 2D lab in the app: sampling the exact field, training with the loss live, each experiment
from its menu entry, the particle view's choices, drawing a distribution, and exporting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from diffusion_stepper.core.exports.animation import write_animation
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.toy2d.drawn import load_drawn
from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS
from diffusion_stepper.core.toy2d.render import PARTICLE_COLOUR
from diffusion_stepper.visualizer.dialogs.export_dialog import ExportDialog
from diffusion_stepper.visualizer.menus import COMPARE_TAB
from tests.visualizer.conftest import LONG_WAIT_MS, action, settle, wait_until_sampled


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def particle_pixels(picture: np.ndarray) -> int:
    return int((picture == PARTICLE_COLOUR).all(axis=2).sum())


def test_sampling_the_exact_field_shows_particles_and_the_step_equation(qtbot, window):
    window.lab2d.dock.count.setValue(800)
    window.lab2d.dock.dataset.setCurrentIndex(window.lab2d.dock.dataset.findData("8-gaussians"))
    action(window, "Sample the 2D &lab").trigger()
    wait_until_sampled(qtbot, window)
    run = window.session.active
    assert run is not None and len(run.trajectory) == 51  # flow's Euler, 50 steps
    view = window.step_view
    assert view.particle_area.isVisible() and not view.panel_holder.isVisible()
    window.session.first()
    settle(qtbot)
    first = view.particle_panel.picture.copy()
    assert particle_pixels(first) > 500
    window.session.last()
    settle(qtbot)
    last = view.particle_panel.picture
    assert not np.array_equal(first, last)
    assert "final sample" in view.equation.text
    window.session.first()
    settle(qtbot)
    assert "x̂₁ = x_t + (1 − t)·v̂" in view.equation.text
    # the controls change the picture: no arrows, no paths, no density leaves only dots and data
    controls = view.particle_controls
    controls.field.setCurrentIndex(controls.field.findData("none"))
    for name in ("density", "paths", "data"):
        controls.boxes[name].setChecked(False)
    settle(qtbot)
    bare = view.particle_panel.picture
    background = (bare == bare[0, 0]).all(axis=2).mean()
    assert background > 0.8 and particle_pixels(bare) >= particle_pixels(first)


@pytest.mark.slow  # trains in a child process
def test_training_shows_the_loss_then_samples_the_trained_model(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "diffusion_stepper.visualizer.controllers.lab2d.work_folder", lambda *parts: tmp_path.joinpath(*parts)
    )
    dock = window.lab2d.dock
    dock.dataset.setCurrentIndex(dock.dataset.findData("moons"))
    action(window, "Sample the 2D &lab").trigger()  # moons have no exact field: one line, no run
    wait_until_sampled(qtbot, window)
    assert window.session.active is None and "train a model on it first" in window.messages.last_error
    dock.iterations.setValue(300)
    dock.count.setValue(300)
    action(window, "Train the 2D lab's &model").trigger()
    qtbot.waitUntil(lambda: window.lab2d.job is None, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    xs, ys = dock.loss_plot.raw.getData()
    assert list(xs) == list(range(1, 301)) and np.isfinite(ys).all()  # each iteration's loss
    assert np.isfinite(dock.loss_plot.smoothed.getData()[1]).all()
    sidecar = tmp_path / "toy2d" / "moons-flow" / "toy2d.json"
    assert sidecar.is_file() and dock.model.currentData() == str(sidecar)
    run = window.session.active
    assert run.trajectory.meta["checkpoint"] == str(sidecar) and run.trajectory[0].x_t.shape[0] == 300
    assert "Trained 300 iterations" in dock.status.text()


@pytest.mark.slow  # trains in a child process
def test_pressing_train_again_stops_it_and_saves_nothing(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "diffusion_stepper.visualizer.controllers.lab2d.work_folder", lambda *parts: tmp_path.joinpath(*parts)
    )
    dock = window.lab2d.dock
    dock.iterations.setValue(100_000)
    dock.train_button.click()
    qtbot.waitUntil(lambda: len(window.lab2d.history.iterations) >= 100, timeout=LONG_WAIT_MS)
    assert dock.train_button.text() == "Stop"
    dock.train_button.click()
    qtbot.waitUntil(lambda: window.lab2d.job is None, timeout=LONG_WAIT_MS)
    assert dock.train_button.text() == "Train" and "nothing saved" in dock.status.text()
    assert not (tmp_path / "toy2d").exists() and window.session.active is None


@pytest.mark.slow  # trains in a child process
def test_stopping_the_training_out_of_sight_ends_it_in_the_dock(qtbot, window, tmp_path, monkeypatch):
    """Ctrl+Shift+L stops the training in presentation mode too, where the docks hide: back
    in the dock, the button says Train again and the status how it ended."""
    monkeypatch.setattr(
        "diffusion_stepper.visualizer.controllers.lab2d.work_folder", lambda *parts: tmp_path.joinpath(*parts)
    )
    dock = window.lab2d.dock
    dock.iterations.setValue(100_000)
    window.presentation.set_active(True)
    train = action(window, "Train the 2D lab's &model")
    train.trigger()
    qtbot.waitUntil(lambda: len(window.lab2d.history.iterations) >= 10, timeout=LONG_WAIT_MS)
    train.trigger()
    qtbot.waitUntil(lambda: window.lab2d.job is None, timeout=LONG_WAIT_MS)
    window.presentation.set_active(False)
    assert dock.train_button.text() == "Train" and "nothing saved" in dock.status.text()
    assert not dock.progress.isVisible()


@pytest.mark.parametrize("key", list(TOY2D_EXPERIMENTS))
def test_each_experiment_runs_from_its_menu_entry(qtbot, window, key):
    window.lab2d.dock.count.setValue(200)
    action(window, TOY2D_EXPERIMENTS[key].title).trigger()
    wait_until_sampled(qtbot, window)
    expected = len([1 for _ in TOY2D_EXPERIMENTS[key].requests(window.lab2d.dock.experiment_options())])
    runs = window.session.runs
    assert len(runs) == expected
    window.session.first()  # the noise: spread out, so every particle shows
    settle(qtbot)
    if expected > 1:
        assert window.tabs.currentIndex() == COMPARE_TAB
        panels = [row[0] for row in window.compare_view.panels.values()]
        assert len(panels) == expected and all(panel.picture is not None for panel in panels)
        assert all(particle_pixels(panel.picture) > 50 for panel in panels)
    else:
        assert particle_pixels(window.step_view.particle_panel.picture) > 50


def test_drawing_a_distribution_makes_it_the_data(qtbot, window, tmp_path):
    from diffusion_stepper.visualizer.dialogs.draw_dialog import DrawDialog

    dialog = DrawDialog(window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    canvas = dialog.canvas
    width, height = canvas.width(), canvas.height()
    start, end = QPoint(width // 3, height // 2), QPoint(2 * width // 3, height // 2)
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 21):
        qtbot.mouseMove(canvas.viewport(), QPoint(start.x() + (end.x() - start.x()) * step // 20, start.y()))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    points = dialog.points()
    assert points.shape[0] >= 3 and float(points[:, 1].abs().max()) < 0.5  # a horizontal stroke near y = 0
    assert float(points[:, 0].max() - points[:, 0].min()) > 1.0
    saved = window.lab2d.save_drawing(points, tmp_path / "stroke.json")
    assert torch.allclose(load_drawn(saved)[0], points, atol=1e-3)
    assert window.lab2d.dock.dataset.currentData() == str(saved)
    window.lab2d.dock.count.setValue(300)
    action(window, "Sample the 2D &lab").trigger()  # the exact field of the drawing
    wait_until_sampled(qtbot, window)
    final = window.session.active.trajectory[-1].x_t.reshape(-1, 2)
    assert float(final[:, 1].abs().median()) < 0.4  # the particles land on the stroke
    assert window.lab2d.save_drawing(points[:1], tmp_path / "one.json") is None  # one line, nothing written
    assert not (tmp_path / "one.json").exists()


def test_a_2d_run_saves_opens_and_exports(qtbot, window, tmp_path):
    window.lab2d.dock.count.setValue(200)
    action(window, "Sample the 2D &lab").trigger()
    wait_until_sampled(qtbot, window)
    path = save_trajectory(window.session.active.trajectory, tmp_path / "lab.npz")
    window.files.open_trajectory(str(path))
    settle(qtbot)
    assert window.session.active.trajectory.data is not None and window.step_view.particle_area.isVisible()
    gif = write_animation(load_trajectory(path), tmp_path / "lab.gif", every=10, scale=2)
    with Image.open(gif) as frames:
        assert frames.n_frames == 6 and frames.width == 360
    run = window.session.active
    dialog = ExportDialog(run.trajectory, 10.0, window.step_view.visible_fields(run))
    assert dialog.checks == {} and dialog.options().panels == ["x_t"]  # no image panels to pick for a 2D run
    dialog.every.setValue(10)
    movie = tmp_path / "dialog.gif"
    assert window.exports.export_animation_to(movie, dialog.options())
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    with Image.open(movie) as frames:
        assert frames.n_frames == 6
