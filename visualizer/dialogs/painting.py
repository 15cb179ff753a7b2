"""Painting for part A: the inpainting mask over an image, and a sketch to project with SDEdit.

Both use one canvas: left-drag paints, right-drag erases; with Rectangle on, a drag fills (or,
with the right button, erases) a rectangle; Clear empties it and Ctrl+Z undoes the last stroke.

- The mask editor shows the image's centre square (what IF sees) with the mask as a red
  overlay, and saves the mask at the image's own size (black outside the square), so it lines up
  with the image however IF's stage resizes it. Invert swaps new and kept.
- The sketch editor paints colours on white (or over the image), for part A's "hand-drawn
  images": SDEdit projects the scribble onto the natural-image manifold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.deepfloyd_if.images import load_image, load_mask
from diffusion_stepper.core.errors import UserFacingError

CANVAS = 384  # on-screen size of the square canvas, in pixels
OVERLAY = np.array([255, 40, 40], dtype=np.float32)  # the mask's colour over the image
OVERLAY_ALPHA = 0.55


class PaintCanvas(QLabel):
    """A square layer (a mask, or colours) painted with the mouse, shown through `compose`."""

    def __init__(
        self, layer: np.ndarray, compose: Callable[[np.ndarray], np.ndarray], paint_value, erase_value, parent=None
    ):
        super().__init__(parent)
        self.layer = layer  # [CANVAS, CANVAS] or [CANVAS, CANVAS, 3]
        self.compose = compose  # layer -> the RGB uint8 picture on screen
        self.paint_value, self.erase_value = paint_value, erase_value
        self.brush = 16
        self.rectangle_mode = False
        self.history: list[np.ndarray] = []
        self._anchor: QPoint | None = None  # where the drag began
        self._last: QPoint | None = None  # where the brush was at the last event
        self._painting_value = True
        self.setFixedSize(CANVAS, CANVAS)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.redraw()

    def redraw(self) -> None:
        data = np.ascontiguousarray(self.compose(self.layer))
        image = QImage(data.data, CANVAS, CANVAS, 3 * CANVAS, QImage.Format.Format_RGB888)
        self.setPixmap(QPixmap.fromImage(image.copy()))

    def remember(self) -> None:
        self.history.append(self.layer.copy())
        del self.history[:-50]

    def undo(self) -> None:
        if self.history:
            self.layer = self.history.pop()
            self.redraw()

    def clear(self) -> None:
        self.remember()
        self.layer[:] = self.erase_value
        self.redraw()

    def _dab(self, point: QPoint, value) -> None:
        rows, cols = np.ogrid[:CANVAS, :CANVAS]
        inside = (rows - point.y()) ** 2 + (cols - point.x()) ** 2 <= self.brush**2
        self.layer[inside] = value

    def _stroke(self, start: QPoint, end: QPoint, value) -> None:
        """Dabs along the segment, close enough that a fast drag leaves no gaps."""
        length = max(abs(end.x() - start.x()), abs(end.y() - start.y()))
        count = max(1, int(np.ceil(length / max(1.0, self.brush / 2))))
        for step in range(count + 1):
            f = step / count
            self._dab(
                QPoint(round(start.x() + f * (end.x() - start.x())), round(start.y() + f * (end.y() - start.y()))),
                value,
            )

    def _fill_rectangle(self, start: QPoint, end: QPoint, value) -> None:
        top, bottom = sorted((start.y(), end.y()))
        left, right = sorted((start.x(), end.x()))
        self.layer[max(top, 0) : min(bottom, CANVAS - 1) + 1, max(left, 0) : min(right, CANVAS - 1) + 1] = value

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.remember()
        self._painting_value = self.erase_value if event.button() == Qt.MouseButton.RightButton else self.paint_value
        self._anchor = self._last = event.position().toPoint()
        if not self.rectangle_mode:
            self._dab(self._anchor, self._painting_value)
            self.redraw()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._anchor is None:
            return
        point = event.position().toPoint()
        if self.rectangle_mode:
            self.layer = self.history[-1].copy()  # show the rectangle as it is dragged
            self._fill_rectangle(self._anchor, point, self._painting_value)
        else:
            self._stroke(self._last, point, self._painting_value)
            self._last = point
        self.redraw()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._anchor is not None and self.rectangle_mode:
            self.layer = self.history[-1].copy()
            self._fill_rectangle(self._anchor, event.position().toPoint(), self._painting_value)
            self.redraw()
        self._anchor = None


def _lay_out(dialog: QDialog, extra_tools: list, hint: str) -> None:
    """The editors' shared layout: brush, Rectangle, Clear and their own tools above the canvas
    (`dialog.canvas`), a hint and Save / Cancel below."""
    canvas = dialog.canvas
    dialog.brush = QSpinBox()
    dialog.brush.setRange(1, CANVAS // 2)
    dialog.brush.setValue(canvas.brush)
    dialog.brush.setPrefix("brush ")
    dialog.brush.setSuffix(" px")
    dialog.brush.valueChanged.connect(lambda value: setattr(canvas, "brush", value))
    dialog.rectangle = QCheckBox("Rectangle")
    dialog.rectangle.toggled.connect(lambda on: setattr(canvas, "rectangle_mode", on))
    clear = QPushButton("Clear")
    clear.clicked.connect(lambda: canvas.clear())
    QShortcut(QKeySequence.StandardKey.Undo, dialog, activated=lambda: canvas.undo())
    tools = QHBoxLayout()
    for widget in [dialog.brush, dialog.rectangle, clear, *extra_tools]:
        tools.addWidget(widget)
    tools.addStretch(1)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(tools)
    layout.addWidget(canvas, 0, Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(QLabel(hint))
    layout.addWidget(buttons)


def picture_at(image_path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The picture as IF sees it (centre square, `size` px) as RGB values 0..255 in float32,
    and its size in the file."""
    loaded = load_image(image_path, size)
    pixels = loaded.tensor[0].permute(1, 2, 0).numpy()
    return ((pixels + 1.0) * 127.5).round().astype(np.float32), loaded.original_size


def save_png(dialog: QDialog, image: Image.Image, what: str) -> bool:
    """Write atomically to dialog.out_path; on failure say so in the title and keep the dialog open."""
    try:
        with atomic_path(dialog.out_path) as temporary:  # (it makes the folder too)
            image.save(temporary, format="PNG")
    except OSError as error:
        dialog.setWindowTitle(f"Could not save the {what}: {error}")
        return False
    return True


class MaskEditor(QDialog):
    """Edit the mask for `image_path`, starting from `mask_path` if it lines up; saves to `out_path`."""

    def __init__(self, image_path: str, mask_path: str | None, out_path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Paint the inpainting mask (white: new content)")
        self.image_path = image_path
        self.out_path = Path(out_path)
        picture, self.original_size = picture_at(image_path, CANVAS)

        def overlay(mask: np.ndarray) -> np.ndarray:
            shown = picture.copy()
            shown[mask] = (1 - OVERLAY_ALPHA) * shown[mask] + OVERLAY_ALPHA * OVERLAY
            return shown.clip(0, 255).astype(np.uint8)

        self.canvas = PaintCanvas(self._starting_mask(mask_path), overlay, True, False)

        invert = QPushButton("Invert")
        invert.clicked.connect(self.invert)
        _lay_out(self, [invert], "Left-drag paints, right-drag erases; Ctrl+Z undoes a stroke.")

    def _starting_mask(self, mask_path: str | None) -> np.ndarray:
        """The existing mask on the canvas, if it is one for this image; otherwise empty."""

        if mask_path:
            try:
                return load_mask(mask_path, CANVAS, self.original_size)[0, 0].numpy() > 0.5
            except UserFacingError:
                pass
        return np.zeros((CANVAS, CANVAS), dtype=bool)

    def invert(self) -> None:
        """New content where the original was kept, and the other way round."""
        self.canvas.remember()
        self.canvas.layer = ~self.canvas.layer
        self.canvas.redraw()

    def full_size_mask(self) -> np.ndarray:
        """The mask at the image's own size: the canvas covers its centre square, black elsewhere."""
        width, height = self.original_size
        side = min(width, height)
        square = Image.fromarray(self.canvas.layer.astype(np.uint8) * 255).resize(
            (side, side), Image.Resampling.NEAREST
        )
        full = np.zeros((height, width), dtype=np.uint8)
        top, left = (height - side) // 2, (width - side) // 2
        full[top : top + side, left : left + side] = np.asarray(square)
        return full

    def save(self) -> bool:
        return save_png(self, Image.fromarray(self.full_size_mask()), "mask")

    def accept(self) -> None:
        if self.save():
            super().accept()


SKETCH_SIZE = 256  # the saved sketch, in pixels (IF's stage I resizes it to 64)
SWATCHES = {
    "black": (20, 20, 20),
    "brown": (120, 75, 40),
    "red": (210, 40, 40),
    "orange": (240, 150, 40),
    "yellow": (245, 220, 60),
    "green": (60, 150, 60),
    "sky": (110, 170, 235),
    "blue": (40, 70, 180),
}
PAPER = (255, 255, 255)


class SketchEditor(QDialog):
    """Draw a scribble in colour (on white, or traced over `image_path`); saves a PNG to `out_path`."""

    def __init__(self, out_path: Path, image_path: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sketch: SDEdit will project it onto natural images")
        self.out_path = Path(out_path)
        paper = np.full((CANVAS, CANVAS, 3), PAPER, dtype=np.uint8)
        if image_path:
            paper = picture_at(image_path, CANVAS)[0].astype(np.uint8)
        self.canvas = PaintCanvas(
            paper, lambda layer: layer, np.array(SWATCHES["black"], np.uint8), np.array(PAPER, np.uint8)
        )
        swatches = []
        for name, colour in SWATCHES.items():
            button = QPushButton()
            button.setFixedSize(22, 22)
            button.setToolTip(name)
            button.setStyleSheet(f"background-color: rgb{colour}; border: 1px solid #555;")
            button.clicked.connect(lambda _=False, c=colour: self.set_colour(c))
            swatches.append(button)
        _lay_out(
            self, swatches, "Left-drag draws in the chosen colour, right-drag paints white; Ctrl+Z undoes a stroke."
        )

    def set_colour(self, colour: tuple) -> None:
        self.canvas.paint_value = np.array(colour, np.uint8)

    def picture(self) -> Image.Image:
        return Image.fromarray(self.canvas.layer).resize((SKETCH_SIZE, SKETCH_SIZE), Image.Resampling.LANCZOS)

    def accept(self) -> None:
        if save_png(self, self.picture(), "sketch"):
            super().accept()
