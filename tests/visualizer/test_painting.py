"""The mask and sketch editors: what is painted is what is saved, lined up with the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from diffusion_stepper.core.deepfloyd_if.images import load_mask
from diffusion_stepper.core.paths import sample_image
from diffusion_stepper.visualizer.dialogs.painting import CANVAS, PAPER, SKETCH_SIZE, SWATCHES


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def drag(canvas, button, start: QPoint, end: QPoint) -> None:
    """Press, move with the button held, release. Sent as events: QTest's mouseMove carries no
    buttons, and QTest reads the point (0, 0) as "the widget's centre"."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    def send(kind, point, changed, held):
        event = QMouseEvent(
            kind, QPointF(point), QPointF(canvas.mapToGlobal(point)), changed, held, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(canvas, event)

    send(QMouseEvent.Type.MouseButtonPress, start, button, button)
    send(QMouseEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, button)
    send(QMouseEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def editor_for(window, tmp_path, image, mask=""):
    panel = window.if_dock
    panel.images.image_path.setText(str(image))
    panel.images.mask_path.setText(str(mask))
    editor = panel.images.mask_editor()
    editor.out_path = tmp_path / "mask.png"
    return editor


def test_the_bundled_mask_loads_and_painting_adds_to_it(qtbot, window, tmp_path):
    editor = editor_for(window, tmp_path, sample_image("tower.png"), sample_image("tower-mask.png"))
    canvas = editor.canvas
    start = canvas.layer.copy()
    assert 0.05 < start.mean() < 0.2  # the tower's top is masked already
    drag(canvas, Qt.MouseButton.LeftButton, QPoint(40, 300), QPoint(80, 300))
    assert canvas.layer[300, 60] and not start[300, 60]
    assert canvas.layer[start].all()  # nothing painted before was lost
    drag(canvas, Qt.MouseButton.RightButton, QPoint(60, 300), QPoint(60, 300))  # the eraser
    assert not canvas.layer[300, 60]
    canvas.undo()
    assert canvas.layer[300, 60]


def test_rectangle_invert_clear_and_the_saved_file(qtbot, window, tmp_path):
    image = tmp_path / "wide.png"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(image)  # not square: the canvas is its centre
    editor = editor_for(window, tmp_path, image)
    editor.rectangle.setChecked(True)
    canvas = editor.canvas
    drag(canvas, Qt.MouseButton.LeftButton, QPoint(0, 0), QPoint(CANVAS // 2 - 1, CANVAS // 2 - 1))
    assert canvas.layer.mean() == 0.25  # the top-left quarter
    assert editor.save()
    saved = np.asarray(Image.open(editor.out_path))
    assert saved.shape == (100, 200) and set(np.unique(saved)) == {0, 255}
    assert saved[:50, 50:100].all() and not saved[:, :50].any() and not saved[:, 150:].any()
    assert not saved[50:, 100:150].any()
    mask = load_mask(editor.out_path, 16, image_size=(200, 100))  # IF lines it up with the image
    assert mask[0, 0, :8, :8].all() and not mask[0, 0, 8:, 8:].any()
    editor.invert()
    assert canvas.layer.mean() == 0.75
    canvas.clear()
    assert not canvas.layer.any()


def test_painting_needs_a_picture(window):
    window.if_dock.images.image_path.setText("")
    window.if_dock.images.paint_mask()
    assert "open a picture first" in window.if_dock.status.text()


def test_a_sketch_is_saved_in_its_colours_and_starts_an_sdedit(qtbot, window, tmp_path):
    panel = window.if_dock
    panel.task.setCurrentIndex(panel.task.findData("sample"))
    editor = panel.images.sketch_editor()
    editor.out_path = tmp_path / "sketch.png"
    editor.set_colour(SWATCHES["red"])
    editor.rectangle.setChecked(True)
    drag(
        editor.canvas,
        Qt.MouseButton.LeftButton,
        QPoint(CANVAS // 4, CANVAS // 4),
        QPoint(3 * CANVAS // 4, 3 * CANVAS // 4),
    )
    editor.accept()
    picture = np.asarray(Image.open(editor.out_path))
    assert picture.shape == (SKETCH_SIZE, SKETCH_SIZE, 3)
    assert tuple(picture[SKETCH_SIZE // 2, SKETCH_SIZE // 2]) == SWATCHES["red"]
    assert tuple(picture[5, 5]) == PAPER
    panel.images.use_sketch(editor.out_path)
    assert panel.images.image_path.text() == str(editor.out_path) and panel.task_key == "sdedit"


def test_the_crop_step_saves_the_chosen_square(window, tmp_path):
    wide = np.zeros((100, 200, 3), np.uint8)
    wide[:, :100] = (200, 30, 30)  # red on the left half, black on the right
    Image.fromarray(wide).save(tmp_path / "wide.png")
    panel = window.if_dock
    dialog = panel.images.crop_dialog_for(tmp_path / "wide.png")
    assert dialog.box() == (50, 0, 150, 100)  # the centre square by default
    dialog.out_path = tmp_path / "square.png"
    dialog.slider.setValue(0)
    dialog.accept()
    square = np.asarray(Image.open(dialog.out_path))
    assert square.shape == (100, 100, 3) and (square == (200, 30, 30)).all()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "square-already.png")
    assert panel.images.crop_dialog_for(tmp_path / "square-already.png") is None
    assert panel.images.crop_dialog_for(tmp_path / "missing.png") is None
