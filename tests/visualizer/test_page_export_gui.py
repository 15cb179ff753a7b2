"""File ▸ Export ▸ Interactive page in the app: the active run, or the compared runs on one slider;
a long run is offered every k-th frame; Cancel and unfinished runs write nothing."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QPushButton

from diffusion_stepper.core.exports.html_page import suggested_every
from tests.page_reading import page_data, stored_picture
from tests.visualizer.conftest import LONG_WAIT_MS, action


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def test_the_menu_entry_offers_every_kth_frame_of_a_long_run_and_writes_the_page(
    qtbot, window, marked_file, tmp_path, monkeypatch
):
    assert window.files.open_trajectory(marked_file(301))
    offered = []

    def get_int(parent, title, label, value, low, high):
        offered.append((label, value, low, high))
        return value, True  # the lecturer takes the suggestion

    monkeypatch.setattr("diffusion_stepper.visualizer.controllers.export.QInputDialog.getInt", get_int)
    target = tmp_path / "long.html"
    monkeypatch.setattr(window.files, "ask_save_path", lambda title, name, suffixes, start=None: target)
    entry = action(window, "Interactive &page (HTML)…")
    assert entry.shortcut().toString() == "Ctrl+Alt+E"
    entry.trigger()
    qtbot.waitUntil(lambda: window.exports.job is None and target.exists(), timeout=LONG_WAIT_MS)
    ((label, value, low, high),) = offered
    assert "301 frames" in label and value == suggested_every(301) == 3 and (low, high) == (1, 300)
    (run,) = page_data(target)["runs"]
    assert run["name"] == window.session.active.name and len(run["frames"]) == 101 and run["length"] == 301
    assert f"Wrote {target}" in window.statusBar().currentMessage()


def test_compared_runs_go_on_one_page_and_a_short_run_is_not_asked(qtbot, window, marked_file, tmp_path, monkeypatch):
    for frames in (12, 5):
        assert window.files.open_trajectory(marked_file(frames))
    for run in window.session.runs:
        window.session.set_compared(run.id, True)
    monkeypatch.setattr(
        "diffusion_stepper.visualizer.controllers.export.QInputDialog.getInt",
        lambda *args: (_ for _ in ()).throw(AssertionError("a short run needs no offer")),
    )
    target = tmp_path / "both"  # the suffix is added
    monkeypatch.setattr(window.files, "ask_save_path", lambda title, name, suffixes, start=None: target)
    window.exports.ask_html_page()
    written = tmp_path / "both.html"
    qtbot.waitUntil(lambda: window.exports.job is None and written.exists(), timeout=LONG_WAIT_MS)
    data = page_data(written)
    assert [run["name"] for run in data["runs"]] == [run.name for run in window.session.compared]
    assert [len(run["frames"]) for run in data["runs"]] == [12, 5]
    last = window.session.compared[1].trajectory
    assert stored_picture(data["runs"][1], 0, 4)[10, 10, 0] == round(255 * last[4].x_t[0, 0, 10, 10].item())


def test_cancel_and_an_unfinished_run_write_nothing(qtbot, window, marked_file, tmp_path):
    assert window.files.open_trajectory(marked_file(400))
    target = tmp_path / "big.html"
    assert window.exports.export_html_page_to(target)
    window.exports.progress_dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    assert list(tmp_path.glob("*.html*")) == [] and list(tmp_path.glob(".big.html*")) == []
    assert "nothing was written" in window.statusBar().currentMessage()

    first = window.session.active
    second = window.session.add_run(first.trajectory.meta, 10, name="still sampling")  # RUNNING, no frames yet
    window.session.set_compared(first.id, True)
    window.session.set_compared(second.id, True)
    assert not window.exports.export_html_page_to(target)
    assert "wait for still sampling to finish" in window.messages.last_error
    assert not target.exists()
