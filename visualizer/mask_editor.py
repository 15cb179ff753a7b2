"""Paint an inpainting mask over the image: white where IF makes new content.

The canvas shows the image's centre square (what IF sees) with the mask as a red overlay.
Left-drag paints, right-drag erases; with Rectangle on, a drag fills (or, with the right button,
clears) a rectangle. Clear and Invert act on the whole mask; Ctrl+Z undoes the last stroke.
The mask is saved at the image's own size (black outside the square), so it lines up with the
image however IF's stage resizes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

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

from core.atomic import atomic_path
from core.errors import UserFacingError
from core.images import load_image

CANVAS = 384  # on-screen size of the square canvas, in pixels
OVERLAY = np.array([255, 40, 40], dtype=np.float32)  # the mask's colour over the image
OVERLAY_ALPHA = 0.55


class MaskCanvas(QLabel):
    """The square image with the mask painted over it; the mask lives at canvas resolution."""

    def __init__(self, picture: np.ndarray, mask: np.ndarray, parent=None):
        super().__init__(parent)
        self.picture = picture.astype(np.float32)  # [CANVAS, CANVAS, 3]
        self.mask = mask.astype(bool)  # [CANVAS, CANVAS]
        self.brush = 16
        self.rectangle_mode = False
        self.history: list[np.ndarray] = []
        self._anchor: Optional[QPoint] = None  # where the drag began
        self._last: Optional[QPoint] = None  # where the brush was at the last event
        self._painting_value = True
        self.setFixedSize(CANVAS, CANVAS)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.redraw()

    def redraw(self) -> None:
        shown = self.picture.copy()
        shown[self.mask] = (1 - OVERLAY_ALPHA) * shown[self.mask] + OVERLAY_ALPHA * OVERLAY
        data = np.ascontiguousarray(shown.clip(0, 255).astype(np.uint8))
        image = QImage(data.data, CANVAS, CANVAS, 3 * CANVAS, QImage.Format.Format_RGB888)
        self.setPixmap(QPixmap.fromImage(image.copy()))

    def remember(self) -> None:
        self.history.append(self.mask.copy())
        del self.history[:-50]

    def undo(self) -> None:
        if self.history:
            self.mask = self.history.pop()
            self.redraw()

    def clear(self) -> None:
        self.remember()
        self.mask[:] = False
        self.redraw()

    def invert(self) -> None:
        self.remember()
        self.mask = ~self.mask
        self.redraw()

    def _dab(self, point: QPoint, value: bool) -> None:
        rows, cols = np.ogrid[:CANVAS, :CANVAS]
        inside = (rows - point.y()) ** 2 + (cols - point.x()) ** 2 <= self.brush**2
        self.mask[inside] = value

    def _stroke(self, start: QPoint, end: QPoint, value: bool) -> None:
        """Dabs along the segment, close enough that a fast drag leaves no gaps."""
        length = max(abs(end.x() - start.x()), abs(end.y() - start.y()))
        count = max(1, int(np.ceil(length / max(1.0, self.brush / 2))))
        for step in range(count + 1):
            f = step / count
            self._dab(QPoint(round(start.x() + f * (end.x() - start.x())), round(start.y() + f * (end.y() - start.y()))), value)

    def _fill_rectangle(self, start: QPoint, end: QPoint, value: bool) -> None:
        top, bottom = sorted((start.y(), end.y()))
        left, right = sorted((start.x(), end.x()))
        self.mask[max(top, 0):min(bottom, CANVAS - 1) + 1, max(left, 0):min(right, CANVAS - 1) + 1] = value

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.remember()
        self._painting_value = event.button() != Qt.MouseButton.RightButton
        self._anchor = self._last = event.position().toPoint()
        if not self.rectangle_mode:
            self._dab(self._anchor, self._painting_value)
            self.redraw()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._anchor is None:
            return
        point = event.position().toPoint()
        if self.rectangle_mode:
            self.mask = self.history[-1].copy()  # show the rectangle as it is dragged
            self._fill_rectangle(self._anchor, point, self._painting_value)
        else:
            self._stroke(self._last, point, self._painting_value)
            self._last = point
        self.redraw()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._anchor is not None and self.rectangle_mode:
            self.mask = self.history[-1].copy()
            self._fill_rectangle(self._anchor, event.position().toPoint(), self._painting_value)
            self.redraw()
        self._anchor = None


class MaskEditor(QDialog):
    """Edit the mask for `image_path`, starting from `mask_path` if it lines up; saves to `out_path`."""

    def __init__(self, image_path: str, mask_path: Optional[str], out_path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Paint the inpainting mask (white: new content)")
        self.image_path = image_path
        self.out_path = Path(out_path)
        loaded = load_image(image_path, CANVAS)
        self.original_size = loaded.original_size
        picture = ((loaded.tensor[0].permute(1, 2, 0).numpy() + 1.0) * 127.5).round()
        self.canvas = MaskCanvas(picture, self._starting_mask(mask_path))

        self.brush = QSpinBox()
        self.brush.setRange(1, CANVAS // 2)
        self.brush.setValue(self.canvas.brush)
        self.brush.setPrefix("brush ")
        self.brush.setSuffix(" px")
        self.brush.valueChanged.connect(lambda value: setattr(self.canvas, "brush", value))
        self.rectangle = QCheckBox("Rectangle")
        self.rectangle.toggled.connect(lambda on: setattr(self.canvas, "rectangle_mode", on))
        clear = QPushButton("Clear")
        clear.clicked.connect(self.canvas.clear)
        invert = QPushButton("Invert")
        invert.clicked.connect(self.canvas.invert)
        QShortcut(QKeySequence.StandardKey.Undo, self, activated=self.canvas.undo)

        tools = QHBoxLayout()
        for widget in (self.brush, self.rectangle, clear, invert):
            tools.addWidget(widget)
        tools.addStretch(1)
        hint = QLabel("Left-drag paints, right-drag erases; Ctrl+Z undoes a stroke.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def _starting_mask(self, mask_path: Optional[str]) -> np.ndarray:
        """The existing mask on the canvas, if it is one for this image; otherwise empty."""
        from core.images import load_mask

        if mask_path:
            try:
                return load_mask(mask_path, CANVAS, self.original_size)[0, 0].numpy() > 0.5
            except UserFacingError:
                pass
        return np.zeros((CANVAS, CANVAS), dtype=bool)

    def full_size_mask(self) -> np.ndarray:
        """The mask at the image's own size: the canvas covers its centre square, black elsewhere."""
        width, height = self.original_size
        side = min(width, height)
        square = Image.fromarray(self.canvas.mask.astype(np.uint8) * 255).resize((side, side), Image.Resampling.NEAREST)
        full = np.zeros((height, width), dtype=np.uint8)
        top, left = (height - side) // 2, (width - side) // 2
        full[top:top + side, left:left + side] = np.asarray(square)
        return full

    def save(self) -> Path:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_path) as temporary:
            Image.fromarray(self.full_size_mask()).save(temporary, format="PNG")
        return self.out_path

    def accept(self) -> None:
        try:
            self.save()
        except OSError as error:
            self.setWindowTitle(f"Could not save the mask: {error}")
            return
        super().accept()
