"""The app keeps running and leaves a trace: missing system libraries, unexpected errors in jobs and
slots, and views whose panels follow the runs without ever deleting one."""

from __future__ import annotations

import sys

import pytest
import torch
from PySide6.QtWidgets import QApplication

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.visualizer import launcher, system_libraries
from diffusion_stepper.visualizer.app import install_error_hook
from diffusion_stepper.visualizer.widgets.panels import ImagePanel
from tests.visualizer.conftest import LONG_WAIT_MS, marked_trajectory, settle


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def test_missing_xcb_libraries_are_one_line_naming_the_packages(monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(sys, "platform", "linux")
    gone = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    monkeypatch.setattr(system_libraries, "_loads", lambda soname: soname not in gone)
    assert launcher.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for package in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"):
        assert package in err
    assert "apt-get install" in err


def test_xcb_libraries_are_not_checked_for_other_platforms(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "wayland")
    assert not system_libraries.uses_xcb()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert system_libraries.uses_xcb() == sys.platform.startswith("linux")


class _FailingRequest:
    def __init__(self, exc: Exception):
        self.exc = exc

    def start(self):
        raise self.exc


def _fail_a_job(qtbot, window, exc: Exception) -> str:
    window.sampling.start(lambda: [_FailingRequest(exc)])
    qtbot.waitUntil(lambda: not window.sampling.busy, timeout=LONG_WAIT_MS)
    return window.messages.last_error


def test_an_unexpected_error_in_a_job_is_logged_with_its_traceback(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path / "work")
    message = _fail_a_job(qtbot, window, RuntimeError("the unet lost a wire"))
    log = tmp_path / "work" / "logs" / "diffusion-stepper.log"
    assert "RuntimeError: the unet lost a wire" in message and str(log) in message
    assert window.messages.error_box.isVisible() and str(log) in window.messages.error_box.text()
    text = log.read_text()
    assert "Traceback" in text and "the unet lost a wire" in text and "def start" not in text
    assert "_FailingRequest" in text or "raise self.exc" in text


def test_a_user_error_in_a_job_stays_one_line_and_is_not_logged(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path / "work")
    message = _fail_a_job(qtbot, window, UserFacingError("pick a model first"))
    assert message == "Sampling failed: pick a model first"
    assert not (tmp_path / "work" / "logs").exists()


def test_an_exception_in_a_slot_is_logged_and_shown_and_the_window_goes_on(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path / "work")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_error_hook(window)
    try:
        raise ValueError("a slot tripped")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert "ValueError: a slot tripped" in window.messages.last_error
    assert "a slot tripped" in (tmp_path / "work" / "logs" / "diffusion-stepper.log").read_text()
    window.generate()  # still usable
    qtbot.waitUntil(lambda: not window.sampling.busy, timeout=LONG_WAIT_MS)


def _add_marked_run(window, num_frames: int, fill: float):
    trajectory = marked_trajectory(num_frames)
    for frame in trajectory.frames:
        frame.x_t = torch.full_like(frame.x_t, fill)
    return window.session.add_run(
        trajectory.meta, num_frames, trajectory.labels, frames=trajectory.frames, state="done"
    )


def _image_panels(view) -> list[ImagePanel]:
    return view.findChildren(ImagePanel)


@pytest.mark.parametrize("rounds", [6])
def test_compare_rows_are_reused_never_deleted_and_show_their_own_run(qtbot, fresh_window, rounds):
    """The Compare view's panels follow the compared runs from a pool: as runs come and go, no
    panel is deleted (the PySide6 6.10/6.11 crash), the count stays at the most shown at once, and
    each row shows its own run's pixels. (A fresh window: its pools hold only what this test shows.)"""
    window = fresh_window
    window.show_tab(1)
    runs = [_add_marked_run(window, 5, fill=(number + 1) / 10) for number in range(4)]
    for run in runs:
        window.session.set_compared(run.id, True)
    window.compare_view.set_field("x_t+x0_hat")  # the most panels: two per run
    settle(qtbot)
    panels_at_most = set(_image_panels(window.compare_view))
    destroyed = []
    for panel in panels_at_most:
        panel.destroyed.connect(lambda *_: destroyed.append(1))
    for round_number in range(rounds):
        keep = runs[: 1 + round_number % len(runs)]
        for run in runs:
            window.session.set_compared(run.id, run in keep)
        window.compare_view.set_field(("x_t", "x_t+x0_hat")[round_number % 2])
        settle(qtbot)
        QApplication.processEvents()
        assert set(_image_panels(window.compare_view)) == panels_at_most  # none made, none deleted
        shown = window.compare_view.panels
        assert list(shown) == [run.id for run in keep]
        for run in keep:
            first = shown[run.id][0]
            assert first.isVisibleTo(window.compare_view)
            expected = round(255 * run.trajectory.frames[0].x_t[0, 0, 10, 10].item())
            assert abs(int(first.tiles[0, 10, 10, 0]) - expected) <= 1
    assert not destroyed and len(panels_at_most) == 2 * len(runs)


def test_step_view_extras_panels_are_reused(qtbot, fresh_window):
    """Runs with different extras re-title pooled panels instead of deleting them. (A fresh window:
    its pool holds only what this test shows.)"""
    window = fresh_window
    ids_seen = set()
    for names in (("eps_cond", "eps_uncond"), ("mask",), ("eps_cond", "eps_uncond", "x0")):
        trajectory = marked_trajectory(3)
        for frame in trajectory.frames:
            frame.extras = {name: torch.rand_like(frame.x_t) for name in names}
        window.session.add_run(trajectory.meta, 3, trajectory.labels, frames=trajectory.frames, state="done")
        settle(qtbot)
        assert list(window.step_view.extra_panels) == list(names)
        for name, panel in window.step_view.extra_panels.items():
            assert panel.isVisibleTo(window.step_view) and panel.name == name and panel.tiles is not None
        ids_seen |= {id(panel) for panel in window.step_view.extras_pool.widgets}
    assert len(ids_seen) == 3 == len(window.step_view.extras_pool.widgets)


def test_f1_shows_one_shortcut_box_however_often_it_is_pressed(qtbot, window):
    action = next(action for action in window.actions() if action.text() == "&Keyboard shortcuts")
    action.trigger()
    box = window.shortcuts_box
    assert box.isVisible() and "Sweep guidance" in box.text() and "Ctrl+G" in box.text()
    box.close()
    action.trigger()
    assert window.shortcuts_box is box and box.isVisible()
