"""Actions do what they say (issue 30 §3): Enter runs the action of the dock the keyboard is in."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.visualizer.conftest import settle, wait_until_sampled


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def record_actions(window, monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(window, "generate", lambda: calls.append("generate"))
    monkeypatch.setattr(window.if_runs, "run", lambda: calls.append("if"))
    monkeypatch.setattr(window.lab2d, "sample", lambda: calls.append("2d"))
    return calls


def press_enter_in(qtbot, window, dock, widget) -> None:
    dock.raise_()
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus)
    qtbot.keyClick(widget, Qt.Key.Key_Return)
    settle(qtbot)


def test_enter_runs_the_action_of_the_dock_the_keyboard_is_in(qtbot, window, monkeypatch):
    calls = record_actions(window, monkeypatch)
    press_enter_in(qtbot, window, window.if_dock, window.if_dock.prompt)
    press_enter_in(qtbot, window, window.if_dock, window.if_dock.model_folder)
    press_enter_in(qtbot, window, window.lab2d.dock, window.lab2d.dock.steps)
    press_enter_in(qtbot, window, window.sample_dock, window.sample_dock.steps)
    assert calls == ["if", "if", "2d", "generate"]


def test_enter_elsewhere_runs_the_dock_in_front(qtbot, window, monkeypatch):
    calls = record_actions(window, monkeypatch)
    for dock in (window.lab2d.dock, window.sample_dock):
        dock.raise_()
        window.tabs.setFocus()
        qtbot.waitUntil(window.tabs.hasFocus)
        qtbot.keyClick(window.tabs, Qt.Key.Key_Return)
        settle(qtbot)
    assert calls == ["2d", "generate"]


def test_a_run_generated_while_compare_shows_is_shown(qtbot, window, tiny_checkpoints):
    from diffusion_stepper.visualizer.menus import COMPARE_TAB, STEP_TAB

    window.files.add_checkpoint(tiny_checkpoints["class-flow"])
    window.sample_dock.steps.setValue(3)
    window.sweep()  # a comparison first, shown in Compare
    wait_until_sampled(qtbot, window)
    assert window.tabs.currentIndex() == COMPARE_TAB and len(window.session.compared_ids) > 1
    before = {run.id for run in window.session.runs}
    window.generate()
    wait_until_sampled(qtbot, window)
    (new,) = [run for run in window.session.runs if run.id not in before]
    assert window.tabs.currentIndex() == STEP_TAB and window.session.active_id == new.id


def test_an_error_does_not_take_the_keyboard_from_the_window(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.messages.error("no such model: pick one in the Sample dock")
    box = window.messages.error_box
    qtbot.waitUntil(box.isVisible)
    assert box.windowModality() == Qt.WindowModality.NonModal and window.isActiveWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)  # Ctrl+2: the Compare view
    assert window.tabs.currentIndex() == 1 and box.text().startswith("no such model")


def test_a_comparison_that_fails_at_once_leaves_compare_as_it_was(qtbot, window, tiny_checkpoints, tmp_path):
    from diffusion_stepper.core.mnist.sampling import SampleRequest

    window.files.add_checkpoint(tiny_checkpoints["class-flow"])
    window.sample_dock.steps.setValue(3)
    window.sweep()
    wait_until_sampled(qtbot, window)
    compared = list(window.session.compared_ids)
    assert len(compared) > 1
    broken = SampleRequest(str(tmp_path / "no-such-model.json"), per_class=1)
    window.sampling.start(lambda: [broken, broken], compare=True)
    wait_until_sampled(qtbot, window)
    assert window.session.compared_ids == compared and "no-such-model" in window.messages.last_error


def test_leaving_presentation_mode_restores_the_window_as_it_was(qtbot, window):
    window.showMaximized()
    qtbot.waitUntil(window.isMaximized)
    for _ in range(2):
        window.presentation.set_active(True)
        qtbot.waitUntil(window.isFullScreen)
        window.presentation.set_active(False)
        qtbot.waitUntil(lambda: not window.isFullScreen())
        assert window.isMaximized() and window.statusBar().isVisible() and window.transport.isVisible()
    window.showNormal()
    window.setGeometry(40, 50, 1000, 640)
    settle(qtbot)
    before = window.geometry()
    window.presentation.set_active(True)
    qtbot.waitUntil(window.isFullScreen)
    window.presentation.set_active(False)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    settle(qtbot)
    assert not window.isMaximized() and window.geometry() == before


def test_presentation_controls_float_over_the_pictures_and_go_back_after(qtbot, window):
    """The transport bar keeps no band of its own in presentation mode (the pictures get it) and
    is back in its place below the views afterwards."""
    central = window.centralWidget()
    window.presentation.set_active(True)
    qtbot.waitUntil(window.isFullScreen)
    settle(qtbot)
    window.presentation.show_controls(True)
    assert central.layout().indexOf(window.transport) == -1  # out of the layout: it floats
    assert window.transport.geometry().bottom() == central.height() - 1  # at the bottom, over the views
    assert window.tabs.height() >= central.height() - 8  # the views take the whole height
    window.presentation.set_active(False)
    settle(qtbot)
    assert central.layout().indexOf(window.transport) == 1 and window.tabs.geometry().bottom() < window.transport.y()


def test_the_shortcut_list_uses_the_equation_face_whose_hats_sit_right(qtbot, window):
    from diffusion_stepper.visualizer.widgets.equation import EQUATION_FONTS

    next(action for action in window.actions() if action.text() == "&Keyboard shortcuts").trigger()
    box = window.shortcuts_box
    assert f"'{EQUATION_FONTS[0]}'" in box.table.text() and "x̂₀ clean estimate" in box.text()
    screen = window.screen().availableGeometry()
    assert box.width() <= screen.width() and box.height() <= screen.height()


def test_presentation_mode_leaves_the_step_views_split_as_the_lecturer_had_it(qtbot, window, tiny_checkpoints):
    """Entering F5 sizes the update rule for its larger text; leaving gives back the desk's split
    exactly (it was saved after the resize once, and the grown split was kept and saved)."""
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    window.sample_dock.steps.setValue(4)
    window.generate()
    wait_until_sampled(qtbot, window)
    window.resize(1366, 768)
    settle(qtbot)
    view = window.step_view
    view.splitter.setSizes([500, 200])  # the lecturer's own split
    settle(qtbot)
    before = (view.splitter.sizes(), view.details.sizes())
    for _ in range(2):
        window.presentation.set_active(True)
        qtbot.waitUntil(window.isFullScreen)
        settle(qtbot)
        window.presentation.set_active(False)
        qtbot.waitUntil(lambda: not window.isFullScreen())
        settle(qtbot)
        assert (view.splitter.sizes(), view.details.sizes()) == before
