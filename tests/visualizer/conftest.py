import os

# Tests run without a display; this must be set before Qt starts.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QSplitter,
    QWidget,
)
from pytestqt.exceptions import capture_exceptions  # noqa: E402

from diffusion_stepper.core.formats.trajectory_file import save_trajectory  # noqa: E402
from diffusion_stepper.core.frames import Frame, Trajectory  # noqa: E402
from diffusion_stepper.core.timeline import ALIGN_TIME  # noqa: E402
from diffusion_stepper.visualizer.dialogs.measure_dialog import stop_measurements  # noqa: E402
from diffusion_stepper.visualizer.main_window import STEP_TAB, MainWindow  # noqa: E402
from diffusion_stepper.visualizer.widgets.panels import FIT  # noqa: E402


def marked_trajectory(num_frames: int, num_images: int = 4, algorithm: str = "ddpm") -> Trajectory:
    """A run whose frame k is filled with the value k / (num_frames - 1), so a displayed pixel
    tells which frame is on screen."""
    frames = []
    for index in range(num_frames):
        value = index / max(1, num_frames - 1)
        image = torch.full((num_images, 1, 28, 28), value)
        image[:, :, :4, :4] = 1.0 - value  # not a flat image: the value range is visible
        frames.append(
            Frame(
                index=index,
                t=float(num_frames - 1 - index),
                x_t=image,
                x0_hat=image * 0.5,
                eps_hat=torch.randn(num_images, 1, 28, 28, generator=torch.Generator().manual_seed(index)),
                coeffs={"t": float(num_frames - 1 - index)},
            )
        )
    meta = {
        "algorithm": algorithm,
        "model": f"marked-{num_frames}",
        "checkpoint": "",
        "seed": 0,
        "params": {"steps": num_frames - 1},
        "value_range": [0.0, 1.0],
    }
    return Trajectory(meta, frames, torch.arange(num_images))


@pytest.fixture
def marked_file(tmp_path):
    """Write a marked trajectory of `num_frames` frames; returns its path."""

    def write(num_frames: int, name: str | None = None) -> Path:
        return save_trajectory(marked_trajectory(num_frames), tmp_path / (name or f"marked-{num_frames}.npz"))

    return write


LONG_WAIT_MS = 120_000


def make_window(qtbot, settings_path: Path) -> MainWindow:
    window = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, tmp_path):
    """A window of its own for the test (a module whose tests need no fresh one overrides this
    with `shared_window`)."""
    return make_window(qtbot, tmp_path / "settings.ini")


@pytest.fixture
def fresh_window(qtbot, tmp_path):
    """A window of its own, in a module whose `window` is the shared one."""
    return make_window(qtbot, tmp_path / "settings.ini")


# --- one window for a module's tests ------------------------------------------------------------
#
# Building a MainWindow for each of ~100 GUI tests cost more than many of the tests themselves. A
# module whose tests need no fresh window shares one, put back before each test as it was when it
# opened: no work running, no other window open, an empty session, the Step tab, the window's size
# and layout, and every field of every dock and view at its first value. `reset_window` checks that
# the fields really came back, so a test that changes something the reset does not know fails
# loudly rather than leaking into the next test. Each such module passes alone, in order and in
# reverse order.


class WindowAtLaunch:
    """What a shared window looked like when it opened, to put it back."""

    def __init__(self, window: MainWindow):
        self.geometry = window.saveGeometry()
        self.state = window.saveState()
        self.owned = [owner.settings() for owner in window.settings.remembered]
        self.splitters = [(splitter, splitter.saveState()) for splitter in window.findChildren(QSplitter)]
        self.fields = [(widget, field_value(widget)) for widget in form_fields(window)]
        self.fps, self.loop = window.session.fps, window.session.loop
        self.focus = QApplication.focusWidget()


def form_fields(window: MainWindow) -> list[QWidget]:
    """Every field a person can change: spin boxes, combo boxes, line edits (not those inside a
    spin or combo box) and check boxes, in the order they were made (a model before its sampler)."""

    def is_field(widget: QWidget) -> bool:
        if isinstance(widget, QLineEdit):
            return not isinstance(widget.parent(), (QAbstractSpinBox, QComboBox))
        if isinstance(widget, QAbstractButton):
            return widget.isCheckable()
        return isinstance(widget, (QAbstractSpinBox, QComboBox))

    return [widget for widget in window.findChildren(QWidget) if is_field(widget)]


def field_value(widget: QWidget):
    if isinstance(widget, QComboBox):
        return widget.currentIndex(), widget.currentData()
    if isinstance(widget, QAbstractSpinBox):
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text()
    return widget.isChecked()


def set_field(widget: QWidget, value) -> None:
    if isinstance(widget, QComboBox):
        index, data = value
        found = widget.findData(data) if data is not None else -1
        widget.setCurrentIndex(found if found >= 0 else index)
    elif isinstance(widget, QAbstractSpinBox):
        widget.setValue(value)
    elif isinstance(widget, QLineEdit):
        widget.setText(value)
    else:
        widget.setChecked(value)


def stop_all_work(window: MainWindow) -> None:
    """End every job as closing the window does, and wait until each controller has heard."""
    window.session.set_playing(False)
    window.sampling.stop()
    window.exports.stop()
    window.judging.stop()
    window.lab2d.stop()
    stop_measurements(window)
    window.training.shutdown()

    def idle() -> bool:
        busy = window.sampling.busy, window.exports.job, window.judging.job, window.lab2d.job, window.training.job
        return not any(busy)

    deadline = LONG_WAIT_MS
    while not idle() and deadline > 0:
        QTest.qWait(10)
        deadline -= 10
    assert idle(), "a job of the shared window did not end"


def reset_window(window: MainWindow, launch: WindowAtLaunch) -> None:
    stop_all_work(window)
    for widget in QApplication.topLevelWidgets():  # dialogs, the error box, the shortcut list
        if widget is not window and widget.isVisible():
            widget.close()
    window.presentation.set_active(False)
    session = window.session
    while session.removed:  # what Undo could bring back goes for good, its spilled frames too
        session.undo_remove()
    for run in list(session.runs):
        session.remove_run(run.id)
    session.set_align(ALIGN_TIME)
    session.set_fps(launch.fps)
    session.set_loop(launch.loop)
    session.follow_live = True
    window.showNormal()
    window.restoreGeometry(launch.geometry)
    window.restoreState(launch.state)
    for owner, settings in zip(window.settings.remembered, launch.owned):
        owner.restore(settings)
    window.set_zoom(FIT)
    window.show_tab(STEP_TAB)
    for widget, value in launch.fields:
        set_field(widget, value)
    for splitter, state in launch.splitters:
        splitter.restoreState(state)
    window.messages.last_error = None
    window.statusBar().clearMessage()
    window.activateWindow()
    if launch.focus is not None:
        launch.focus.setFocus()
    else:
        focused = QApplication.focusWidget()
        if focused is not None:
            focused.clearFocus()
    QTest.qWait(30)  # the views' coalesced refresh
    changed = [
        f"{type(widget).__name__} {widget.objectName() or widget.toolTip()[:40]!r}: {value!r} ≠ {field_value(widget)!r}"
        for widget, value in launch.fields
        if field_value(widget) != value
    ]
    assert not changed, f"the shared window's fields did not come back: {changed}"


@pytest.fixture(scope="module")
def module_window(qapp, tmp_path_factory):
    window = MainWindow(QSettings(str(tmp_path_factory.mktemp("window") / "settings.ini"), QSettings.Format.IniFormat))
    window.show()
    assert QTest.qWaitForWindowExposed(window)
    QTest.qWait(30)
    launch = WindowAtLaunch(window)
    yield window, launch
    stop_all_work(window)
    delete_window(window)


def delete_window(window: MainWindow) -> None:
    """Close and delete a shared window now. pyqtgraph's legend of the schedule plot can raise
    "Internal C++ object (ViewBox) already deleted" while the window is deleted (a window of its
    own does the same once it has sampled a DDPM run and then opened another): that error alone is
    let pass here, any other fails the test that ends the module."""
    with capture_exceptions() as exceptions:
        window.close()
        window.deleteLater()
        QTest.qWait(10)
    others = [value for kind, value, _ in exceptions if "(ViewBox) already deleted" not in str(value)]
    assert not others, f"deleting the shared window raised {others}"


@pytest.fixture
def shared_window(module_window, qtbot):
    """The module's one window, put back as it opened (see `reset_window`)."""
    window, launch = module_window
    reset_window(window, launch)
    return window


def action(window, text: str):
    """The window's action with this menu text (with its & mnemonic)."""
    return next(a for a in window.actions() if a.text() == text)


def settle(qtbot):
    """Let the views' coalesced refresh run."""
    qtbot.wait(30)


def wait_until_sampled(qtbot, window):
    qtbot.waitUntil(lambda: not window.sampling.busy, timeout=LONG_WAIT_MS)
    settle(qtbot)


def displayed(window, key: str) -> np.ndarray:
    return window.step_view.panels[key].image_item.image


def shown_columns(window, key: str = "x_t") -> int:
    """How many columns the Step view's panel lays its batch out in, as shown now."""
    return window.step_view.panels[key].columns
